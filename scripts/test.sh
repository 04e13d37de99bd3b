#!/usr/bin/env bash
# The project's test command: `bash scripts/test.sh [jest args...]`.
# Installs Node 24 and the dependencies when missing, starts the real services (PostgreSQL,
# MariaDB, Kafka), type-checks, builds the package, runs every Jest project (unit, integration,
# sample app, TypeORM 0.3), runs the compatibility matrix (the packed library in NestJS 11/12,
# CommonJS/ESM apps on Node 24 and 22), and stops what it started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"

echo "[test] type-checking and building the package"
npx tsc -p tsconfig.json --noEmit
rm -rf dist && npx tsc -p tsconfig.build.json
# The published entry point must load in plain Node (ESM, no test transform).
node --input-type=module -e "import('./dist/index.js').then((m) => { if (!m.TransactionalMessageModule) process.exit(1); })"
# The sample app and the benchmarks compile against the built package, as a user's app would.
npx tsc -p sample-app/tsconfig.json --noEmit
npx tsc -p bench/tsconfig.json --noEmit
# The fault tests' worker processes run the built package too (test/faults/worker → test/faults/dist).
rm -rf test/faults/dist && npx tsc -p test/faults/worker/tsconfig.json
echo "[test] jest"
NODE_OPTIONS=--experimental-vm-modules npx jest --maxWorkers=2 "$@"
echo "[test] compatibility matrix (scripts/compat.mjs)"
node scripts/compat.mjs
