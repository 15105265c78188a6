#!/usr/bin/env bash
# A local Apache Kafka broker without Docker: KRaft, one node (broker and controller), from the
# Maven Central jars of a pinned release. One broker per stack: its data lives in
# $STACK_DIR/kafka (var/kafka by default), so a test stack and a demo stack each have their own.
#
#   scripts/kafka.sh check     Java 17+ and Maven present? (exit 3 with what to install if not)
#   scripts/kafka.sh fetch     resolve the jars into the cache (done by run/start when missing)
#   scripts/kafka.sh run       format the storage on first use, then run in the foreground
#                              (what supervisord runs; exec's java, so signals reach the broker)
#   scripts/kafka.sh start     the same in the background; waits until the broker listens
#   scripts/kafka.sh stop      stop a broker started with `start`
#   scripts/kafka.sh status    "kafka: running|stopped" and the address
#   scripts/kafka.sh wait      wait until the broker's port accepts connections
#
# Environment:
#   STACK_DIR               where data and logs live (default: var/)
#   KAFKA_PORT              client listener on 127.0.0.1 (default 9092)
#   KAFKA_CONTROLLER_PORT   KRaft controller listener (default 9093)
#   KAFKA_METRICS_PORT      the JMX exporter's /metrics for Prometheus (default 7071; rules in
#                           prometheus/jmx/kafka.yml)
#   KAFKA_HEAP_OPTS         JVM heap (default -Xms256m -Xmx512m)
#   KAFKA_READY_TIMEOUT     seconds `start`/`wait` wait (default 60)
#   XDG_CACHE_HOME          the jars go to ${XDG_CACHE_HOME:-~/.cache}/ecommerce-platform/kafka/<version>
#
# Exit codes: 0 ok, 1 failure, 2 usage, 3 missing prerequisite (Java or Maven).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KAFKA_VERSION=4.1.1
# Kafka 4.1.1 logs through slf4j-api 1.7.x: the matching log4j2 binding is log4j-slf4j-impl
# (not log4j-slf4j2-impl), at the log4j version Kafka itself resolves.
LOG4J_VERSION=2.24.3
# the Prometheus JMX exporter as a Java agent: the broker's MBeans on /metrics
JMX_EXPORTER_VERSION=1.0.1
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/ecommerce-platform"
LIB="$CACHE/kafka/$KAFKA_VERSION/lib"
JMX_AGENT="$CACHE/kafka/jmx_prometheus_javaagent-$JMX_EXPORTER_VERSION.jar"
STACK_DIR="${STACK_DIR:-$ROOT/var}"
DIR="$STACK_DIR/kafka"
PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
METRICS_PORT="${KAFKA_METRICS_PORT:-7071}"
TIMEOUT="${KAFKA_READY_TIMEOUT:-60}"

log() { echo "[kafka] $*" >&2; }
die() { echo "[kafka] ERROR: $*" >&2; exit 1; }

check() {
    local version
    if ! command -v java >/dev/null 2>&1; then
        log "Java is missing: Kafka and the Flink analytics job need Java 17 or newer."
        log "Install it (Debian: apt-get install openjdk-17-jre-headless maven) and run again."
        log "The core platform (services, gateway) runs without it; only analytics is off."
        return 3
    fi
    version="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
    if [ "${version%%.*}" -lt 17 ] 2>/dev/null; then
        log "Java $version found; Kafka $KAFKA_VERSION needs Java 17 or newer (the core platform runs without it)"
        return 3
    fi
    if [ ! -f "$LIB/.complete" ] && ! command -v mvn >/dev/null 2>&1; then
        log "Maven is missing: it resolves Kafka's jars from Maven Central (Debian: apt-get install maven)"
        return 3
    fi
}

fetch() {
    if [ ! -s "$JMX_AGENT" ]; then
        check
        log "resolving io.prometheus.jmx:jmx_prometheus_javaagent:$JMX_EXPORTER_VERSION from Maven Central"
        mvn -q -B -Dstyle.color=never -Dmaven.repo.local="$CACHE/m2" dependency:copy \
            -Dartifact="io.prometheus.jmx:jmx_prometheus_javaagent:$JMX_EXPORTER_VERSION" \
            -DoutputDirectory="$(dirname "$JMX_AGENT")" >&2 \
            || die "mvn could not resolve the JMX exporter agent"
    fi
    [ -f "$LIB/.complete" ] && return 0
    check
    log "resolving Kafka $KAFKA_VERSION from Maven Central into $LIB"
    local work
    work="$(mktemp -d)"
    cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.ecommerce</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
POM
    rm -rf "$LIB.tmp"
    if ! (cd "$work" && mvn -q -B -Dstyle.color=never -Dmaven.repo.local="$CACHE/m2" dependency:copy-dependencies \
            -DincludeScope=runtime -DoutputDirectory="$LIB.tmp" >&2); then
        rm -rf "$work" "$LIB.tmp"
        die "mvn could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
    fi
    rm -rf "$work" "$LIB"
    mv "$LIB.tmp" "$LIB"
    touch "$LIB/.complete"
}

