#!/usr/bin/env bash
# Real services for the tests and the sample app, on loopback only.
#
#   scripts/services.sh start    PostgreSQL and MariaDB up (started if down), Kafka fetched,
#                                formatted and started; waits until each one answers.
#   scripts/services.sh stop     stops what this script started (by PID), nothing else.
#   scripts/services.sh status   one line per service.
#   scripts/services.sh start|stop kafka    only Kafka (tests run a broker of their own this way,
#                                           on other ports: KAFKA_PORT / KAFKA_CONTROLLER_PORT).
#   scripts/services.sh start postgres|mariadb   only that database.
#
# Idempotent: `start` twice is harmless. Kafka is Apache Kafka (KRaft, one node) from Maven
# Central's jars, cached in .cache/kafka after the first run.
#
# Environment (defaults in brackets):
#   KAFKA_VERSION [3.9.2]  KAFKA_PORT [9092]  KAFKA_CONTROLLER_PORT [KAFKA_PORT + 1]
#   TM_CACHE_DIR [<repo>/.cache]  KAFKA_HEAP [512m]
#   KAFKA_GC [-XX:+UseSerialGC]: the broker's collector (sized for two shared cores; the bench
#   measures latency with -XX:+UseZGC too, to tell the broker's pauses from the relay's)
#   KAFKA_EXTRA_CONFIG: broker settings appended to server.properties, one 'key=value' per line
#   (tests start brokers of their own with other limits)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${TM_CACHE_DIR:-$ROOT/.cache}"
KAFKA_VERSION="${KAFKA_VERSION:-3.9.2}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_HOME="$CACHE/kafka"
KAFKA_LIBS="$KAFKA_HOME/libs-$KAFKA_VERSION"
KAFKA_DATA="$KAFKA_HOME/data-$KAFKA_PORT"
KAFKA_PID="$KAFKA_HOME/kafka-$KAFKA_PORT.pid"
KAFKA_LOG="$KAFKA_HOME/kafka-$KAFKA_PORT.log"
STATE="$CACHE/services"

log() { echo "[services] $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # wait_for <what> <seconds> <command...>
  local what="$1" seconds="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    if ((SECONDS >= deadline)); then log "$what did not answer within ${seconds}s"; return 1; fi
    sleep 0.5
  done
}

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# --- PostgreSQL -------------------------------------------------------------------------------
postgres_ready() { pg_isready -q -h 127.0.0.1 -p 5432; }

start_postgres() {
  if postgres_ready; then log "postgresql: up"; return; fi
  local version
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  log "postgresql: starting cluster $version/main"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  mkdir -p "$STATE" && echo "$version" >"$STATE/started-postgresql"
  wait_for postgresql 60 postgres_ready
}

stop_postgres() {
  [[ -f "$STATE/started-postgresql" ]] || return 0
  log "postgresql: stopping (this script started it)"
  pg_ctlcluster --skip-systemctl-redirect "$(cat "$STATE/started-postgresql")" main stop || true
  rm -f "$STATE/started-postgresql"
}

# --- MariaDB ----------------------------------------------------------------------------------
mariadb_ready() { mariadb-admin -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1; }

start_mariadb() {
  if mariadb_ready; then log "mariadb: up"; return; fi
  log "mariadb: starting"
  mkdir -p "$STATE"
  start-stop-daemon --start --oknodo --background --make-pidfile --pidfile "$STATE/mariadb.pid" \
    --exec /usr/sbin/mariadbd
  wait_for mariadb 60 mariadb_ready
  mariadb -h 127.0.0.1 -u root -e 'CREATE DATABASE IF NOT EXISTS test'
}

stop_mariadb() {
  pid_alive "$STATE/mariadb.pid" || return 0
  log "mariadb: stopping (this script started it)"
  kill "$(cat "$STATE/mariadb.pid")" && rm -f "$STATE/mariadb.pid"
}

# --- Kafka ------------------------------------------------------------------------------------
fetch_kafka() {
  if [[ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]]; then return; fi
  mkdir -p "$KAFKA_HOME"
  # Several brokers may start at once (the fault tests start their own): one fetches, the others
  # wait for it on the lock and then find the jars there.
  exec {lock}>"$KAFKA_HOME/fetch.lock"
  flock "$lock"
  if [[ -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]]; then flock -u "$lock"; return; fi
  log "kafka: resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its runtime dependencies"
  local tmp="$KAFKA_LIBS.tmp.$$"
  if ! mvn -B -f "$ROOT/scripts/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
    >"$KAFKA_HOME/maven.$$.log" 2>&1; then
    tail -n 40 "$KAFKA_HOME/maven.$$.log" >&2
    rm -rf "$tmp"
    flock -u "$lock"
    return 1
  fi
  rm -rf "$KAFKA_LIBS" && mv "$tmp" "$KAFKA_LIBS"
  flock -u "$lock"
}

