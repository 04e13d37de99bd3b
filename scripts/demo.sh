#!/usr/bin/env bash
# The sample shop, end to end: `bash scripts/demo.sh`.
# Installs Node 24 and the dependencies when missing, starts PostgreSQL, MariaDB and Kafka,
# builds the library and the sample app, places three orders (paid at once, pending and settled
# by the transaction check, declined), prints the timeline, and exits 0 only if the final state
# is consistent. Runs on an embedded SQLite file unless DATABASE_URL is set (postgres://...,
# mysql://... or mariadb://...). Stops what it started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"

echo "[demo] building the library and the sample app"
rm -rf dist sample-app/dist
npx tsc -p tsconfig.build.json
npx tsc -p sample-app/tsconfig.json
echo "[demo] running"
cd sample-app
status=0
node dist/src/demo.js || status=$?
exit "$status"
