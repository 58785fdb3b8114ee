"""`footfall export` and `footfall alerts --webhook` on the session's real Kafka (and Redis for the worker).

1. A worker counts simulated traffic until every bucket is closed; `footfall export` (a subprocess)
   then writes exactly the closed bucket records the worker published, whose counts equal a
   brute-force count of the events sent, and daily rows that sum them.
2. Alert changes are produced straight onto `<prefix>.alerts`; a forwarder (a subprocess) posts them
   to a loopback receiver that checks every signature. The receiver goes away for
   `FOOTFALL_TEST_WEBHOOK_DOWN_S` seconds (default 20; the requirement's minute is 60) while more
   changes are produced, and the forwarder is stopped and started again: every change arrives
   exactly once, in order per store, and a change the receiver refuses (410) is dead-lettered.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import http.server
import io
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import redis
from kafka import KafkaProducer

from footfall.schemas.records import record_schema
from footfall.scripts.stack import _die_with_parent
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.integration.conftest import wait_until
from tests.integration.flowdata import COMPARED, make_valid_traffic
from tests.integration.test_pipeline import read_topic, redis_buckets, send_all

pytestmark = pytest.mark.integration

FOOTFALL = [sys.executable, "-m", "footfall.scripts.cli"]
BUCKET_MS = 900_000
DOWN_S = float(os.environ.get("FOOTFALL_TEST_WEBHOOK_DOWN_S", "20"))
SECRET = "webhook-test-secret-0123456789"


def _env(services, prefix: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"FOOTFALL_BROKER": services.bootstrap, "FOOTFALL_REDIS_URL": services.redis_url,
                "FOOTFALL_TOPIC_PREFIX": prefix, **extra})
    return env


# -- 1. export ----------------------------------------------------------------------------------------


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def test_export_equals_the_closed_buckets_published(services, worker_factory, unique_prefix, tmp_path):
    now = int(time.time() * 1000)
    start = now // BUCKET_MS * BUCKET_MS - 4 * 3_600_000
    traffic = make_valid_traffic(random.Random(11), stores=6, events_per_store=300, start_ms=start,
                                 span_ms=3 * 3_600_000, miskeyed_fraction=0.0)
    expected = traffic.expected_buckets()
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    # No grace and a 2 s idle timeout: each bucket closes once its store moves past it, the last ones
    # when the stores fall silent.
    worker = worker_factory(grace_s=0, idle_timeout_s=2).start()
    send_all(services.bootstrap, f"{unique_prefix}.events", traffic.messages)
    client = redis.Redis.from_url(services.redis_url)

    def all_closed() -> bool:
        found = redis_buckets(client, unique_prefix)
        return set(expected) <= set(found) and all(found[k]["status"] == "closed" for k in expected)

    wait_until(all_closed, 180, "every bucket closed")
    assert worker.alive

    # What the worker published: the last closed record of each bucket, read straight off the topic.
    published: dict[tuple[str, int], dict[str, Any]] = {}

    def topic_has_all() -> bool:
        published.clear()
        for message in read_topic(services.bootstrap, f"{unique_prefix}.aggregates"):
            value = orjson.loads(message.value)
            if value.get("type") == "bucket" and value["status"] == "closed":
                published[(value["store_id"], value["bucket_start_ms"])] = value
        return set(published) == set(expected)

    wait_until(topic_has_all, 60, "every closed bucket on the topic", interval_s=2)
    for key, want in expected.items():
        assert {n: published[key][n] for n in COMPARED} == {n: want[n] for n in COMPARED}, key
        assert published[key]["sales"] == pytest.approx(want["sales"], abs=0.011)

    lo, hi = min(k[1] for k in expected), max(k[1] for k in expected) + BUCKET_MS
    out = tmp_path / "all.jsonl"
    result = subprocess.run([*FOOTFALL, "export", "--from", _iso(lo), "--to", _iso(hi), "--out", str(out)],
                            env=_env(services, unique_prefix), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    exported = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(exported) == len(expected)
    assert exported == [published[k] for k in sorted(published)]  # the records as published, sorted

    # Daily rows sum the buckets of each store's local day.
    daily = [orjson.loads(line) for line in (tmp_path / "all.daily.jsonl").read_bytes().splitlines()]
    sums: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for record in exported:
        for name in (*COMPARED, "sales"):
            sums[(record["store_id"], record["day"])][name] += record[name]
        sums[(record["store_id"], record["day"])]["buckets"] += 1
    assert {(d["store_id"], d["day"]) for d in daily} == set(sums)
    for row in daily:
        want = sums[(row["store_id"], row["day"])]
        assert row["buckets"] == want["buckets"]
        assert {n: row[n] for n in COMPARED} == {n: want[n] for n in COMPARED}
        assert row["sales"] == pytest.approx(want["sales"], abs=0.011)

    # A part of the range, two stores, as CSV on standard output: the same rows, flattened.
    stores = sorted({k[0] for k in expected})[:2]
    part_lo, part_hi = lo + 4 * BUCKET_MS, hi - 2 * BUCKET_MS
    result = subprocess.run([*FOOTFALL, "export", "--from", _iso(part_lo), "--to", _iso(part_hi),
                             "--store", stores[0], "--store", stores[1], "--format", "csv"],
                            env=_env(services, unique_prefix), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr  # no progress bar: stderr is not a terminal
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    want_keys = sorted(k for k in expected if k[0] in stores and part_lo <= k[1] < part_hi)
    assert [(r["store_id"], int(r["bucket_start_ms"])) for r in rows] == want_keys
    for row in rows:
        record = published[(row["store_id"], int(row["bucket_start_ms"]))]
        assert {n: int(row[n]) for n in COMPARED} == {n: record[n] for n in COMPARED}
        assert float(row["sales"]) == record["sales"]
        assert float(row["compare.arrivals.value"]) == record["compare"]["arrivals"]["value"]

    # By region, with a progress bar asked for.
    region = published[want_keys[0]]["region"]
    result = subprocess.run([*FOOTFALL, "export", "--from", _iso(lo), "--to", _iso(hi), "--region", region,
                             "--format", "jsonl", "--progress"],
                            env=_env(services, unique_prefix), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "reading" in result.stderr and "msg" in result.stderr
    got = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert got == [published[k] for k in sorted(published) if published[k]["region"] == region]
    assert 0 < len(got) < len(expected)

    # No such topic: a message and status 1, no traceback.
    result = subprocess.run([*FOOTFALL, "export", "--from", _iso(lo), "--to", _iso(hi)],
                            env=_env(services, unique_prefix + "x"), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "no topic" in result.stderr and "Traceback" not in result.stderr


# -- 2. webhooks ------------------------------------------------------------------------------------------


class Receiver:
    """A loopback webhook endpoint that can go away and come back on the same port."""

    def __init__(self, secret: bytes, refuse_store: str) -> None:
        self.secret = secret
        self.refuse_store = refuse_store
        self.accepted: list[tuple[str, bytes]] = []  # (delivery id, body) answered 200
        self.refused: list[str] = []
        self.bad_signatures = 0
        self.lock = threading.Lock()
        self.port = 0
        self.server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                digest = hmac.new(outer.secret, body, hashlib.sha256).hexdigest()
                ok = hmac.compare_digest(self.headers.get("X-Footfall-Signature", ""), f"sha256={digest}")
                delivery = self.headers["X-Footfall-Delivery"]
                assert self.headers["X-Footfall-Timestamp"].isdigit()
                with outer.lock:
                    if not ok:
                        outer.bad_signatures += 1
                        status = 401
                    elif orjson.loads(body)["store_id"] == outer.refuse_store:
                        outer.refused.append(delivery)
                        status = 410
                    else:
                        outer.accepted.append((delivery, body))
                        status = 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        self.server = None

    def count(self) -> int:
        with self.lock:
            return len(self.accepted)


def alert_change(store_id: str, n: int, at_ms: int) -> dict[str, Any]:
    state = "opened" if n % 3 == 0 else ("updated" if n % 3 == 1 else "resolved")
    start = at_ms - at_ms % BUCKET_MS
    return {
        "type": "alert", "alert_id": hashlib.sha256(f"{store_id}-{n // 3}".encode()).hexdigest()[:16],
        "store_id": store_id, "kind": "arrivals_high", "severity": "warning", "state": state,
        "started_ms": start, "updated_ms": at_ms, "bucket_start_ms": start, "bucket_end_ms": start + BUCKET_MS,
        "observed": 100.0 + n, "expected": 50.0, "expected_lo": 40.0, "expected_hi": 60.0, "score": 1.5,
        "explanation": f"change {n} of {store_id}", "resolved_ms": at_ms if state == "resolved" else None,
        "region": "north", "vertical": "retail", "tz": "UTC", "started": _iso(start), "bucket_start": _iso(start),
        "emitted_at_ms": int(time.time() * 1000),
    }


def test_webhook_receiver_gets_every_change_once_after_an_outage(services, unique_prefix, tmp_path):
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    topic = f"{unique_prefix}.alerts"
    validator = jsonschema.Draft202012Validator(record_schema("alert"))
    stores = ["retail-001", "bank-002", "telecom-003", "retail-004"]
    refused_store = "gone-009"
    sent: list[tuple[str, bytes]] = []  # (store, body) in the order produced
    counter = defaultdict(int)
    producer = KafkaProducer(bootstrap_servers=services.bootstrap, acks="all")

    def produce(per_store: int, refused: int = 0) -> None:
        for _ in range(per_store):
            for store in stores:
                record = alert_change(store, counter[store], int(time.time() * 1000))
                counter[store] += 1
                validator.validate(record)
                body = orjson.dumps(record)
                producer.send(topic, key=store.encode(), value=body)
                sent.append((store, body))
        for i in range(refused):
            record = alert_change(refused_store, i, int(time.time() * 1000))
            validator.validate(record)
            producer.send(topic, key=refused_store.encode(), value=orjson.dumps(record))
        producer.flush()

    receiver = Receiver(SECRET.encode(), refused_store)
    receiver.start()
    url = f"http://127.0.0.1:{receiver.port}/hooks/footfall"
    dead_letters = tmp_path / "dead.jsonl"
    argv = [*FOOTFALL, "alerts", "--webhook", url, "--from-beginning", "--group-id", f"{unique_prefix}-hook",
            "--dead-letter-file", str(dead_letters), "--backoff-base-s", "0.2", "--backoff-max-s", "2",
            "--retry-for-s", str(DOWN_S * 10)]
    env = _env(services, unique_prefix, FOOTFALL_WEBHOOK_SECRET=SECRET)
    logs: list[Path] = []

    def start_forwarder() -> subprocess.Popen:
        log = tmp_path / f"forwarder-{len(logs)}.log"
        logs.append(log)
        with open(log, "wb") as out:
            return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    preexec_fn=_die_with_parent)

    def log_text() -> str:
        return "\n".join(p.read_text(errors="replace") for p in logs)

    forwarder = start_forwarder()
    try:
        produce(per_store=5, refused=1)  # before and while it starts: --from-beginning takes them
        wait_until(lambda: receiver.count() == len(sent), 60, f"the first {len(sent)} changes\n{log_text()}")

        # The receiver goes away; changes keep coming.
        receiver.stop()
        produce(per_store=5)
        time.sleep(DOWN_S / 2)
        produce(per_store=5)
        time.sleep(DOWN_S / 2)
        assert receiver.count() == 20 and forwarder.poll() is None
        receiver.start()  # same port
        wait_until(lambda: receiver.count() == len(sent), 60, f"the changes held during the outage\n{log_text()}")

        # The forwarder is stopped (SIGTERM) and started again; nothing is lost, nothing repeated.
        forwarder.send_signal(signal.SIGTERM)
        assert forwarder.wait(timeout=30) == 0, log_text()
        produce(per_store=5, refused=1)
        forwarder = start_forwarder()
        wait_until(lambda: receiver.count() == len(sent), 60, f"the changes made while it was stopped\n{log_text()}")
        time.sleep(3)  # anything more would be a duplicate
    finally:
        if forwarder.poll() is None:
            forwarder.send_signal(signal.SIGTERM)
            forwarder.wait(timeout=30)
        producer.close()
        if receiver.server is not None:
            receiver.stop()

    assert receiver.bad_signatures == 0
    deliveries = [d for d, _ in receiver.accepted]
    assert len(deliveries) == len(set(deliveries)) == len(sent) == 80, (len(deliveries), len(set(deliveries)))
    assert sorted(body for _, body in receiver.accepted) == sorted(body for _, body in sent)  # byte for byte
    for store in stores:  # in order per store
        assert [b for _, b in receiver.accepted if orjson.loads(b)["store_id"] == store] == \
            [b for s, b in sent if s == store]
    assert all(d.startswith(f"{topic}-") for d in deliveries)
    # The refused changes: tried once each (410 is final), then dead-lettered with the error.
    assert len(receiver.refused) == 2
    entries = [orjson.loads(line) for line in dead_letters.read_bytes().splitlines()]
    assert [e["delivery_id"] for e in entries] == receiver.refused
    assert all(e["status"] == 410 and e["record"]["store_id"] == refused_store and "410" in e["error"]
               for e in entries)
    assert "attempt 1 failed" in log_text()  # the outage was retried, not dead-lettered
