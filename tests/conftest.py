"""Session-wide services for the tests: one Kafka broker and one Redis per test run.

Where they come from, in order:
1. `FOOTFALL_TEST_BROKER` and `FOOTFALL_TEST_REDIS_URL` name running services;
2. testcontainers, when a Docker engine answers;
3. the project's own local stack: Apache Kafka from Maven artifacts and Debian's
   redis-server, on loopback and free ports (what CI uses).

Each test gets its own topic prefix, Redis key prefix and Faust app id, so tests
never see each other's data on the shared services.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    """Where the session's broker and Redis answer, and who provided them."""

    bootstrap: str
    redis_url: str
    provider: str


def _docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no client library, no socket, no engine: all mean "no Docker"
        return False


@contextlib.contextmanager
def _from_testcontainers() -> Iterator[Services]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.redis import RedisContainer

    with KafkaContainer("apache/kafka:3.9.1").with_kraft() as kafka, RedisContainer("redis:7") as redis_c:
        host = redis_c.get_container_host_ip()
        port = redis_c.get_exposed_port(6379)
        yield Services(kafka.get_bootstrap_server(), f"redis://{host}:{port}/0", "testcontainers")


@contextlib.contextmanager
def _from_local_stack(run_dir: Path) -> Iterator[Services]:
    from footfall.scripts.stack import LocalStack

    with LocalStack(run_dir, broker="kafka", progress=logger.warning) as stack:
        yield Services(stack.bootstrap, stack.redis_url, "local Apache Kafka + redis-server")


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """The session's Kafka broker and Redis (see the module docstring for the order)."""
    broker = os.environ.get("FOOTFALL_TEST_BROKER")
    redis_url = os.environ.get("FOOTFALL_TEST_REDIS_URL")
    if broker and redis_url:
        yield Services(broker, redis_url, "environment")
        return
    if _docker_answers():
        with _from_testcontainers() as found:
            yield found
        return
    with _from_local_stack(tmp_path_factory.mktemp("stack")) as found:
        yield found


@pytest.fixture(scope="session")
def tansu_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Tansu broker (memory storage) for the tests that compare brokers."""
    from footfall.scripts.stack import LocalStack

    with LocalStack(tmp_path_factory.mktemp("tansu"), broker="tansu", redis=False, progress=logger.warning) as stack:
        yield stack.bootstrap


@pytest.fixture
def unique_prefix() -> str:
    """A topic prefix, Redis key prefix and app id stem no other test uses."""
    return f"t{uuid.uuid4().hex[:12]}"
