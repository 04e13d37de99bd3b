#!/usr/bin/env bash
# The fault-injection soak: `bash scripts/soak.sh` runs the chaos test (test/faults/chaos.e2e-spec.ts)
# with the soak plan (50,000 messages, at least 50 kills, 3 broker restarts) and prints its figures.
# TM_FAULT_MESSAGES, TM_FAULT_KILLS, TM_FAULT_DB=mariadb, TM_FAULT_SEED and TM_FAULT_KEEP=1 adjust it;
# TM_FAULT_PROGRESS=1 prints what is left every 10 s while it settles. TM_FAULT_EXACTLY_ONCE=1 runs it with
# kafka.exactlyOnce instead (on TM_KAFKA_CLIENT, default @platformatic/kafka; at least 10 pauses).
# Record the figures in test/faults/RESULTS.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"
node scripts/build.mjs
rm -rf test/faults/dist && npx tsc -p test/faults/worker/tsconfig.json
TM_FAULT_SOAK=1 NODE_OPTIONS="--experimental-vm-modules --unhandled-rejections=strict" npx jest test/faults/chaos --selectProjects integration "$@"
