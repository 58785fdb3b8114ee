"""One limit end to end (`FOOTFALL_MAX_MESSAGE_BYTES`): nothing the worker accepts leads to a send that cannot succeed.

The intake runs here against small fakes (topics, table, Redis); what is checked is what it hands
to the producer: an oversized input becomes a dead letter that is an excerpt plus the size and
sha256 of the original, within the limit; a store's state is kept under the limit (its duplicate
memory bounded, and a guard at each checkpoint), its overflow counted.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import orjson

from footfall.schemas.messages import EXCERPT_BYTES
from footfall.stream.app import faust_app_settings
from footfall.stream.intake import Intake, record_bytes
from footfall.stream.outbox import Outbox
from footfall.stream.settings import Settings
from footfall.stream.stores import StoreRegistry
from tests.unit.test_flush_failures import FakeRedis, FakeTable, FakeTopic

T0 = 1_780_000_000_000
LIMIT = 1_000_000


def make_intake(**overrides: Any) -> tuple[Intake, FakeTopic, FakeTopic]:
    settings = Settings(pseudonym_secret="0123456789abcdef-secret", idle_timeout_s=0, **overrides)
    events, dead = FakeTopic("t.events"), FakeTopic("t.dead-letter")
    stores = StoreRegistry(settings, FakeTable())
    return Intake(settings, stores, Outbox(), events, dead, FakeRedis()), events, dead


def door(i: int, store: str = "s1", **extra: Any) -> dict[str, Any]:
    return {"event_id": f"e{i}", "store_id": store, "kind": "door", "ts": T0 + i * 10, "schema_version": 1,
            "door_id": "d", "sensor_id": "c", "direction": "in", **extra}


def oversized(n_bytes: int = 1_040_000) -> bytes:
    """A JSON batch of valid-looking events of about `n_bytes`, with a raw customer id in its first event."""
    first = {**door(0), "kind": "pos", "transaction_id": "t", "amount": 1.0, "items": 1, "currency": "EUR",
             "till_id": "x", "customer_id": "card-raw-oversize"}
    first.pop("direction")
    events, size, i = [first], 200, 1
    while size < n_bytes - 1_100:
        events.append(door(i, pad="x" * 900))
        size += len(orjson.dumps(events[-1])) + 1
        i += 1
    raw = orjson.dumps(events)
    assert len(raw) <= n_bytes
    return raw + b" " * (n_bytes - len(raw))


async def apply_events(intake: Intake, ids: range, first_offset: int, per_message: int = 400) -> int:
    """Apply door events `ids` in batches small enough for a 64 KiB limit; returns the next offset."""
    offset = first_offset
    for start in range(ids.start, ids.stop, per_message):
        batch = [door(i) for i in range(start, min(start + per_message, ids.stop))]
        await intake.apply(b"s1", orjson.dumps(batch), "t.events", 0, offset, None)
        offset += 1
    return offset


def headers_of(topic: FakeTopic, i: int) -> dict[str, bytes]:
    return dict(topic.headers[i])


def test_the_limit_is_one_setting_from_the_decoder_to_the_producer():
    assert Settings().max_message_bytes == LIMIT
    intake, _, _ = make_intake(max_message_bytes=500_000)
    assert intake.limits.max_message_bytes == 500_000
    assert faust_app_settings(Settings(max_message_bytes=500_000), "x-")["producer_max_request_size"] == 500_000


def test_a_1_04_mb_message_is_dead_lettered_as_an_excerpt_with_the_hash_of_the_original():
    async def scenario():
        intake, _, dead = make_intake()
        raw = oversized()
        assert LIMIT < len(raw) < 1_048_576  # accepted by the old decoder, refused by the producer
        await intake.apply(b"s1", orjson.dumps(door(1)), "t.events", 0, 0, None)
        await intake.apply(b"s1", raw, "t.events", 0, 1, None)
        await intake.apply(b"s1", orjson.dumps(door(2)), "t.events", 0, 2, None)
        assert len(dead.sent) == 1
        value, headers = dead.sent[0][1], headers_of(dead, 0)
        assert headers["footfall.reason"] == b"too_large"
        assert len(value) <= EXCERPT_BYTES and value
        assert headers["footfall.original.sha256"] == hashlib.sha256(raw).hexdigest().encode()
        assert int(headers["footfall.original.bytes"]) == len(raw)
        assert int(headers["footfall.excerpt.bytes"]) == len(value)
        assert record_bytes(None, value, dead.headers[0]) <= LIMIT
        assert b"card-raw-oversize" not in value, "the excerpt is of the pseudonymised bytes"
        assert value.startswith(b'[{"event_id":"e0"')
        assert intake.outbox.totals["events"] == 2 and intake.outbox.totals["rejected"] == 1

    asyncio.run(scenario())


def test_any_dead_letter_too_large_to_send_whole_becomes_an_excerpt():
    async def scenario():
        intake, _, dead = make_intake(max_message_bytes=100_000)
        payload = b"z" * 99_990  # under the limit alone, over it with the dead letter's headers
        await intake.dead_letter(payload, "internal_error", "Boom: " + "é" * 3000, "t.events", 0, 5, None)
        small = b"{}"
        await intake.dead_letter(small, "not_json", "x", "t.events", 0, 6, None)
        value, headers = dead.sent[0][1], headers_of(dead, 0)
        assert len(value) == EXCERPT_BYTES and record_bytes(None, value, dead.headers[0]) <= 100_000
        assert headers["footfall.original.sha256"] == hashlib.sha256(payload).hexdigest().encode()
        assert dead.sent[1][1] == small and "footfall.original.sha256" not in headers_of(dead, 1)

    asyncio.run(scenario())


def test_a_state_over_the_limit_sheds_its_oldest_event_ids_counted_and_is_saved_small_enough():
    async def scenario():
        intake, _, _ = make_intake(max_message_bytes=65_536, dedupe_horizon_s=86_400)
        await intake.apply(b"s1", orjson.dumps(door(0)), "t.events", 0, 0, None)
        store = intake.stores["s1"]
        dedupe = store.pipeline.flow.dedupe
        assert dedupe.max_ids < 4_000, "bounded from the limit when the store came into memory"
        dedupe.max_ids = 10**9  # as if unbounded: the checkpoint's guard must still keep it saveable
        await apply_events(intake, range(1, 9_000), 1)
        assert intake.outbox.totals["events"] == 9_000
        assert intake.state_bytes("s1", store) > 65_536
        intake.collect_live()
        assert "s1" in intake.stores.dirty, "still saved at this checkpoint"
        assert intake.state_bytes("s1", store) <= 65_536
        assert intake.outbox.totals["dedupe_overflow"] == 9_000 - len(dedupe) > 0
        assert intake.outbox.totals["state_too_large"] == 0

    asyncio.run(scenario())


def test_a_state_over_the_limit_without_ids_to_shed_is_left_out_of_the_checkpoint_not_wedging_it():
    async def scenario():
        intake, _, _ = make_intake()
        await intake.apply(b"s1", orjson.dumps(door(0)), "t.events", 0, 0, None)
        await intake.apply(b"s2", orjson.dumps(door(0, "s2")), "t.events", 1, 0, None)
        real = intake.state_bytes
        intake.state_bytes = lambda store_id, store: 2 * LIMIT if store_id == "s1" else real(store_id, store)
        intake.collect_live()
        assert intake.stores.dirty == {"s2"}, "the others are saved, and the offset markers with them"
        assert intake.outbox.totals["state_too_large"] == 1

    asyncio.run(scenario())


def test_the_duplicate_memory_bound_counts_its_overflow_per_message():
    async def scenario():
        intake, _, _ = make_intake(max_message_bytes=65_536, dedupe_horizon_s=86_400)
        offset = await apply_events(intake, range(10_000), 0)
        dedupe = intake.stores["s1"].pipeline.flow.dedupe
        assert len(dedupe) == dedupe.max_ids < 10_000
        assert intake.outbox.totals["dedupe_overflow"] == 10_000 - dedupe.max_ids
        # A repeat of an id forgotten for the bound counts again; a repeat of a remembered one does not.
        await intake.apply(b"s1", orjson.dumps([door(0), door(9_999)]), "t.events", 0, offset, None)
        assert intake.outbox.totals["events"] == 10_001 and intake.outbox.totals["duplicates"] == 1

    asyncio.run(scenario())
