"""Fixtures for tests that run real worker processes against the session's Kafka and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from footfall.scripts.stack import _die_with_parent

PSEUDONYM_SECRET = "integration-test-secret-0123456789"


@dataclass
class WorkerProcess:
    """A `footfall worker` subprocess with its own settings and log file."""

    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = None
    starts: int = 0
    logs: list[Path] = field(default_factory=list)

    def start(self) -> WorkerProcess:
        self.starts += 1
        log = self.log_path.with_name(f"{self.log_path.stem}-{self.starts}.log")
        self.logs.append(log)
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "footfall.scripts.cli", "worker"],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,  # no worker outlives an interrupted test run
            )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> int:
        """Send `sig` and wait for the process to exit; return its exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise AssertionError(f"worker did not stop within {timeout_s} s after signal {sig}") from None
        return self.proc.returncode

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())


@pytest.fixture
def worker_factory(services, unique_prefix: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Make worker processes for this test's prefix; all are stopped at the end."""
    made: list[WorkerProcess] = []

    def make(broker: str | None = None, **settings: str) -> WorkerProcess:
        env = dict(os.environ)
        env.update({
            "FOOTFALL_BROKER": broker or services.bootstrap,
            "FOOTFALL_REDIS_URL": services.redis_url,
            "FOOTFALL_TOPIC_PREFIX": unique_prefix,
            "FOOTFALL_APP_ID": f"{unique_prefix}-worker",
            "FOOTFALL_PSEUDONYM_SECRET": PSEUDONYM_SECRET,
            "FOOTFALL_PARTITIONS": "4",
            "FOOTFALL_LOG_LEVEL": "info",
            "FOOTFALL_DATA_DIR": str(tmp_path / f"data-{len(made)}"),
        })
        env.update({f"FOOTFALL_{k.upper()}": str(v) for k, v in settings.items()})
        worker = WorkerProcess(env, tmp_path / f"worker{len(made)}.log")
        made.append(worker)
        return worker

    yield make
    for worker in made:
        if worker.alive:
            worker.stop(signal.SIGKILL, timeout_s=10)


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.25) -> None:
    """Poll `condition` until true; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
