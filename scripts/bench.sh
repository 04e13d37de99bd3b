#!/usr/bin/env bash
# Benchmarks: `bash scripts/bench.sh` (quick smoke run) or `bash scripts/bench.sh --full`
# (the run recorded in bench/RESULTS.md; add --write to save its output to bench/last-run.txt).
# `--only=1,3` runs some workloads; `--versions [--full] [--only=2,3,7] [--rounds=2]` compares this
# version with the earlier one (bench/compare-versions.ts). Real PostgreSQL and Kafka, loopback only.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"
rm -rf bench/dist
node scripts/build.mjs
npx tsc -p bench/tsconfig.json
if [[ "${1:-}" == "--versions" ]]; then
  # This version against the earlier one, side by side (bench/compare-versions.ts).
  shift
  node bench/dist/compare-versions.js "$@"
else
  node bench/dist/run.js "$@"
fi
