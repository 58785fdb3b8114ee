"""1,000 hostile messages interleaved with 2,000 honest door events, on the real stack.

What a hostile or broken producer sends, each with the fate the documented rules give it (README
"Bad input and dead letters", `schemas/`), decided here from what is sent, never from what the worker
did: random bytes (`not_utf8`, `not_json`), truncated or invalid JSON, NaN, Infinity, 1e400 and nesting
past the depth limit (`not_json`), JSON that is not an object (`not_an_object`, `empty`), wrong types per
field (`wrong_type`), missing fields (`missing_field`), unknown kinds and odd store ids (`out_of_range`),
over-long ids (`too_large`), huge numbers (`out_of_range`, `bad_timestamp`), absurd timestamps
(`bad_timestamp`; a month or a year behind the store's time: `late`), both door forms at once
(`conflicting_fields`), messages over `FOOTFALL_MAX_MESSAGE_BYTES` (`too_large`) and mixed batches (one
dead letter per bad element). What is valid, however odd, is counted: extra members, control characters in
an event id, a store id using every allowed character, an event 20 minutes ahead, a 990 kB event just
under the limit, mis-keyed events (re-routed), an event id reused by another store. An event id reused
by the same store with other content is a duplicate: dropped, counted in `duplicates`, no dead letter.

The row (`footfall faults`): every bucket exact against a brute-force count of the valid events,
each reason's dead letters exactly as many as sent, the worker's `duplicates` and `rerouted` counts as
sent, the worker alive with `/health` 200; `recovery s` runs from the last message on the broker until
every valid event is counted.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from footfall.schemas.messages import MAX_BATCH_EVENTS, MAX_DEPTH, MAX_MESSAGE_BYTES
from footfall.scripts.stack import free_port
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.faults.faultkit import BUCKET_MS, HOUR_MS, Tally, Traffic, door, health, worker_counts
from tests.faults.test_worker_crashes import check
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults]

HONEST = 2000
HOSTILE = 1000
DAY_MS = 24 * HOUR_MS

#: One message: (key, value, events it must count, dead-letter reasons it must bring).
Message = tuple[bytes | None, bytes, list[dict], list[str]]


class Hostile:
    """Builds the hostile message that follows the honest event `ref` (of `ref["store_id"]`, already sent)."""

    def __init__(self, rng: random.Random, now_ms: int) -> None:
        self.rng, self.now_ms, self.n = rng, now_ms, 0
        #: What the worker must count of them beyond counted events and dead letters.
        self.expected: Counter[str] = Counter()

    def fresh(self, ref: dict, **changes: Any) -> dict:
        """A valid door event of `ref`'s store at `ref`'s time with a new id, then `changes` (None drops)."""
        self.n += 1
        event = {**door(f"hostile-{self.n}", ref["store_id"], ref["ts"]), **changes}
        return {k: v for k, v in event.items() if v is not None}

    def rejected(self, ref: dict, reason: str, **changes: Any) -> Message:
        event = self.fresh(ref, **changes)
        return ref["store_id"].encode(), orjson.dumps(event), [], [reason]

    def counted(self, ref: dict, key: bytes | None = b"", **changes: Any) -> Message:
        event = self.fresh(ref, **changes)
        return (event["store_id"].encode() if key == b"" else key), orjson.dumps(event), [event], []

    def raw(self, ref: dict, value: bytes, reason: str, key: bytes | None = b"") -> Message:
        return (ref["store_id"].encode() if key == b"" else key), value, [], [reason]

    def miskeyed(self, ref: dict, key: bytes | None) -> Message:
        """A valid event under another key (or none): re-routed under its store's, then counted."""
        self.expected["rerouted"] += 1
        return self.counted(ref, key=key)

    def duplicate(self, ref: dict) -> Message:
        """`ref`'s event id again in its store, with other content: dropped as a duplicate."""
        self.expected["duplicates"] += 1
        again = {**ref, "door_id": "side", "sensor_id": "cnt-9", "ts": ref["ts"] + 1_000}
        return ref["store_id"].encode(), orjson.dumps(again), [], []

    def mixed_batch(self, ref: dict) -> Message:
        """A batch: a new event, its id again (duplicate), a wrong type and a missing field."""
        self.expected["duplicates"] += 1
        first, wrong, incomplete = self.fresh(ref), self.fresh(ref, door_id=5), self.fresh(ref, sensor_id=None)
        batch = [first, {**first, "door_id": "again"}, wrong, incomplete]
        return ref["store_id"].encode(), orjson.dumps(batch), [first], ["wrong_type", "missing_field"]

    def with_member(self, ref: dict, levels: int) -> bytes:
        """A valid event with an extra member nested `levels` deep (bytes: orjson encodes 254 at most)."""
        body = orjson.dumps(self.fresh(ref, x=0))
        return body.replace(b'"x":0', b'"x":' + b"[" * levels + b"1" + b"]" * levels)

    def padded(self, ref: dict, size: int, **changes: Any) -> tuple[dict, bytes]:
        """An event whose extra member `pad` makes it `size` bytes."""
        event = self.fresh(ref, pad="")
        event.update(changes)
        event["pad"] = "p" * (size - len(orjson.dumps(event)))
        raw = orjson.dumps(event)
        assert len(raw) == size
        return event, raw

    def variants(self) -> list[Callable[[dict], Message]]:
        """Every kind of hostile message but the oversized ones, each a function of the honest event before it."""
        rng, now = self.rng, self.now_ms

        def ts_of(ts: Any) -> Callable[[dict], Message]:
            return lambda r: self.rejected(r, "bad_timestamp", ts=ts)

        def wrong(**changes: Any) -> Callable[[dict], Message]:
            return lambda r: self.rejected(r, "wrong_type", **changes)

        def missing(name: str) -> Callable[[dict], Message]:
            return lambda r: self.raw(r, orjson.dumps({k: v for k, v in self.fresh(r).items() if k != name}),
                                      "missing_field")

        def bad_store(store: str, reason: str) -> Callable[[dict], Message]:
            return lambda r: (store.encode(), orjson.dumps(self.fresh(r, store_id=store)), [], [reason])

        return [
            # Bytes that are not even text, text that is not JSON, JSON cut short or invalid.
            lambda r: self.raw(r, b"\xff" + rng.randbytes(rng.randint(0, 300)), "not_utf8", key=rng.randbytes(8)),
            lambda r: self.raw(r, bytes(rng.choice(b"xyz{}[]:,\" 0123456789") for _ in range(rng.randint(1, 200)))
                               + b"}x", "not_json", key=None),
            lambda r: self.raw(r, (body := orjson.dumps(self.fresh(r)))[:rng.randint(1, len(body) - 1)], "not_json"),
            lambda r: self.raw(r, orjson.dumps(self.fresh(r))[:-1] + b',}', "not_json"),
            lambda r: self.raw(r, orjson.dumps(self.fresh(r)).replace(b'"', b"'"), "not_json"),
            lambda r: self.raw(r, orjson.dumps(self.fresh(r, ts=0)).replace(b'"ts":0', b'"ts":NaN'), "not_json"),
            lambda r: self.raw(r, orjson.dumps(self.fresh(r, ts=0)).replace(b'"ts":0', b'"ts":Infinity'), "not_json"),
            lambda r: self.raw(r, orjson.dumps(self.fresh(r, ts=0)).replace(b'"ts":0', b'"ts":1e400'), "not_json"),
            lambda r: self.raw(r, orjson.dumps(self.fresh(r, event_id="x")).replace(b'"x"', b'"\\ud800"'), "not_json"),
            lambda r: self.raw(r, orjson.dumps(self.fresh(r)) * 2, "not_json"),
            lambda r: self.raw(r, b"   \n", "not_json"),
            lambda r: self.raw(r, b"[" * 2000 + b"]" * 2000, "not_json"),  # past orjson's own 1,024
            lambda r: self.raw(r, self.with_member(r, MAX_DEPTH), "not_json"),  # the event is one level more
            lambda r: self.raw(r, self.with_member(r, 300), "not_json"),
            lambda r: (b"", b"[" + orjson.dumps(self.fresh(r)) + b"," + self.with_member(r, 400) + b"]", [],
                       ["not_json"]),
            # JSON, but no event.
            lambda r: self.raw(r, b"42", "not_an_object"),
            lambda r: self.raw(r, b'"door"', "not_an_object"),
            lambda r: self.raw(r, b"true", "not_an_object"),
            lambda r: self.raw(r, b"null", "not_an_object"),
            lambda r: self.raw(r, b"-0.0", "not_an_object"),
            lambda r: (r["store_id"].encode(), b'[1, "a", null]', [], ["not_an_object"] * 3),  # one per element
            lambda r: self.raw(r, b"[]", "empty"),
            lambda r: self.raw(r, b"", "empty"),
            lambda r: self.raw(r, orjson.dumps([0] * (MAX_BATCH_EVENTS + 1)), "too_large"),
            # Huge numbers.
            ts_of(1e20),
            ts_of(18_446_744_073_709_551_615),
            lambda r: self.raw(r, orjson.dumps(self.fresh(r, ts=0)).replace(b'"ts":0', b'"ts":-9223372036854775809'),
                               "bad_timestamp"),
            lambda r: self.raw(r, orjson.dumps(self.fresh(r, direction=None, count_in=0, count_out=0, interval_s=60))
                               .replace(b'"count_in":0', b'"count_in":123456789012345678901234567890'), "out_of_range"),
            lambda r: self.rejected(r, "out_of_range", schema_version=1e300),
            lambda r: self.rejected(r, "out_of_range", schema_version=2),
            lambda r: self.raw(r, orjson.dumps({**self.fresh(r, kind="pos", door_id=None, sensor_id=None,
                                                              direction=None),
                                                "transaction_id": "t", "amount": 1e308, "items": 1}), "out_of_range"),
            lambda r: self.rejected(r, "out_of_range", direction=None, count_in=-1, count_out=0, interval_s=60),
            # Wrong types, field by field.
            wrong(event_id=5),
            wrong(store_id=["fault-0"]),
            wrong(kind=1),
            wrong(schema_version="1"),
            wrong(schema_version=True),
            wrong(ts=True),
            wrong(ts=1.5),
            wrong(ts={"$date": 1}),
            wrong(door_id={}),
            wrong(sensor_id=3.5),
            wrong(direction=1),
            wrong(region=7),
            wrong(zone=[]),
            wrong(direction=None, count_in="3", count_out=0, interval_s=60),
            # Missing fields.
            *(missing(name) for name in ("event_id", "store_id", "kind", "ts", "schema_version", "door_id",
                                         "sensor_id", "direction")),
            lambda r: self.raw(r, orjson.dumps({**self.fresh(r), "store_id": None}), "missing_field"),
            lambda r: self.rejected(r, "missing_field", direction=None, count_in=3, count_out=0),
            # Unknown kinds, other enums.
            lambda r: self.rejected(r, "out_of_range", kind="exit"),
            lambda r: self.rejected(r, "out_of_range", kind="DOOR"),
            lambda r: self.rejected(r, "out_of_range", kind=""),
            lambda r: self.rejected(r, "out_of_range", direction="sideways"),
            lambda r: self.rejected(r, "out_of_range", vertical="casino"),
            lambda r: self.rejected(r, "conflicting_fields", count_in=1, count_out=0, interval_s=60),
            # Absurd timestamps: before 2000, far ahead, not ISO-8601, no offset; a month and a year behind: late.
            ts_of(0),
            ts_of("1999-12-31T23:59:59Z"),
            ts_of(now + 10 * 365 * DAY_MS),
            ts_of(now + 2 * HOUR_MS),
            ts_of("9999-12-31T23:59:59+00:00"),
            ts_of("2026-13-45T00:00:00Z"),
            ts_of("2026-01-01T00:00:00"),
            ts_of("x" * 50),
            lambda r: self.rejected(r, "late", ts=r["ts"] - 30 * DAY_MS),
            lambda r: self.rejected(r, "late", ts=r["ts"] - 400 * DAY_MS),
            # Odd store and event ids.
            bad_store("fault-0\x00", "out_of_range"),
            bad_store("\x1b[31mfault-1", "out_of_range"),
            bad_store("fault-0\n", "out_of_range"),
            bad_store("fault 0", "out_of_range"),
            bad_store("-fault", "out_of_range"),
            bad_store("магазин-1", "out_of_range"),
            bad_store("", "out_of_range"),
            bad_store("s" * 65, "too_large"),
            bad_store("s" * 10_240, "too_large"),
            lambda r: self.rejected(r, "too_large", event_id="e" * 10_240),
            lambda r: self.rejected(r, "too_large", door_id="d" * 129),
            # Valid, however odd: counted.
            lambda r: self.counted(r, event_id=f"\x00\x07\x1b[2J-{self.n}-\u202e"),
            lambda r: self.counted(r, store_id="Odd.store:id_9-"),
            lambda r: self.counted(r, extra={"a": [1, 2, {"b": None}], "deep": [[[[[[[[[[1]]]]]]]]]]},
                                   _meta="m" * 1000, customer_id="card-4111"),
            lambda r: self.miskeyed(r, b"fault-unrelated"),
            lambda r: self.miskeyed(r, None),
            lambda r: self.counted(r, store_id="hostile-future", ts=now + 20 * 60_000),  # within the hour allowed
            lambda r: (r["store_id"].encode(), orjson.dumps(e := self.fresh(r)).replace(
                str(r["ts"]).encode(), f"{r['ts']}.0".encode()), [e], []),  # whole ms written with a zero fraction
            # The same event id: in the same store with other content a duplicate; in another store counted.
            self.duplicate,
            lambda r: self.counted(r, event_id=r["event_id"], store_id="hostile-other"),
            self.mixed_batch,
        ]

    def oversized(self) -> list[Callable[[dict], Message]]:
        """At the size limit (`FOOTFALL_MAX_MESSAGE_BYTES`): just under it counted or judged, over it too_large."""
        def under_valid(r: dict) -> Message:
            event, raw = self.padded(r, MAX_MESSAGE_BYTES - 10_000)
            return r["store_id"].encode(), raw, [event], []

        return [
            under_valid,
            lambda r: self.raw(r, self.padded(r, MAX_MESSAGE_BYTES - 10_000, door_id=5)[1], "wrong_type"),
            lambda r: self.raw(r, self.padded(r, MAX_MESSAGE_BYTES + 10_000)[1], "too_large"),
            lambda r: self.raw(r, b"\xff" * (MAX_MESSAGE_BYTES + 1), "too_large", key=None),
        ]


