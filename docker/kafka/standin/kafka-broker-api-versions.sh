#!/bin/bash
# The official image's script of that name (the health check calls it): kafka-tools' command
set -euo pipefail
read -r -a opts <<<"${KAFKA_OPTS:-}"
exec java "${opts[@]}" -Xmx256m -Dorg.apache.logging.log4j.level=WARN -cp '/opt/kafka/libs/*' \
    org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
