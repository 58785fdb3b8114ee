"""What the fault-suite scenarios share: paced traffic with malformed messages in it, and the tally.

A scenario sends door events (each one arrival in its store's 15-minute bucket) and a few malformed
messages through a `Traffic` sender thread (or messages of its own, each with the events it must
count and the dead-letter reasons it must bring), breaks something mid-stream, then `Tally.take`
compares every bucket record in Redis with a brute-force count of what was sent: `lost` is what is
missing, summed per bucket, `double` what is counted beyond what was sent. Dead letters are read back
from `<prefix>.dead-letter` (one per source offset and batch element; repeats are reported apart).
`recovery_s` runs from the fault to the first moment every event sent before the fault is counted.
The row goes to `$FOOTFALL_FAULT_REPORT` (see `footfall.scripts.faultsuite`) before the test asserts
anything.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from footfall.schemas.keys import CHAIN, RedisKeys
from footfall.scripts.faultsuite import append_row
from tests.integration.test_pipeline import read_topic, redis_buckets

BUCKET_MS = 900_000
HOUR_MS = 3_600_000

#: Malformed messages and the reason each must be dead-lettered with.
MALFORMED: list[tuple[bytes, str]] = [
    (b"\xff\xfe\xfa not utf-8", "not_utf8"),
    (b'{"event_id": "cut', "not_json"),
    (b"42", "not_an_object"),
    (orjson.dumps({"event_id": "no-ts", "store_id": "fault-0", "kind": "door", "schema_version": 1,
                   "door_id": "main", "sensor_id": "cnt-1", "direction": "in"}), "missing_field"),
]


def door(event_id: str, store: str, ts_ms: int) -> dict:
    return {"event_id": event_id, "store_id": store, "kind": "door", "ts": ts_ms, "schema_version": 1,
            "door_id": "main", "sensor_id": "cnt-1", "direction": "in"}


def door_events(t0: int, n: int, stores: int, prefix: str = "fault", id_prefix: str = "f") -> list[dict]:
    """`n` arrivals 5 s apart from `t0`, over `stores` stores (`<prefix>-0`, ...) in turn."""
    return [door(f"{id_prefix}-{i}", f"{prefix}-{i % stores}", t0 + i * 5_000) for i in range(n)]


def http_get(url: str) -> tuple[int, str]:
    """(status, body) of a GET; (0, "") when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def health(port: int) -> int:
    """The status of a worker's `/health` on `port` (0: not answering)."""
    return http_get(f"http://127.0.0.1:{port}/health")[0]


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text, read by Prometheus' own parser: (name, sorted labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric(port: int, name: str) -> float:
    """A worker's `/metrics` figure `name`, summed over its labels."""
    status, text = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200, status
    return sum(v for (n, _), v in metric_samples(text).items() if n == name)


def worker_counts(port: int) -> dict[str, float]:
    """A worker's `footfall_worker_counts_total` by name (empty when it does not answer)."""
    status, text = http_get(f"http://127.0.0.1:{port}/metrics")
    if status != 200:
        return {}
    return {dict(labels).get("name", ""): value for (name, labels), value in metric_samples(text).items()
            if name == "footfall_worker_counts_total"}