kafka_java() { java -Dlog4j.configuration="file:$ROOT/scripts/kafka/log4j.properties" -cp "$KAFKA_LIBS/*" "$@"; }

configure_kafka() {
  mkdir -p "$KAFKA_DATA"
  sed -e "s#@PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
    -e "s#@DATA_DIR@#$KAFKA_DATA#g" "$ROOT/scripts/kafka/server.properties.template" \
    >"$KAFKA_HOME/server-$KAFKA_PORT.properties"
  if [[ -n "${KAFKA_EXTRA_CONFIG:-}" ]]; then printf '%s\n' "$KAFKA_EXTRA_CONFIG" >>"$KAFKA_HOME/server-$KAFKA_PORT.properties"; fi
  if [[ ! -f "$KAFKA_DATA/meta.properties" ]]; then
    log "kafka: formatting storage in $KAFKA_DATA"
    local cluster_id
    cluster_id="$(kafka_java kafka.tools.StorageTool random-uuid | tail -n 1)"
    kafka_java kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$KAFKA_HOME/server-$KAFKA_PORT.properties" >/dev/null
  fi
}

kafka_ready() { port_open "$KAFKA_PORT" && grep -q 'Transition from STARTING to STARTED' "$KAFKA_LOG"; }

start_kafka() {
  if pid_alive "$KAFKA_PID"; then
    wait_for kafka 90 kafka_ready
    log "kafka: up on 127.0.0.1:$KAFKA_PORT (pid $(cat "$KAFKA_PID"))"
    return
  fi
  if port_open "$KAFKA_PORT"; then
    log "kafka: something this script did not start already listens on 127.0.0.1:$KAFKA_PORT; using it"
    return
  fi
  fetch_kafka
  configure_kafka
  log "kafka: starting $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT (log: $KAFKA_LOG)"
  : >"$KAFKA_LOG"
  nohup java -Xms256m -Xmx"${KAFKA_HEAP:-512m}" ${KAFKA_GC:--XX:+UseSerialGC} \
    -Dlog4j.configuration="file:$ROOT/scripts/kafka/log4j.properties" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_HOME/server-$KAFKA_PORT.properties" \
    >>"$KAFKA_LOG" 2>&1 </dev/null &
  echo $! >"$KAFKA_PID"
  if ! wait_for kafka 90 kafka_ready; then
    tail -n 30 "$KAFKA_LOG" >&2
    return 1
  fi
  log "kafka: up on 127.0.0.1:$KAFKA_PORT (pid $(cat "$KAFKA_PID"))"
}

stop_kafka() {
  pid_alive "$KAFKA_PID" || { rm -f "$KAFKA_PID"; return 0; }
  local pid
  pid="$(cat "$KAFKA_PID")"
  # KAFKA_STOP_SIGNAL=KILL makes it a crash (the fault tests kill their own broker that way).
  local signal="${KAFKA_STOP_SIGNAL:-TERM}"
  log "kafka: stopping pid $pid (SIG$signal)"
  kill -s "$signal" "$pid"
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then log "kafka: pid $pid still running after 30s, killing"; kill -9 "$pid"; fi
    sleep 0.5
  done
  rm -f "$KAFKA_PID"
}

status() {
  postgres_ready && echo "postgresql: up (127.0.0.1:5432)" || echo "postgresql: down"
  mariadb_ready && echo "mariadb: up (127.0.0.1:3306)" || echo "mariadb: down"
  if pid_alive "$KAFKA_PID"; then echo "kafka: up (127.0.0.1:$KAFKA_PORT, pid $(cat "$KAFKA_PID"))"
  elif port_open "$KAFKA_PORT"; then echo "kafka: up (127.0.0.1:$KAFKA_PORT, not started by this script)"
  else echo "kafka: down"; fi
}

case "${1:-} ${2:-}" in
  "start ") start_postgres; start_mariadb; start_kafka ;;
  "stop ") stop_kafka; stop_mariadb; stop_postgres ;;
  "start kafka") start_kafka ;;
  "start postgres") start_postgres ;;
  "start mariadb") start_mariadb ;;
  "stop kafka") stop_kafka ;;
  "status ") status ;;
  *) echo "usage: $0 start|stop|status, $0 start|stop kafka, or $0 start postgres|mariadb" >&2; exit 2 ;;
esac
