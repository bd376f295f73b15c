#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft, no ZooKeeper) on loopback, for the tests and
# the Kafka benchmark. The broker's jars come from Maven Central through test/kafka/pom.xml
# and are cached in $TAPEDECK_KAFKA_CACHE (default ~/.cache/tapedeck-kafka).
#
#   scripts/kafka.sh fetch          resolve the jars (idempotent; scripts/install.sh runs it)
#   scripts/kafka.sh start DIR      format DIR (first time), start the broker on free ports,
#                                   wait until it answers, print its bootstrap address
#                                   (127.0.0.1:PORT). A second start on the same DIR reuses its
#                                   ports and data (a broker restart).
#   scripts/kafka.sh stop DIR       stop it (SIGTERM, then SIGKILL after 20 s)
#   scripts/kafka.sh kill DIR       SIGKILL it (crash)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${TAPEDECK_KAFKA_CACHE:-$HOME/.cache/tapedeck-kafka}"
LIBS="$CACHE/libs"
STAMP="$LIBS/.complete-$(sha256sum "$ROOT/test/kafka/pom.xml" | cut -c1-16)"
# Bounded: the start must not hang a test run.
START_TIMEOUT_S="${TAPEDECK_KAFKA_START_TIMEOUT_S:-60}"
HEAP="${TAPEDECK_KAFKA_HEAP:-512m}"

fetch() {
  if [ -f "$STAMP" ]; then return 0; fi
  if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
    # Debian's JDK and Maven (this machine kind ships them; a bare Debian does not).
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends default-jdk-headless maven >/dev/null
  fi
  command -v java >/dev/null || { echo "kafka.sh: java (17+) is required" >&2; exit 1; }
  command -v mvn >/dev/null || { echo "kafka.sh: mvn is required" >&2; exit 1; }
  rm -rf "$LIBS"
  mkdir -p "$LIBS"
  mvn -q -B -f "$ROOT/test/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIBS"
  touch "$STAMP"
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

java_cmd() {
  local dir="$1"; shift
  java -Xms128m -Xmx"$HEAP" -XX:+UseSerialGC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$dir/log4j.properties" -Dkafka.logs.dir="$dir/logs" \
    -cp "$LIBS/*" "$@"
}

start() {
  local dir="$1"
  fetch
  mkdir -p "$dir/logs"
  dir="$(cd "$dir" && pwd)"
  if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    echo "127.0.0.1:$(cat "$dir/port")"; return 0
  fi
  if [ ! -f "$dir/port" ]; then
    free_port >"$dir/port"
    free_port >"$dir/controller-port"
  fi
  local port cport
  port="$(cat "$dir/port")"; cport="$(cat "$dir/controller-port")"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=1
# No deletion by time: the tests publish batches stamped in 2025 (message timestamp = batch
# time), which the default retention (7 days) deletes at its next check (every 5 minutes),
# from a closed segment or a rolled active one: a topic read back then lacks its first messages.
log.retention.ms=-1
PROPS
  cat >"$dir/log4j.properties" <<PROPS
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/logs/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
PROPS
  if [ ! -f "$dir/data/meta.properties" ]; then
    local id
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)"
    # "--cluster-id=ID" in one word: a random id that begins with "-" (1 in 64) would be
    # read as an option in the two-word form.
    if ! java_cmd "$dir" kafka.tools.StorageTool format "--cluster-id=$id" -c "$dir/server.properties" \
      >"$dir/logs/format.log" 2>&1; then
      echo "kafka.sh: formatting $dir failed:" >&2; cat "$dir/logs/format.log" >&2; exit 1
    fi
  fi
  nohup java -Xms128m -Xmx"$HEAP" -XX:+UseSerialGC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$dir/log4j.properties" -Dkafka.logs.dir="$dir/logs" \
    -cp "$LIBS/*" kafka.Kafka "$dir/server.properties" >"$dir/logs/stdout.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  local deadline=$((SECONDS + START_TIMEOUT_S))
  until grep -q 'Kafka Server started' "$dir/logs/server.log" 2>/dev/null; do
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      echo "kafka.sh: the broker exited; see $dir/logs" >&2; tail -20 "$dir/logs/server.log" "$dir/logs/stdout.log" >&2 || true; exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "kafka.sh: the broker did not start within ${START_TIMEOUT_S}s" >&2; kill -9 "$(cat "$dir/pid")" 2>/dev/null || true; exit 1
    fi
    sleep 0.2
  done
  # server.log is appended to across restarts: mark this start as seen.
  mv "$dir/logs/server.log" "$dir/logs/server.log.$(date +%s%N)"
  echo "127.0.0.1:$port"
}

stop() {
  local dir="$1" sig="${2:-TERM}"
  [ -f "$dir/pid" ] || return 0
  local pid; pid="$(cat "$dir/pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -"$sig" "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then kill -9 "$pid" 2>/dev/null || true; fi
      sleep 0.1
    done
  fi
  rm -f "$dir/pid"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start "${2:?usage: kafka.sh start DIR}" ;;
  stop) stop "${2:?usage: kafka.sh stop DIR}" TERM ;;
  kill) stop "${2:?usage: kafka.sh kill DIR}" KILL ;;
  *) echo "usage: kafka.sh fetch | start DIR | stop DIR | kill DIR" >&2; exit 2 ;;
esac
