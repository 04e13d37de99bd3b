#!/usr/bin/env bash
# The sample shop, end to end: `bash scripts/demo.sh`.
# Installs Node 24 and the dependencies when missing, starts Kafka (and the database DATABASE_URL
# points to, creating that database if it does not exist), builds the library and the sample app,
# places three orders (paid at once, pending and settled by the transaction check, declined),
# prints the timeline, and exits 0 only if the final state is consistent. Runs on an embedded
# SQLite file unless DATABASE_URL is set (postgres://..., mysql://... or mariadb://...): then
# only Kafka is started. KAFKA_PORT (default 9092) sets the broker's port and the app's
# KAFKA_BROKERS together. SHOP_TRANSPORT=rabbitmq runs it on RabbitMQ instead of Kafka
# (RABBITMQ_PORT, default 5672; started when down). Stops what it started.
set -euo pipefail
export KAFKA_PORT="${KAFKA_PORT:-9092}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:$KAFKA_PORT}"
case "${SHOP_TRANSPORT:-kafka}" in
  kafka) broker=kafka ;;
  rabbitmq) broker=rabbitmq ;;
  *) echo "[demo] SHOP_TRANSPORT must be kafka (the default) or rabbitmq" >&2; exit 2 ;;
esac
case "${DATABASE_URL:-}" in
  "") TM_SERVICES="$broker" ;;
  postgres://* | postgresql://*) TM_SERVICES="postgres $broker" ;;
  mysql://* | mariadb://*) TM_SERVICES="mariadb $broker" ;;
  *) echo "[demo] DATABASE_URL must be postgres://..., mysql://... or mariadb://... (or unset for SQLite)" >&2; exit 2 ;;
esac
export TM_SERVICES
source "$(dirname "${BASH_SOURCE[0]}")/prepare.sh"

if [[ -n "${DATABASE_URL:-}" ]]; then
  # The demo's database: created when it does not exist yet.
  node --input-type=module -e '
    const url = new URL(process.env.DATABASE_URL);
    const name = decodeURIComponent(url.pathname.slice(1));
    if (!/^[A-Za-z0-9_]+$/.test(name)) { console.error(`[demo] DATABASE_URL names the database ${JSON.stringify(name)}: use letters, digits and _`); process.exit(2); }
    const typeorm = await import("typeorm");
    const admin = new URL(url); admin.pathname = url.protocol.startsWith("postgres") ? "/postgres" : "/";
    const pg = url.protocol.startsWith("postgres");
    const ds = await new typeorm.DataSource({ type: pg ? "postgres" : "mariadb", url: admin.toString() }).initialize();
    const exists = pg
      ? (await ds.query("SELECT 1 FROM pg_database WHERE datname = $1", [name])).length > 0
      : (await ds.query("SELECT 1 FROM information_schema.schemata WHERE schema_name = ?", [name])).length > 0;
    if (!exists) { await ds.query(`CREATE DATABASE ${name}`); console.log(`[demo] created database ${name}`); }
    await ds.destroy();
  '
fi

echo "[demo] building the library and the sample app"
rm -rf sample-app/dist
node scripts/build.mjs
npx tsc -p sample-app/tsconfig.json
echo "[demo] running"
cd sample-app
status=0
node dist/src/demo.js || status=$?
exit "$status"
