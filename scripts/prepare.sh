# Sourced by scripts/test.sh and scripts/demo.sh: Node 24 and the dependencies (installed when
# missing), the services of TM_SERVICES up (default: postgres mariadb kafka transports); on exit,
# stops the services this run started.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/node-env.sh

if [[ ! -d node_modules/.bin || package-lock.json -nt node_modules/.package-lock.json ]]; then
  # `npm install`, not `npm ci`: npm 11 leaves the platform-specific optional packages of
  # unrs-resolver (a Jest 30 dependency) out of the lock file and then `npm ci` refuses it.
  # With a lock file present, `npm install` installs the locked versions.
  npm_config_nodedir="$TM_NODE_DIR" npm install --no-audit --no-fund
fi

# grep reads every line (with -q it would stop at the match and the status script die of SIGPIPE under pipefail).
if ! bash scripts/services.sh status | grep '^kafka: up' >/dev/null; then
  trap 'bash "$ROOT/scripts/services.sh" stop' EXIT
  export TM_KAFKA_WAS_UP=0
else
  # Kafka was up already (not ours to stop): only the transports this run starts are stopped.
  trap 'bash "$ROOT/scripts/services.sh" stop transports' EXIT
  export TM_KAFKA_WAS_UP=1
fi
for service in ${TM_SERVICES:-postgres mariadb kafka transports}; do
  bash scripts/services.sh start "$service"
done