@dataclass
class Traffic:
    """`n` door events over `stores` stores, 5 s apart from about four hours ago, keyed by store; a
    malformed message (cycling through `MALFORMED`) after every `bad_every` of them.

    Each message is `(key, value, events it must count, dead-letter reasons it must bring)`: a batch may
    hold several of each, and a duplicate neither. A scenario may build its own list (`messages=`).
    """

    bootstrap: str
    topic: str
    name: str
    n: int = 2000
    stores: int = 6
    bad_every: int = 250
    chunk: int = 20
    pause_s: float = 0.1
    messages: list[tuple[bytes | None, bytes, list[dict], list[str]]] = field(default_factory=list)
    sent_n: int = 0  # messages flushed to the broker so far
    error: BaseException | None = None
    _thread: threading.Thread | None = None
    _go: threading.Event = field(default_factory=threading.Event)
    _parked: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._go.set()
        if self.messages:
            return
        t0 = (int(time.time() * 1000) - 4 * HOUR_MS) // BUCKET_MS * BUCKET_MS
        bad = 0
        for i in range(self.n):
            event = door(f"{self.name}-{i}", f"fault-{i % self.stores}", t0 + i * 5_000)
            self.messages.append((event["store_id"].encode(), orjson.dumps(event), [event], []))
            if i % self.bad_every == self.bad_every // 2:
                payload, reason = MALFORMED[bad % len(MALFORMED)]
                self.messages.append((b"bad", payload, [], [reason]))
                bad += 1

    @property
    def events(self) -> list[dict]:
        return [e for _, _, events, _ in self.messages for e in events]

    @property
    def expected_reasons(self) -> Counter:
        return Counter(r for _, _, _, reasons in self.messages for r in reasons)

    def sent_events(self) -> list[dict]:
        """The valid events surely on the broker by now."""
        return [e for _, _, events, _ in self.messages[:self.sent_n] for e in events]

    def send(self, start: int = 0, stop: int | None = None) -> None:
        """Send messages[start:stop] in paced, flushed chunks (in the calling thread)."""
        stop = len(self.messages) if stop is None else stop
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5, retries=100, retry_backoff_ms=500)
        try:
            for at in range(start, stop, self.chunk):
                if not self._go.is_set():
                    self._parked.set()
                    self._go.wait()
                    self._parked.clear()
                for key, value, _, _ in self.messages[at:min(at + self.chunk, stop)]:
                    producer.send(self.topic, key=key, value=value)
                producer.flush(timeout=60)
                self.sent_n = min(at + self.chunk, stop)
                time.sleep(self.pause_s)
        finally:
            producer.close()

    def pause(self, timeout_s: float = 60.0) -> None:
        """Hold the sender between chunks (all it sent is on the broker) until `resume`."""
        self._go.clear()
        deadline = time.monotonic() + timeout_s
        while self.sending and not self._parked.is_set():
            assert time.monotonic() < deadline, "the sender did not pause"
            time.sleep(0.05)

    def resume(self) -> None:
        self._go.set()

    def start(self) -> Traffic:
        def target() -> None:
            try:
                self.send()
            except BaseException as exc:
                self.error = exc

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()
        return self

    def join(self, timeout_s: float = 120.0) -> None:
        assert self._thread is not None
        self._thread.join(timeout=timeout_s)
        assert not self._thread.is_alive(), "the sender did not finish"
        if self.error is not None:
            raise AssertionError(f"the sender failed: {self.error!r}") from self.error

    @property
    def sending(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


def brute(events: list[dict]) -> Counter:
    return Counter((e["store_id"], e["ts"] // BUCKET_MS * BUCKET_MS) for e in events)


def counted(client: redis.Redis, prefix: str) -> Counter:
    return Counter({key: int(r["arrivals"]) for key, r in redis_buckets(client, prefix).items() if r["arrivals"]})


def brute_days(events: list[dict]) -> Counter:
    """Arrivals per (store, UTC day) of `events` (the fault workers run in UTC)."""
    return Counter((e["store_id"], time.strftime("%Y-%m-%d", time.gmtime(e["ts"] // 1000))) for e in events)


def rollups_off(client: redis.Redis, prefix: str, want: Counter) -> int:
    """How far the chain roll-up's arrivals are from the sum over stores sent, summed over the buckets."""
    per_bucket: Counter = Counter()
    for (_, start), n in want.items():
        per_bucket[start] += n
    keys = RedisKeys(prefix)
    off = 0
    for start, n in per_bucket.items():
        got = client.hget(keys.rollup_totals("chain", CHAIN, start), "arrivals")
        off += abs(n - int(got or 0))
    return off


def days_off(client: redis.Redis, prefix: str, events: list[dict]) -> int:
    """How far each store's live `today.arrivals` is from the arrivals sent on its live record's day, summed."""
    want = brute_days(events)
    keys = RedisKeys(prefix)
    off = 0
    for store in {s for s, _ in want}:
        live = client.hgetall(keys.store_live(store))
        day = live.get(b"day", b"null").decode().strip('"')
        today = orjson.loads(live.get(b"today", b"null")) or {}
        off += abs(want[(store, day)] - int(today.get("arrivals") or 0))
    return off


def bucket_row(scenario: str, sent: int, want: Counter, found: Counter, dead_letters: dict[str, int],
               recovery_s: float | None, **extra: Any) -> dict[str, Any]:
    """A scenario's row from arrivals per (store, bucket) sent (`want`) and in Redis (`found`), recorded for the
    fault table (the scenarios of tests/integration that `footfall faults` runs too: skewed clock, backfill,
    changed bucket length)."""
    keys = set(want) | set(found)
    lost = sum(max(0, want[k] - found[k]) for k in keys)
    double = sum(max(0, found[k] - want[k]) for k in keys)
    row = {"scenario": scenario, "sent": sent, "valid": sum(want.values()), "counted": sum(found.values()),
           "dead_letters": dict(dead_letters), "dead_letters_expected": {}, "dead_letter_repeats": 0,
           "lost": lost, "double": double,
           "recovery_s": None if recovery_s is None else round(recovery_s, 2),
           "exact": lost == 0 and double == 0 and not dead_letters, **extra}
    append_row(row)
    return row


def covers(found: Counter, want: Counter) -> bool:
    return all(found[key] >= n for key, n in want.items())


def dead_letters(bootstrap: str, prefix: str) -> tuple[Counter, int]:
    """Dead letters by reason, one per source message (per element of a batch); and how many records repeated one."""
    seen: dict[tuple[int, int, bytes | None], str] = {}
    records = read_topic(bootstrap, f"{prefix}.dead-letter")
    for record in records:
        headers = dict(record.headers)
        source = (int(headers["footfall.source.partition"]), int(headers["footfall.source.offset"]),
                  headers.get("footfall.batch_index"))
        seen[source] = headers["footfall.reason"].decode()
    return Counter(seen.values()), len(records) - len(seen)


@dataclass
class Tally:
    """A scenario's clock and numbers: `fault()` when it breaks something, `take()` at the end."""

    scenario: str
    prefix: str
    redis_url: str
    bootstrap: str
    traffic: Traffic
    fault_at: float | None = None
    before_fault: Counter = field(default_factory=Counter)
    counted_at_fault: int = 0
    recovered_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.client = redis.Redis.from_url(self.redis_url)

    def counted(self) -> Counter:
        return counted(self.client, self.prefix)

    def fault(self) -> None:
        """Call right before breaking something: what is surely sent by then must come back."""
        self.before_fault = brute(self.traffic.sent_events())
        self.counted_at_fault = sum(self.counted().values())
        self.fault_at = time.monotonic()

    def wait_recovered(self, timeout_s: float = 120.0) -> float | None:
        """Seconds from the fault until everything sent before it is counted (None: not within `timeout_s`)."""
        assert self.fault_at is not None
        deadline = self.fault_at + timeout_s
        while time.monotonic() < deadline:
            if covers(self.counted(), self.before_fault):
                self.recovered_at = time.monotonic()
                return self.recovered_at - self.fault_at
            time.sleep(0.2)
        return None

    def take(self, settle_timeout_s: float = 120.0, quiet_s: float = 3.0) -> dict[str, Any]:
        """Wait (up to `settle_timeout_s`) for exact counts and every dead letter, then record the row."""
        want = brute(self.traffic.events)
        deadline = time.monotonic() + settle_timeout_s
        exact_at = None
        while time.monotonic() < deadline:
            if self.counted() == want:
                exact_at = time.monotonic()
                break
            time.sleep(0.25)
        time.sleep(quiet_s)  # nothing more arrives: nothing counted twice late
        # The chain's roll-up of each bucket and each store's day total, against what was sent (written in the
        # same flushes as the buckets; the live record within a second of them).
        rollup_off = day_off = -1
        while time.monotonic() < deadline or rollup_off < 0:
            rollup_off = rollups_off(self.client, self.prefix, want)
            day_off = days_off(self.client, self.prefix, self.traffic.events)
            if rollup_off == day_off == 0:
                break
            time.sleep(0.5)
        found = self.counted()
        keys = set(want) | set(found)
        lost = sum(max(0, want[k] - found[k]) for k in keys)
        double = sum(max(0, found[k] - want[k]) for k in keys)
        expected_reasons = self.traffic.expected_reasons
        reasons, repeats = dead_letters(self.bootstrap, self.prefix)
        while reasons != expected_reasons and time.monotonic() < deadline:
            time.sleep(0.5)
            reasons, repeats = dead_letters(self.bootstrap, self.prefix)
        row = {
            "scenario": self.scenario,
            "sent": len(self.traffic.messages),
            "valid": len(self.traffic.events),
            "counted": sum(found.values()),
            "dead_letters": dict(sorted(reasons.items())),
            "dead_letters_expected": dict(sorted(expected_reasons.items())),
            "dead_letter_repeats": repeats,
            "lost": lost,
            "double": double,
            "counted_at_fault": self.counted_at_fault,
            "recovery_s": None if self.recovered_at is None or self.fault_at is None
            else round(self.recovered_at - self.fault_at, 2),
            "exact_s": None if exact_at is None or self.fault_at is None else round(exact_at - self.fault_at, 2),
            "rollups_off": rollup_off,
            "days_off": day_off,
            "exact": lost == 0 and double == 0 and reasons == expected_reasons and rollup_off == day_off == 0,
            **self.extra,
        }
        append_row(row)
        return row
