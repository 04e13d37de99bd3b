#!/usr/bin/env bash
# The project's test command: `bash scripts/test.sh [jest args...]`.
# Installs Node 24 and the dependencies when missing, starts the real services (PostgreSQL,
# MariaDB, Kafka), type-checks, runs every Jest project, and stops what it started.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/node-env.sh

if [[ ! -d node_modules/.bin || package-lock.json -nt node_modules/.package-lock.json ]]; then
  # `npm install`, not `npm ci`: npm 11 leaves the platform-specific optional packages of
  # unrs-resolver (a Jest 30 dependency) out of the lock file and then `npm ci` refuses it.
  # With a lock file present, `npm install` installs the locked versions.
  npm_config_nodedir="$TM_NODE_DIR" npm install --no-audit --no-fund
fi

kafka_was_running=0
bash scripts/services.sh status | grep -q '^kafka: up' && kafka_was_running=1
bash scripts/services.sh start
if [[ $kafka_was_running == 0 ]]; then
  trap 'bash "$ROOT/scripts/services.sh" stop' EXIT
fi

echo "[test] type-checking and building the package"
npx tsc -p tsconfig.json --noEmit
rm -rf dist && npx tsc -p tsconfig.build.json
# The sample app compiles against the built package, as a user's app would.
npx tsc -p sample-app/tsconfig.json --noEmit
# The published entry point must load in plain Node (ESM, no test transform).
node --input-type=module -e "import('./dist/index.js').then((m) => { if (!m.TransactionalMessageModule) process.exit(1); })"
echo "[test] jest"
NODE_OPTIONS=--experimental-vm-modules npx jest --maxWorkers=2 "$@"