# The JVM options for any Kafka main class on the cached jars, in JAVA_ARGS.
java_args() {
    read -r -a JAVA_ARGS <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
    JAVA_ARGS+=(-XX:+UseG1GC -Djava.awt.headless=true -Dlog4j2.configurationFile="$DIR/log4j2.xml"
                -cp "$LIB/*")
}

java_run() { java_args; java "${JAVA_ARGS[@]}" "$@"; }

configure() {
    mkdir -p "$DIR/data"
    # Only 127.0.0.1: a development broker has no authentication.
    cat >"$DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DIR/data
# one node: every internal topic has a single replica
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
# topics are created by their owners with explicit partitions and retention (docs/analytics.md)
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
num.partitions=1
PROPS
    cat >"$DIR/log4j2.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <Console name="stdout" target="SYSTEM_OUT">
      <PatternLayout pattern="%d{ISO8601} %-5p %c{1}: %m%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="stdout"/></Root>
    <!-- per-request and per-segment chatter -->
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="org.apache.kafka.storage" level="WARN"/>
    <Logger name="kafka.log" level="WARN"/>
    <Logger name="org.apache.kafka.controller" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <!-- the analytics job's exactly-once sink opens a transaction per checkpoint -->
    <Logger name="kafka.coordinator.transaction" level="WARN"/>
    <Logger name="org.apache.kafka.coordinator.transaction" level="WARN"/>
  </Loggers>
</Configuration>
XML
    if [ ! -f "$DIR/data/meta.properties" ]; then
        local cluster_id
        cluster_id="$(java_run kafka.tools.StorageTool random-uuid)"
        log "formatting KRaft storage in $DIR/data (cluster $cluster_id)"
        java_run kafka.tools.StorageTool format --standalone -t "$cluster_id" \
            -c "$DIR/server.properties" >&2 || die "kafka-storage format failed"
    fi
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

# wait_ready [PID]: until the broker listens; gives up early if PID died
wait_ready() {
    local start=$SECONDS pid="${1:-}"
    until listening; do
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            log "the broker exited during start-up; see $DIR/kafka.log"
            return 1
        fi
        if [ $((SECONDS - start)) -ge "$TIMEOUT" ]; then
            log "the broker did not listen on 127.0.0.1:$PORT within ${TIMEOUT}s; see $DIR/kafka.log"
            return 1
        fi
        sleep 0.5
    done
}

run() {
    fetch
    configure
    log "Kafka $KAFKA_VERSION (KRaft) on 127.0.0.1:$PORT, data in $DIR/data, metrics on 127.0.0.1:$METRICS_PORT"
    java_args
    # the agent on the broker only: the StorageTool runs above must not bind the metrics port
    exec java "-javaagent:$JMX_AGENT=127.0.0.1:$METRICS_PORT:$ROOT/prometheus/jmx/kafka.yml" \
        "${JAVA_ARGS[@]}" kafka.Kafka "$DIR/server.properties"
}

pid_alive() { [ -s "$DIR/kafka.pid" ] && kill -0 "$(cat "$DIR/kafka.pid")" 2>/dev/null; }

start() {
    if pid_alive; then log "already running (pid $(cat "$DIR/kafka.pid"))"; return 0; fi
    fetch
    mkdir -p "$DIR"
    # setsid: the broker must outlive the shell that started it
    setsid bash "${BASH_SOURCE[0]}" run >"$DIR/kafka.log" 2>&1 < /dev/null &
    echo $! >"$DIR/kafka.pid"
    wait_ready "$(cat "$DIR/kafka.pid")" || { tail -n 20 "$DIR/kafka.log" >&2; exit 1; }
    log "ready on 127.0.0.1:$PORT (pid $(cat "$DIR/kafka.pid"), log $DIR/kafka.log)"
}

stop() {
    if ! pid_alive; then log "not running"; rm -f "$DIR/kafka.pid"; return 0; fi
    local pid
    pid="$(cat "$DIR/kafka.pid")"
    kill -TERM "$pid"
    for _ in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "still running after 30s; killing pid $pid"
        kill -KILL "$pid"
    fi
    rm -f "$DIR/kafka.pid"
    log "stopped"
}

status() {
    if listening; then echo "kafka: running (127.0.0.1:$PORT)"; else echo "kafka: stopped"; fi
}

case "${1:-}" in
    check) check ;;
    fetch) fetch ;;
    run) run ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    wait) wait_ready ;;
    *) echo "usage: scripts/kafka.sh check|fetch|run|start|stop|status|wait" >&2; exit 2 ;;
esac