def hostile_traffic(name: str, seed: int = 20260301) -> tuple[list[Message], Counter[str]]:
    """`HONEST` door events over six stores, 5 s apart from about four hours ago, with `HOSTILE` hostile messages
    spread among them, each after an honest event of the store it names (so `late` and duplicates are decided).

    Returns the messages, and the duplicates and re-routes the worker must count among them.
    """
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    t0 = (now - 4 * HOUR_MS) // BUCKET_MS * BUCKET_MS
    honest = [door(f"{name}-{i}", f"fault-{i % 6}", t0 + i * 5_000) for i in range(HONEST)]
    hostile = Hostile(rng, now)
    variants, oversized = hostile.variants(), hostile.oversized()
    after = sorted(rng.randrange(12, HONEST) for _ in range(HOSTILE))  # each after the honest event at that index
    big_at = set(rng.sample(range(HOSTILE), len(oversized)))
    messages: list[Message] = []
    k, big = 0, 0
    for i, event in enumerate(honest):
        messages.append((event["store_id"].encode(), orjson.dumps(event), [event], []))
        while k < HOSTILE and after[k] == i:
            build = oversized[big] if k in big_at else variants[k % len(variants)]
            big += k in big_at
            messages.append(build(event))
            k += 1
    assert k == HOSTILE and big == len(oversized)
    return messages, hostile.expected


def test_hostile_messages_interleaved_with_honest_traffic(services, worker_factory, unique_prefix):
    messages, expected = hostile_traffic(unique_prefix)
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    port = free_port()
    worker = worker_factory(web_enabled="true", web_port=port).start()
    wait_until(lambda: health(port) == 200, 90, "the worker up")
    traffic = Traffic(services.bootstrap, f"{unique_prefix}.events", unique_prefix, messages=messages)
    started = time.monotonic()
    traffic.start().join()
    tally = Tally(f"{HOSTILE} hostile messages among {HONEST} honest", unique_prefix, services.redis_url,
                  services.bootstrap, traffic)
    tally.fault()  # every message is on the broker: from now on the worker only catches up
    recovered = tally.wait_recovered()
    tally.extra["send_s"] = round(time.monotonic() - started, 1)
    counts = worker_counts(port)
    tally.extra["worker_counts"] = {name: int(counts.get(name, 0)) for name in ("duplicates", "rerouted")}
    tally.extra["worker_counts_expected"] = dict(sorted(expected.items()))
    row = tally.take()
    assert recovered is not None
    check(row, (worker, port))
    assert row["worker_counts"] == row["worker_counts_expected"], row
