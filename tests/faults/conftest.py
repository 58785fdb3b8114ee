"""Fault tests: the session's Kafka and Redis for what they do not kill; anything they kill, they start."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from footfall.scripts.stack import _die_with_parent, free_port, wait_for_redis
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.faults.faultkit import health
from tests.integration.conftest import (
    WorkerProcess,
    wait_until,
    worker_factory,  # noqa: F401  (a fixture, shared)
)


class OwnRedis:
    """A redis-server this test starts and may kill (without persistence, as the stack runs it)."""

    def __init__(self, run_dir: Path) -> None:
        exe = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin")
        assert exe, "redis-server is not installed"
        self.exe, self.run_dir = exe, run_dir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> OwnRedis:
        """Start it (again: on the same port, empty)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.run_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent)
        wait_for_redis(self.url, proc=self.proc)
        return self

    def start_worker(self, services: Any, make_worker: Callable[..., WorkerProcess], prefix: str,
                     **settings: Any) -> tuple[WorkerProcess, int]:
        """This Redis started, the prefix's topics made (4 partitions), and a worker on both with its web port
        (`settings` beside): `(worker, port)` once its `/health` says 200."""
        ensure_topics(Settings(broker=services.bootstrap, topic_prefix=prefix, partitions=4))
        self.start()
        port = free_port()
        worker = make_worker(redis_url=self.url, web_enabled="true", web_port=port, **settings).start()
        wait_until(lambda: health(port) == 200, 90, "the worker up")
        return worker, port

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    redis = OwnRedis(tmp_path / "own-redis")
    yield redis
    redis.kill()
