"""Where the tests' Kafka and MongoDB come from: one fixture, three sources.

1. ``TEST_KAFKA_BOOTSTRAP_SERVERS`` / ``TEST_MONGODB_URI``: servers you already run.
2. A Docker engine: testcontainers starts Apache Kafka and MongoDB.
3. Otherwise: the embedded Tansu broker and SecantusDB as child processes.

Separate ``TEST_`` variables, so a shell configured for a real deployment never
points the test suite at it by accident.
"""

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from persona_pipeline.devstack.servers import free_port, start_kafka, start_mongodb


@dataclass(frozen=True)
class Endpoints:
    kafka: str
    mongodb_uri: str
    source: str


def _docker_engine_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    return probe.returncode == 0


@contextlib.contextmanager
def _containers() -> Iterator[Endpoints]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.mongodb import MongoDbContainer

    with KafkaContainer().with_kraft() as kafka, MongoDbContainer("mongo:8.0") as mongo:
        yield Endpoints(kafka.get_bootstrap_server(), mongo.get_connection_url(), "testcontainers")


@contextlib.contextmanager
def _embedded(workdir: Path) -> Iterator[Endpoints]:
    kafka = start_kafka(free_port(), workdir / "logs")
    try:
        mongo = start_mongodb(free_port(), ":memory:", workdir / "logs")
        try:
            yield Endpoints(kafka.address, f"mongodb://{mongo.address}", "embedded")
        finally:
            mongo.stop()
    finally:
        kafka.stop()


@contextlib.contextmanager
def test_stack(workdir: Path) -> Iterator[Endpoints]:
    kafka, mongo = (
        os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS"),
        os.environ.get("TEST_MONGODB_URI"),
    )
    if kafka and mongo:
        yield Endpoints(kafka, mongo, "external")
    elif _docker_engine_available():
        with _containers() as endpoints:
            yield endpoints
    else:
        with _embedded(workdir) as endpoints:
            yield endpoints
