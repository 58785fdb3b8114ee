"""Webhook delivery: signatures, the backoff schedule, which answers are retried, and refusals at start."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from footfall.scripts.webhooks import (
    Backoff,
    DeadLetterLog,
    WebhookSender,
    default_group_id,
    is_retryable,
    read_secret,
    sign,
    verify,
)

FOOTFALL = [sys.executable, "-m", "footfall.scripts.cli"]
BODY = orjson.dumps({"type": "alert", "alert_id": "d58246bb70802fa6", "store_id": "retail-001", "state": "opened"})


# -- signatures ----------------------------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_the_raw_body():
    secret = b"s3cret-\xff"
    expected = hmac.new(secret, BODY, hashlib.sha256).hexdigest()
    assert sign(secret, BODY) == f"sha256={expected}"
    assert verify(secret, BODY, f"sha256={expected}")
    assert not verify(secret, BODY + b" ", f"sha256={expected}")
    assert not verify(b"other", BODY, f"sha256={expected}")
    assert not verify(secret, BODY, expected)  # the scheme prefix is part of the value


def test_headers_carry_signature_delivery_and_timestamp():
    sender = WebhookSender("http://127.0.0.1:1/", b"k")
    before = int(time.time())
    headers = sender.headers(BODY, "footfall.alerts-3-17", attempt=2)
    assert headers["X-Footfall-Signature"] == "sha256=" + hmac.new(b"k", BODY, hashlib.sha256).hexdigest()
    assert headers["X-Footfall-Delivery"] == "footfall.alerts-3-17"
    assert before <= int(headers["X-Footfall-Timestamp"]) <= int(time.time())
    assert headers["X-Footfall-Attempt"] == "2"
    assert headers["Content-Type"] == "application/json"
    assert "X-Footfall-Signature" not in WebhookSender("http://127.0.0.1:1/", None).headers(BODY, "d", 1)


def test_secret_from_file_or_environment(tmp_path: Path):
    path = tmp_path / "key"
    path.write_text("  abc\n")
    assert read_secret(str(path), {"FOOTFALL_WEBHOOK_SECRET": "env"}) == b"abc"  # the file wins
    assert read_secret(None, {"FOOTFALL_WEBHOOK_SECRET": "env"}) == b"env"
    assert read_secret(None, {}) is None
    path.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        read_secret(str(path), {})
    with pytest.raises(ValueError, match="cannot read"):
        read_secret(str(tmp_path / "missing"), {})


def test_default_group_id_is_per_topic_and_url():
    a = default_group_id("p.alerts", "http://h/a")
    assert a == default_group_id("p.alerts", "http://h/a")
    assert a != default_group_id("p.alerts", "http://h/b") and a != default_group_id("p.staffing", "http://h/a")


# -- backoff ---------------------------------------------------------------------------------------------


def test_backoff_schedule_doubles_up_to_the_cap():
    backoff = Backoff(base_s=0.5, factor=2.0, max_s=30.0, jitter=0.5)
    assert backoff.schedule(9) == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert backoff.nominal(10_000) == 30.0  # no overflow
    rng = random.Random(7)
    for retry in range(12):
        nominal = backoff.nominal(retry)
        draws = [backoff.delay(retry, rng) for _ in range(300)]
        assert all(nominal * 0.5 <= d <= nominal for d in draws)
        assert max(draws) - min(draws) > nominal * 0.3  # jittered, not constant
    assert Backoff(jitter=0).delay(3) == 4.0
    with pytest.raises(ValueError):
        Backoff(base_s=0)
    with pytest.raises(ValueError):
        Backoff(jitter=1.5)


@pytest.mark.parametrize(("status", "retry"), [
    (None, True), (500, True), (502, True), (503, True), (504, True), (408, True), (429, True),
    (400, False), (401, False), (403, False), (404, False), (409, False), (410, False), (422, False), (301, False),
])
def test_what_is_retried(status: int | None, retry: bool):
    assert is_retryable(status) is retry


class Script:
    """A fake `post`: answers in turn, records each call."""

    def __init__(self, *answers: tuple[int | None, str, float | None]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[dict[str, str], float]] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float):
        self.calls.append((headers, time.monotonic()))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def fast(**kwargs) -> Backoff:
    return Backoff(base_s=0.01, factor=2.0, max_s=0.04, jitter=0.5, **kwargs)


def test_retries_connection_errors_and_5xx_then_delivers_with_the_same_delivery_id():
    script = Script((None, "ConnectionRefusedError", None), (503, "HTTP 503", None), (429, "HTTP 429", None),
                    (204, "", None))
    sender = WebhookSender("http://x/", b"k", backoff=fast(), retry_for_s=10, post=script)
    outcome = sender.deliver(BODY, "p.alerts-0-5")
    assert outcome.delivered and outcome.attempts == 4 and outcome.status == 204
    assert {h["X-Footfall-Delivery"] for h, _ in script.calls} == {"p.alerts-0-5"}
    assert [h["X-Footfall-Attempt"] for h, _ in script.calls] == ["1", "2", "3", "4"]
    assert all(verify(b"k", BODY, h["X-Footfall-Signature"]) for h, _ in script.calls)


def test_a_client_error_is_final_at_once():
    script = Script((400, "HTTP 400 Bad Request: nope", None))
    outcome = WebhookSender("http://x/", b"k", backoff=fast(), post=script).deliver(BODY, "d")
    assert not outcome.delivered and outcome.attempts == 1 and outcome.status == 400
    assert "400" in outcome.error


def test_gives_up_after_the_retry_time():
    script = Script((None, "ConnectionRefusedError: refused", None))
    sender = WebhookSender("http://x/", b"k", backoff=fast(), retry_for_s=0.3, post=script)
    started = time.monotonic()
    outcome = sender.deliver(BODY, "d")
    took = time.monotonic() - started
    assert not outcome.delivered and not outcome.stopped
    assert 0.3 <= took < 1.5
    assert outcome.attempts >= 5
    assert "gave up" in outcome.error and "refused" in outcome.error
    gaps = [b - a for (_, a), (_, b) in zip(script.calls, script.calls[1:], strict=False)]
    assert max(gaps) < 0.04 + 0.05  # never past the cap (plus scheduling slack)


def test_retry_after_is_honoured_up_to_the_cap():
    script = Script((429, "HTTP 429", 60.0), (200, "", None))
    sender = WebhookSender("http://x/", b"k", backoff=Backoff(base_s=0.01, max_s=0.2, jitter=0), post=script)
    outcome = sender.deliver(BODY, "d")
    assert outcome.delivered
    assert 0.18 <= script.calls[1][1] - script.calls[0][1] < 1.0


def test_stop_cuts_a_retry_wait_short_and_says_so():
    script = Script((None, "refused", None))
    sender = WebhookSender("http://x/", b"k", backoff=Backoff(base_s=5, max_s=5), post=script)
    threading.Timer(0.2, sender.stop.set).start()
    started = time.monotonic()
    outcome = sender.deliver(BODY, "d")
    assert outcome.stopped and not outcome.delivered and time.monotonic() - started < 2


def test_dead_letter_log_appends_json_lines(tmp_path: Path):
    log = DeadLetterLog(tmp_path / "sub" / "dl.jsonl")
    log.append({"delivery_id": "a", "error": "x"})
    log.append({"delivery_id": "b", "error": "y"})
    lines = [orjson.loads(line) for line in log.path.read_bytes().splitlines()]
    assert [entry["delivery_id"] for entry in lines] == ["a", "b"]


# -- real HTTP on loopback ---------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]], list[int]]]:
    """A loopback server answering each POST with the next status of `statuses` (then 200)."""
    got: list[tuple[dict[str, str], bytes]] = []
    statuses: list[int] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((dict(self.headers), body))
            status = statuses.pop(0) if statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", got, statuses
    finally:
        server.shutdown()
        server.server_close()


def test_over_http_the_receiver_can_verify_every_attempt(receiver):
    url, got, statuses = receiver
    statuses += [500, 503]
    outcome = WebhookSender(url, b"topsecret", backoff=fast()).deliver(BODY, "p.alerts-1-2")
    assert outcome.delivered and outcome.attempts == 3
    assert len(got) == 3
    for headers, body in got:
        assert body == BODY
        digest = hmac.new(b"topsecret", body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Footfall-Signature"], f"sha256={digest}")
        assert headers["X-Footfall-Delivery"] == "p.alerts-1-2"


def test_a_redirect_is_not_followed(receiver):
    url, got, statuses = receiver
    statuses.append(302)
    outcome = WebhookSender(url, b"k", backoff=fast()).deliver(BODY, "d")
    assert not outcome.delivered and outcome.status == 302 and len(got) == 1


# -- refusals at start -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "env", "message"), [
    ([], {}, "needs a signing secret"),
    (["--secret-file", "/nonexistent/key"], {}, "cannot read the secret file"),
    (["--unsigned"], {"FOOTFALL_WEBHOOK_SECRET": "x"}, "choose one"),
    (["--retry-for-s", "-1"], {"FOOTFALL_WEBHOOK_SECRET": "x"}, "must be a number > 0"),
])
def test_forwarder_refuses_to_start_without_a_usable_secret(extra: list[str], env: dict[str, str], message: str):
    result = subprocess.run([*FOOTFALL, "alerts", "--webhook", "http://127.0.0.1:1/h", *extra], capture_output=True,
                            text=True, timeout=60, env={"PATH": "/usr/bin:/bin", **env})
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_webhook_must_be_http():
    result = subprocess.run([*FOOTFALL, "alerts", "--webhook", "ftp://h/x", "--unsigned"], capture_output=True,
                            text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and "http://" in result.stderr
