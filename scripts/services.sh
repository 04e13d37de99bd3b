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
#   scripts/services.sh start|stop transports    RabbitMQ, NATS, Redis and Mosquitto (the other
#                                transports of @nestjs/microservices), started where down.
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

# --- The other transports: RabbitMQ, NATS, Redis, Mosquitto (Debian's packages) ---------------
# Started when nothing answers on their port, each with its PID recorded; `stop transports` stops
# only those this script started. Ports: RABBITMQ_PORT [5672] NATS_PORT [4222] REDIS_PORT [6379]
# MQTT_PORT [1883] (the tests derive their URLs from the same variables).
RABBITMQ_PORT="${RABBITMQ_PORT:-5672}"
NATS_PORT="${NATS_PORT:-4222}"
REDIS_PORT="${REDIS_PORT:-6379}"
MQTT_PORT="${MQTT_PORT:-1883}"

start_rabbitmq() {
  if port_open "$RABBITMQ_PORT"; then log "rabbitmq: up on 127.0.0.1:$RABBITMQ_PORT"; return; fi
  command -v rabbitmq-server >/dev/null || { log "rabbitmq: not installed (apt-get install rabbitmq-server)"; return 1; }
  mkdir -p "$STATE"
  log "rabbitmq: starting on 127.0.0.1:$RABBITMQ_PORT"
  # A node of its own (name, distribution port, configuration: Debian's names port 5672), so it
  # can run beside the machine's on another port.
  printf 'listeners.tcp.local = 127.0.0.1:%s\n' "$RABBITMQ_PORT" >"$STATE/rabbitmq-$RABBITMQ_PORT.conf"
  RABBITMQ_NODENAME="tm-$RABBITMQ_PORT@localhost" RABBITMQ_DIST_PORT="$((RABBITMQ_PORT + 20000))" \
    RABBITMQ_CONFIG_FILE="$STATE/rabbitmq-$RABBITMQ_PORT.conf" rabbitmq-server -detached >/dev/null 2>&1
  wait_for rabbitmq 120 port_open "$RABBITMQ_PORT"
  # Debian's wrapper runs the node as the rabbitmq user, which cannot write our PID file: ask the node.
  rabbitmqctl -q -n "tm-$RABBITMQ_PORT@localhost" eval 'list_to_integer(os:getpid()).' >"$STATE/rabbitmq-$RABBITMQ_PORT.pid"
}

# start_daemon <name> <port> <executable> -- <arguments>: started in the background where nothing answers on <port>.
start_daemon() {
  local name="$1" port="$2"; shift 2
  if port_open "$port"; then log "$name: up on 127.0.0.1:$port"; return; fi
  mkdir -p "$STATE"
  log "$name: starting on 127.0.0.1:$port"
  start-stop-daemon --start --background --make-pidfile --pidfile "$STATE/$name-$port.pid" --exec "$@"
  wait_for "$name" 30 port_open "$port"
}

start_nats() { start_daemon nats "$NATS_PORT" /usr/sbin/nats-server -- -a 127.0.0.1 -p "$NATS_PORT"; }
start_redis() { start_daemon redis "$REDIS_PORT" /usr/bin/redis-server -- --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no; }
start_mosquitto() { start_daemon mosquitto "$MQTT_PORT" /usr/sbin/mosquitto -- -p "$MQTT_PORT"; }

start_transports() { start_rabbitmq; start_nats; start_redis; start_mosquitto; }

stop_transports() {
  local pidfile
  for pidfile in "$STATE/rabbitmq-$RABBITMQ_PORT.pid" "$STATE/nats-$NATS_PORT.pid" "$STATE/redis-$REDIS_PORT.pid" "$STATE/mosquitto-$MQTT_PORT.pid"; do
    pid_alive "$pidfile" || { rm -f "$pidfile"; continue; }
    log "$(basename "$pidfile" .pid): stopping pid $(cat "$pidfile") (this script started it)"
    kill "$(cat "$pidfile")" || true
    rm -f "$pidfile"
  done
  rm -f "$STATE/rabbitmq-$RABBITMQ_PORT.conf"
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
  local name port
  for name in rabbitmq:$RABBITMQ_PORT nats:$NATS_PORT redis:$REDIS_PORT mosquitto:$MQTT_PORT; do
    port="${name#*:}"
    port_open "$port" && echo "${name%%:*}: up (127.0.0.1:$port)" || echo "${name%%:*}: down"
  done
}

case "${1:-} ${2:-}" in
  "start ") start_postgres; start_mariadb; start_kafka; start_transports ;;
  "stop ") stop_kafka; stop_transports; stop_mariadb; stop_postgres ;;
  "start transports") start_transports ;;
  "stop transports") stop_transports ;;
  "start rabbitmq") start_rabbitmq ;;
  "start nats") start_nats ;;
  "start redis") start_redis ;;
  "start mosquitto") start_mosquitto ;;
  "start kafka") start_kafka ;;
  "start postgres") start_postgres ;;
  "start mariadb") start_mariadb ;;
  "stop kafka") stop_kafka ;;
  "status ") status ;;
  *) echo "usage: $0 start|stop|status, $0 start|stop kafka|transports, or $0 start postgres|mariadb|rabbitmq|nats|redis|mosquitto" >&2; exit 2 ;;
esac
