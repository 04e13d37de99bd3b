#!/usr/bin/env bash
# The project's test command: `bash scripts/test.sh [jest args...]`.
# Installs Node 24 and the dependencies when missing, starts the real services (PostgreSQL,
# MariaDB, Kafka), type-checks, checks the import layers, builds the package, runs every Jest
# project (unit, integration, sample app, TypeORM 0.3), runs the compatibility matrix (the packed
# library in NestJS 11/12, CommonJS/ESM apps on Node 24 and 22), and stops what it started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"

echo "[test] type-checking and building the package"
npx tsc -p tsconfig.json --noEmit
# Imports run one way (layers in .dependency-cruiser.cjs), no cycles.
npx depcruise src --config .dependency-cruiser.cjs --output-type err
node scripts/build.mjs
# The published entries must load in plain Node, from import and from require, and give one module.
node --input-type=module -e "const m = await import('nestjs-transactional-message'); const { createRequire } = await import('node:module'); if (!m.TransactionalMessageModule || createRequire(process.cwd() + '/')('nestjs-transactional-message').TransactionalMessageModule !== m.TransactionalMessageModule) process.exit(1);"
# The sample app and the benchmarks compile against the built package, as a user's app would.
npx tsc -p sample-app/tsconfig.json --noEmit
npx tsc -p bench/tsconfig.json --noEmit
# The documentation: tables of contents, links, and every TypeScript snippet compiled against the built package.
node scripts/check-docs.mjs
# The fault tests' worker processes run the built package too (test/faults/worker → test/faults/dist).
rm -rf test/faults/dist && npx tsc -p test/faults/worker/tsconfig.json
# The dashboard's browser test drives Debian's Chromium (no browser download: the machine has no
# outside network but Debian's and npm's registries).
if [[ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]]; then
  echo "[test] installing Debian's chromium for the dashboard's browser test"
  apt_get() { if [[ "$(id -u)" == 0 ]]; then apt-get "$@"; else sudo apt-get "$@"; fi; }
  apt_get install -y -q chromium >/dev/null || { apt_get update -q >/dev/null && apt_get install -y -q chromium >/dev/null; }
fi
# PgBouncer 1.24.1 for test/pgbouncer.e2e-spec.ts, built once from Debian's source package (bookworm ships 1.18).
bash scripts/pgbouncer.sh >/dev/null
echo "[test] jest"
NODE_OPTIONS="--experimental-vm-modules --unhandled-rejections=strict" npx jest --maxWorkers=2 "$@"
echo "[test] the package as it would be published"
# npm publish --dry-run packs it (its prepare builds dist/) and checks the manifest; publint checks
# the package.json against the files; "are the types wrong" resolves each entry point's types as
# node10, node16 (CommonJS and ESM) and bundlers would (require gets dist/cjs, import the ES module
# entries that re-export it).
# A manifest npm would "auto-correct" at publish is a failure here: npm 11 drops a bin written "./dist/...".
publish_log="$(npm publish --dry-run --ignore-scripts 2>&1)" || { echo "$publish_log"; exit 1; }
if grep -Eq 'auto-corrected|invalid and removed' <<<"$publish_log"; then echo "$publish_log" | grep -E 'warn' >&2; exit 1; fi
npx publint --strict
npx attw --pack .
echo "[test] compatibility matrix (scripts/compat.mjs)"
node scripts/compat.mjs
