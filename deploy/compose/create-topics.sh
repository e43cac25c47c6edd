#!/bin/sh
# One-shot topic creation for docker-compose.yml's `kafka-init` service.
#
# The broker runs with auto topic creation disabled and the api/worker run with
# KAFKA_CREATE_TOPICS=false, so this script is the single place that creates the
# pipeline's topics (persona_contracts.topics.Topics). It is idempotent
# (--if-not-exists), so re-running `docker compose up` is safe.
#
# Environment (set by docker-compose.yml):
#   KAFKA_BOOTSTRAP          broker address, e.g. kafka:9092
#   TOPIC_PREFIX             optional namespace, same as the app's KAFKA_TOPIC_PREFIX
#   TOPIC_PARTITIONS         partitions of the main topics (the app's KAFKA_PARTITIONS)
#   TOPIC_SHARD_PARTITIONS   partitions of persona.shards (the app's KAFKA_SHARD_PARTITIONS):
#                            at most this many workers share the shards of large requests
#   TOPIC_REPLICATION_FACTOR replication factor (1 on the single-node broker)
#   KAFKA_TOPICS             path of kafka-topics.sh (the apache/kafka image's by default;
#                            tests/deploy/test_compose.py points it at a stub)
set -eu

KAFKA_TOPICS="${KAFKA_TOPICS:-/opt/kafka/bin/kafka-topics.sh}"
: "${KAFKA_BOOTSTRAP:?KAFKA_BOOTSTRAP must be set, e.g. kafka:9092}"
TOPIC_PREFIX="${TOPIC_PREFIX:-}"
TOPIC_PARTITIONS="${TOPIC_PARTITIONS:-4}"
TOPIC_SHARD_PARTITIONS="${TOPIC_SHARD_PARTITIONS:-12}"
TOPIC_REPLICATION_FACTOR="${TOPIC_REPLICATION_FACTOR:-1}"

create_topic() {
    echo "creating topic $1 (partitions=$2, replication-factor=$TOPIC_REPLICATION_FACTOR)"
    "$KAFKA_TOPICS" --bootstrap-server "$KAFKA_BOOTSTRAP" --create --if-not-exists \
        --topic "$1" --partitions "$2" --replication-factor "$TOPIC_REPLICATION_FACTOR"
}

create_topic "${TOPIC_PREFIX}persona.requests" "$TOPIC_PARTITIONS"
create_topic "${TOPIC_PREFIX}persona.shards" "$TOPIC_SHARD_PARTITIONS"
create_topic "${TOPIC_PREFIX}persona.created" "$TOPIC_PARTITIONS"
create_topic "${TOPIC_PREFIX}persona.failed" "$TOPIC_PARTITIONS"
# Dead letters are rare and inspected by hand: one partition keeps them in order.
create_topic "${TOPIC_PREFIX}persona.requests.dlq" 1

"$KAFKA_TOPICS" --bootstrap-server "$KAFKA_BOOTSTRAP" --list
