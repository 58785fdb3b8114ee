"""The broker check and `footfall stack`, against real brokers.

Apache Kafka (the session's `services`) must pass every check; Tansu 0.6.0
(`tansu_bootstrap`) must fail `end_offsets_after_batches` with the offsets it
really reports. The CLI runs as a subprocess, as a user would run it.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from footfall.scripts.brokercheck import CHECKS, CheckResult, run_checks
from footfall.scripts.stack import stop_recorded

pytestmark = pytest.mark.integration

logger = logging.getLogger(__name__)

EXPECTED_END_OFFSETS = [1, 2, 7, 17]  # after batches of 1, 1, 5 and 10 records
OFFSETS = re.compile(r"expected end offsets \[([\d, ]*)\], observed \[([\d, ]*)\]")


def _by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {result.name: result for result in results}


def _offsets(detail: str) -> tuple[list[int], list[int]]:
    """The expected and observed end offsets a `end_offsets_after_batches` detail reports."""
    found = OFFSETS.search(detail)
    assert found is not None, detail
    expected, observed = ([int(x) for x in group.split(",") if x.strip()] for group in found.groups())
    return expected, observed


def _footfall(*args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "footfall.scripts.cli", *args],
                          capture_output=True, text=True, timeout=timeout_s)


def _running(pid: int) -> bool:
    """Whether `pid` is a live process; a zombie (exited, not yet reaped by init) is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.1)


def test_every_check_passes_on_apache_kafka(services, unique_prefix):
    results = run_checks(services.bootstrap, topic_prefix=unique_prefix, progress=logger.info)

    assert [r.name for r in results] == [check.name for check in CHECKS]
    assert [r for r in results if not r.ok] == []
    expected, observed = _offsets(_by_name(results)["end_offsets_after_batches"].detail)
    assert expected == observed == EXPECTED_END_OFFSETS


def test_tansu_reports_wrong_end_offsets_after_batches(tansu_bootstrap, unique_prefix):
    results = _by_name(run_checks(tansu_bootstrap, topic_prefix=unique_prefix, progress=logger.info))

    end_offsets = results["end_offsets_after_batches"]
    assert not end_offsets.ok
    expected, observed = _offsets(end_offsets.detail)
    assert expected == EXPECTED_END_OFFSETS
    assert observed != expected
    logger.info("tansu end offsets: expected %s, observed %s", expected, observed)
    assert "restore" in end_offsets.consequence


@pytest.mark.parametrize(
    ("broker_fixture", "exit_code", "verdict"),
    [
        ("services", 0, "PASS"),  # Apache Kafka: every check passes
        ("tansu_bootstrap", 1, "FAIL"),  # Tansu 0.6.0: end offsets after batches are wrong
    ],
)
def test_stack_check_exit_code(request, broker_fixture, exit_code, verdict):
    broker = request.getfixturevalue(broker_fixture)
    bootstrap = broker if isinstance(broker, str) else broker.bootstrap

    done = _footfall("stack", "check", "--bootstrap", bootstrap)

    assert done.returncode == exit_code, done.stdout + done.stderr
    assert re.search(rf"^end_offsets_after_batches\s+{verdict}\b", done.stdout, re.MULTILINE), done.stdout
    assert f"broker {bootstrap}" in done.stderr


def test_stack_up_status_down_leaves_nothing_running(tmp_path):
    run_dir = tmp_path / "stack"
    try:
        up = _footfall("stack", "up", "--run-dir", str(run_dir), "--broker", "tansu", timeout_s=90)
        assert up.returncode == 0, up.stderr
        state = json.loads((run_dir / "stack.json").read_text())
        assert set(state) == {"broker", "redis"}
        exports = f"export FOOTFALL_BROKER={state['broker']['url']} FOOTFALL_REDIS_URL={state['redis']['url']}"
        assert exports in up.stdout.splitlines()
        assert "WARNING: Tansu" in up.stderr
        assert all(_running(svc["pid"]) for svc in state.values())

        again = _footfall("stack", "up", "--run-dir", str(run_dir), "--broker", "tansu", timeout_s=60)
        assert again.returncode == 1
        assert "already running" in again.stderr

        status = _footfall("stack", "status", "--run-dir", str(run_dir), timeout_s=60)
        assert status.returncode == 0, status.stdout + status.stderr
        for name, svc in state.items():
            assert re.search(rf"^{name}\s+{svc['name']}\s+{svc['pid']}\s+alive\s+yes\b", status.stdout,
                             re.MULTILINE), status.stdout

        down = _footfall("stack", "down", "--run-dir", str(run_dir), timeout_s=90)
        assert down.returncode == 0, down.stderr
    finally:
        stop_recorded(run_dir)  # whatever failed above, leave no process behind

    for svc in state.values():
        _wait_until(lambda svc=svc: not _running(svc["pid"]), 10.0, f"{svc['name']} pid {svc['pid']} gone")
        assert not _listening(svc["port"]), f"{svc['name']} still listens on {svc['port']}"
    assert not (run_dir / "stack.json").exists()
    after = _footfall("stack", "status", "--run-dir", str(run_dir), timeout_s=60)
    assert after.returncode == 1
    assert "no stack recorded" in after.stdout
