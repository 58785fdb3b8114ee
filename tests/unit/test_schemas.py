"""Event parsing and message decoding: valid events keep every field, each rule rejects with its reason."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson
import pytest

from footfall.schemas import (
    DoorEvent,
    Heartbeat,
    InvalidEvent,
    Limits,
    PosEvent,
    Pseudonymizer,
    QueueEvent,
    VisitEvent,
    decode_message,
    parse_event,
)
from footfall.schemas.messages import MAX_BATCH_EVENTS, MAX_MESSAGE_BYTES
from footfall.schemas.messages import MAX_DEPTH as MESSAGE_DEPTH

# 2026-01-01T00:00:00Z: 56 years after 1970 hold 14 leap days (1972..2024), so
# (56 * 365 + 14) days * 86_400 s = 20_454 * 86_400 s = 1_767_225_600 s.
JAN_1_2026_MS = 1_767_225_600_000
NOW_MS = JAN_1_2026_MS + 86_400_000  # the receiver's clock: 2026-01-02T00:00:00Z
LIMITS = Limits()  # min 2000-01-01T00:00:00Z, at most 1 h in the future
SECRET = b"unit-test-secret-0123456789"
PSEUDONYMIZE = Pseudonymizer(SECRET)


def expected_pseudonym(identifier: str) -> str:
    """HMAC-SHA256 computed here, apart from the code under test."""
    return "h1:" + hmac.new(SECRET, identifier.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def door(**changes: Any) -> dict[str, Any]:
    event = {"event_id": "e-door", "store_id": "s-1", "kind": "door", "ts": "2026-01-01T09:00:00Z",
             "schema_version": 1, "door_id": "main", "sensor_id": "cnt-1", "count_in": 12, "count_out": 7,
             "interval_s": 300}
    return drop_none({**event, **changes})


def person(**changes: Any) -> dict[str, Any]:
    event = {"event_id": "e-person", "store_id": "s-1", "kind": "door", "ts": JAN_1_2026_MS,
             "schema_version": 1, "door_id": "main", "sensor_id": "cnt-1", "direction": "in"}
    return drop_none({**event, **changes})


def visit(**changes: Any) -> dict[str, Any]:
    event = {"event_id": "e-visit", "store_id": "s-1", "kind": "visit", "ts": JAN_1_2026_MS,
             "schema_version": 1, "action": "leave", "visit_id": "v-9", "visitor_id": "phone-aa:bb",
             "dwell_s": 754.5}
    return drop_none({**event, **changes})


def pos(**changes: Any) -> dict[str, Any]:
    event = {"event_id": "e-pos", "store_id": "s-1", "kind": "pos", "ts": JAN_1_2026_MS, "schema_version": 1,
             "transaction_id": "t-1", "amount": 42.5, "items": 3, "currency": "EUR", "till_id": "till-2",
             "customer_id": "card-4111"}
    return drop_none({**event, **changes})


def queue(**changes: Any) -> dict[str, Any]:
    event = {"event_id": "e-queue", "store_id": "s-1", "kind": "queue", "ts": JAN_1_2026_MS,
             "schema_version": 1, "action": "served", "ticket_id": "A-017", "service": "teller",
             "counter": "desk-3", "customer_id": "cust-77", "wait_s": 312.0, "service_s": 95}
    return drop_none({**event, **changes})


def heartbeat(**changes: Any) -> dict[str, Any]:
    event = {"event_id": "e-hb", "store_id": "s-1", "kind": "heartbeat", "ts": JAN_1_2026_MS,
             "schema_version": 1, "sensor_id": "cnt-1", "status": "degraded", "device_id": "mac-00:11"}
    return drop_none({**event, **changes})


_DROP = object()


def drop_none(event: dict[str, Any]) -> dict[str, Any]:
    """Members set to `_DROP` are removed (a missing member, unlike an explicit null)."""
    return {k: v for k, v in event.items() if v is not _DROP}


def parse(obj: Any, *, limits: Limits = LIMITS, now_ms: int = NOW_MS) -> Any:
    return parse_event(obj, now_ms=now_ms, limits=limits)


# -- valid events ------------------------------------------------------------------------------------


def test_door_interval_report_keeps_every_field() -> None:
    event = parse(door(region="north", zone="front", vertical="retail"))
    assert event == DoorEvent(
        event_id="e-door", store_id="s-1", ts_ms=JAN_1_2026_MS + 9 * 3_600_000, region="north", zone="front",
        vertical="retail", door_id="main", sensor_id="cnt-1", count_in=12, count_out=7, interval_s=300,
    )


@pytest.mark.parametrize(
    ("direction", "count_in", "count_out"),
    [
        ("in", 1, 0),  # one person in
        ("out", 0, 1),  # one person out
    ],
)
def test_door_person_becomes_a_zero_length_interval(direction: str, count_in: int, count_out: int) -> None:
    event = parse(person(direction=direction))
    assert event == DoorEvent(
        event_id="e-person", store_id="s-1", ts_ms=JAN_1_2026_MS, region=None, zone=None, vertical=None,
        door_id="main", sensor_id="cnt-1", count_in=count_in, count_out=count_out, interval_s=0,
    )


def test_visit_keeps_every_field() -> None:
    assert parse(visit()) == VisitEvent(
        event_id="e-visit", store_id="s-1", ts_ms=JAN_1_2026_MS, region=None, zone=None, vertical=None,
        action="leave", visit_id="v-9", visitor_id="phone-aa:bb", dwell_s=754.5,
    )


def test_visit_arrive_without_optional_fields() -> None:
    event = parse(visit(action="arrive", dwell_s=_DROP, visit_id=_DROP, visitor_id=_DROP))
    assert (event.action, event.visit_id, event.visitor_id, event.dwell_s) == ("arrive", None, None, None)


def test_pos_keeps_every_field() -> None:
    assert parse(pos(vertical="bank")) == PosEvent(
        event_id="e-pos", store_id="s-1", ts_ms=JAN_1_2026_MS, region=None, zone=None, vertical="bank",
        transaction_id="t-1", amount=42.5, items=3, currency="EUR", till_id="till-2", customer_id="card-4111",
    )


def test_queue_keeps_every_field() -> None:
    assert parse(queue(vertical="telecom")) == QueueEvent(
        event_id="e-queue", store_id="s-1", ts_ms=JAN_1_2026_MS, region=None, zone=None, vertical="telecom",
        action="served", ticket_id="A-017", service="teller", counter="desk-3", customer_id="cust-77",
        wait_s=312.0, service_s=95,
    )


@pytest.mark.parametrize("action", ["issued", "called", "served", "abandoned", "no_show"])  # every step
def test_queue_accepts_every_step(action: str) -> None:
    assert parse(queue(action=action)).action == action


def test_heartbeat_keeps_every_field() -> None:
    assert parse(heartbeat()) == Heartbeat(
        event_id="e-hb", store_id="s-1", ts_ms=JAN_1_2026_MS, region=None, zone=None, vertical=None,
        sensor_id="cnt-1", status="degraded", device_id="mac-00:11",
    )


def test_optional_members_given_as_null_read_as_absent() -> None:
    event = parse(pos(currency=None, till_id=None, customer_id=None, region=None))
    assert (event.currency, event.till_id, event.customer_id, event.region) == (None, None, None, None)


def test_unknown_members_are_ignored() -> None:
    assert parse(heartbeat(firmware="1.2.3", extra={"a": [1]})) == parse(heartbeat())


@pytest.mark.parametrize(
    ("ts", "expected_ms"),
    [
        ("2026-01-01T00:00:00Z", JAN_1_2026_MS),  # Z
        ("2026-01-01T00:00:00+00:00", JAN_1_2026_MS),  # explicit +00:00
        ("2026-01-01T05:30:00+05:30", JAN_1_2026_MS),  # India: 05:30 local is midnight UTC
        ("2026-01-01T00:00:00+05:30", JAN_1_2026_MS - 19_800_000),  # 5.5 h = 19_800 s before midnight UTC
        ("2025-12-31T16:00:00-08:00", JAN_1_2026_MS),  # California, the evening before
        ("2026-01-01T00:00:00-08:00", JAN_1_2026_MS + 28_800_000),  # 8 h after midnight UTC
        ("2026-01-01T00:00:00.250Z", JAN_1_2026_MS + 250),  # milliseconds kept
        # 2026-03-01 is 31 + 28 = 59 days after 2026-01-01; 10:15+01:00 = 09:15Z = 33_300 s into the day
        ("2026-03-01T10:15:00+01:00", JAN_1_2026_MS + 59 * 86_400_000 + 33_300_000),
        (JAN_1_2026_MS, JAN_1_2026_MS),  # integer epoch ms, taken as is
        (JAN_1_2026_MS + 123, JAN_1_2026_MS + 123),  # not on a second
    ],
)
def test_ts_becomes_utc_epoch_ms(ts: str | int, expected_ms: int) -> None:
    limits = Limits(max_future_ms=365 * 86_400_000)  # so the March case is believable
    assert parse(door(ts=ts), limits=limits).ts_ms == expected_ms


@pytest.mark.parametrize(
    "ts_ms",
    [
        946_684_800_000,  # exactly Limits.min_ts_ms (2000-01-01T00:00:00Z): accepted
        NOW_MS + 3_600_000,  # exactly now + max_future: accepted
    ],
)
def test_ts_limits_are_inclusive(ts_ms: int) -> None:
    assert parse(door(ts=ts_ms)).ts_ms == ts_ms


# -- each rule rejects, with its reason and a message naming field, value and rule -------------------

BAD_EVENTS = [
    # missing required members
    pytest.param(door(event_id=_DROP), "missing_field", "event_id", ["missing", "'required'"], id="no-event_id"),
    pytest.param(door(store_id=None), "missing_field", "store_id", ["missing", "'required'"], id="null-store_id"),
    pytest.param(door(ts=_DROP), "missing_field", "ts", ["missing", "'required'"], id="no-ts"),
    pytest.param(door(sensor_id=_DROP), "missing_field", "sensor_id", ["missing"], id="no-door-sensor_id"),
    pytest.param(pos(amount=_DROP), "missing_field", "amount", ["missing"], id="no-pos-amount"),
    pytest.param(queue(service=_DROP), "missing_field", "service", ["missing"], id="no-queue-service"),
    pytest.param(heartbeat(sensor_id=_DROP), "missing_field", "sensor_id", ["missing"], id="no-hb-sensor_id"),
    pytest.param(visit(action=_DROP), "missing_field", "action", ["missing"], id="no-visit-action"),
    # wrong types
    pytest.param(door(door_id=5), "wrong_type", "door_id", ["value 5", "'is a string'"], id="int-as-string"),
    pytest.param(door(count_in="12"), "wrong_type", "count_in", ["'12'", "'is an integer'"], id="str-as-int"),
    pytest.param(door(count_in=True), "wrong_type", "count_in", ["value True", "'is an integer'"],
                 id="bool-as-int"),
    pytest.param(door(count_out=2.5), "wrong_type", "count_out", ["2.5", "'is an integer'"], id="float-as-int"),
    pytest.param(pos(amount=False), "wrong_type", "amount", ["value False", "'is a number'"], id="bool-as-number"),
    pytest.param(pos(amount="9.99"), "wrong_type", "amount", ["'9.99'", "'is a number'"], id="str-as-number"),
    pytest.param(door(schema_version="1"), "wrong_type", "schema_version", ["'1'", "'is an integer'"],
                 id="str-schema_version"),
    pytest.param(door(ts=True), "wrong_type", "ts", ["True", "'ISO-8601 string or integer epoch ms'"],
                 id="bool-ts"),
    # epoch ms with a fraction of a millisecond (1.767e12 itself is a whole number, and JSON-integral)
    pytest.param(door(ts=1767000000000.5), "wrong_type", "ts", ["1767000000000.5", "integer epoch ms"],
                 id="fractional-ms-ts"),
    # numbers out of range
    pytest.param(door(count_in=-3), "out_of_range", "count_in", ["value -3", "'>= 0'"], id="negative-count"),
    pytest.param(door(count_out=100_001), "out_of_range", "count_out", ["100001", "'<= 100000'"],
                 id="count-too-high"),
    pytest.param(door(interval_s=0), "out_of_range", "interval_s", ["value 0", "'>= 1'"], id="zero-interval"),
    pytest.param(door(interval_s=86_401), "out_of_range", "interval_s", ["86401", "'<= 86400'"],
                 id="interval-over-a-day"),
    pytest.param(pos(amount=float("nan")), "out_of_range", "amount", ["value nan", "'is finite'"], id="nan-amount"),
    pytest.param(pos(amount=float("inf")), "out_of_range", "amount", ["value inf", "'is finite'"], id="inf-amount"),
    pytest.param(pos(amount=float("-inf")), "out_of_range", "amount", ["value -inf", "'is finite'"],
                 id="minus-inf-amount"),
    pytest.param(pos(amount=-0.01), "out_of_range", "amount", ["-0.01", "'>= 0'"], id="negative-amount"),
    pytest.param(pos(amount=1e7 + 1), "out_of_range", "amount", ["10000001.0", "'<= 10000000'"], id="huge-amount"),
    pytest.param(pos(items=10_001), "out_of_range", "items", ["10001", "'<= 10000'"], id="too-many-items"),
    pytest.param(queue(wait_s=-1), "out_of_range", "wait_s", ["-1", "'>= 0'"], id="negative-wait"),
    pytest.param(visit(dwell_s=86_400.5), "out_of_range", "dwell_s", ["86400.5", "'<= 86400'"], id="dwell-over-day"),
    pytest.param(door(schema_version=0), "out_of_range", "schema_version", ["value 0", "'>= 1'"], id="version-0"),
    pytest.param(door(schema_version=2), "out_of_range", "schema_version", ["value 2", "'<= 1'"], id="version-2"),
    # strings
    pytest.param(door(door_id="d" * 129), "too_large", "door_id", ["'ddd", "'at most 128 characters'"],
                 id="129-char-door_id"),
    pytest.param(door(store_id="s" * 65), "too_large", "store_id", ["'sss", "'at most 64 characters'"],
                 id="65-char-store_id"),
    pytest.param(door(zone=""), "out_of_range", "zone", ["value ''", "'not empty'"], id="empty-zone"),
    pytest.param(door(direction="sideways", count_in=_DROP, count_out=_DROP, interval_s=_DROP), "out_of_range",
                 "direction", ["'sideways'", "'one of in, out'"], id="bad-direction"),
    pytest.param(door(vertical="grocery"), "out_of_range", "vertical", ["'grocery'", "'one of retail, bank, telecom'"],
                 id="bad-vertical"),
    pytest.param(queue(action="skipped"), "out_of_range", "action", ["'skipped'", "no_show"], id="bad-queue-step"),
    pytest.param(visit(action="stay"), "out_of_range", "action", ["'stay'", "'one of arrive, leave'"],
                 id="bad-visit-action"),
    pytest.param(heartbeat(status="dead"), "out_of_range", "status", ["'dead'", "'one of ok, degraded'"],
                 id="bad-status"),
    pytest.param(door(kind="exit"), "out_of_range", "kind", ["'exit'", "one of door, visit, pos, queue, heartbeat"],
                 id="unknown-kind"),
    pytest.param(door(store_id="store 1"), "out_of_range", "store_id", ["'store 1'", "'matches "], id="space-in-store"),
    pytest.param(door(store_id="-s1"), "out_of_range", "store_id", ["'-s1'", "'matches "], id="store-leading-dash"),
    pytest.param(door(store_id="s/1"), "out_of_range", "store_id", ["'s/1'", "'matches "], id="slash-in-store"),
    pytest.param(pos(currency="eur"), "out_of_range", "currency", ["'eur'", "'matches [A-Z]{3}'"], id="lower-currency"),
    # timestamps
    pytest.param(door(ts="2026-01-01T00:00:00"), "bad_timestamp", "ts", ["'2026-01-01T00:00:00'",
                 "'carries a UTC offset'"], id="naive-ts"),
    pytest.param(door(ts="yesterday"), "bad_timestamp", "ts", ["'yesterday'", "'ISO-8601'"], id="not-iso-ts"),
    pytest.param(door(ts=946_684_799_999), "bad_timestamp", "ts", ["946684799999",
                 "'not before 2000-01-01T00:00:00Z'"], id="1-ms-before-min_ts"),
    pytest.param(door(ts="1999-12-31T23:59:59Z"), "bad_timestamp", "ts", ["'1999-12-31T23:59:59Z'", "not before"],
                 id="iso-before-min_ts"),
    pytest.param(door(ts=NOW_MS + 3_600_001), "bad_timestamp", "ts", [str(NOW_MS + 3_600_001),
                 "'at most 3600 s after the receiver clock (2026-01-02T00:00:00Z)'"], id="1-ms-past-max_future"),
    # door forms
    pytest.param(door(direction="in"), "conflicting_fields", "count_in", ["value 12", "'not with direction"],
                 id="door-both-forms"),
    pytest.param(person(interval_s=60), "conflicting_fields", "interval_s", ["value 60", "not with direction"],
                 id="person-with-interval"),
    pytest.param(door(count_in=_DROP, count_out=_DROP, interval_s=_DROP), "missing_field", "count_in",
                 ["missing", "'required without direction (interval report)'"], id="door-neither-form"),
    pytest.param(door(count_out=_DROP), "missing_field", "count_out", ["missing", "required without direction"],
                 id="door-interval-half"),
    # visit
    pytest.param(visit(action="arrive", dwell_s=10.0), "out_of_range", "dwell_s", ["given", "'only on leave'"],
                 id="dwell_s-on-arrive"),
]


@pytest.mark.parametrize(("obj", "reason", "field", "fragments"), BAD_EVENTS)
def test_each_rule_rejects_with_reason_and_message(
    obj: dict[str, Any], reason: str, field: str, fragments: list[str]
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse(obj)
    message = str(caught.value)
    assert caught.value.reason == reason
    assert caught.value.field == field
    assert message.startswith(f"field {field!r}: value "), message
    assert "violates rule" in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize(
    "obj",
    [
        [door()],  # a list is a batch, not an event
        "door",  # a string
        42,  # a number
        None,  # JSON null
    ],
)
def test_non_objects_are_rejected(obj: Any) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse(obj)
    assert caught.value.reason == "not_an_object"
    assert "is a JSON object" in str(caught.value)


def test_long_value_is_shortened_in_the_message() -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse(door(door_id="x" * 5_000))
    assert len(str(caught.value)) < 200
    assert "len 5000" in str(caught.value)


# -- decode_message -------------------------------------------------------------------------------------


def decode(raw: bytes | None, *, pseudonymize: Pseudonymizer | None = PSEUDONYMIZE) -> Any:
    return decode_message(raw, now_ms=NOW_MS, limits=LIMITS, pseudonymize=pseudonymize)


def test_single_object_message() -> None:
    obj = pos()
    decoded = decode(orjson.dumps(obj))
    assert decoded.rejects == []
    assert decoded.is_batch is False
    assert [e.event_id for e in decoded.events] == ["e-pos"]
    assert decoded.events[0].customer_id == expected_pseudonym("card-4111")
    assert decoded.originals == [obj]  # before pseudonymisation


def test_batch_keeps_good_events_in_order_and_rejects_only_bad_ones() -> None:
    batch = [
        door(event_id="g0"),  # good
        door(event_id="b1", count_in=-1),  # bad: negative count
        pos(event_id="g2"),  # good, with a customer id
        "not an object",  # bad: a string
        visit(event_id="g4"),  # good
        queue(event_id="b5", action="lost", customer_id="cust-secret-5"),  # bad: enum, with an id
        heartbeat(event_id="g6"),  # good
    ]
    decoded = decode(orjson.dumps(batch))
    assert decoded.is_batch is True
    assert [e.event_id for e in decoded.events] == ["g0", "g2", "g4", "g6"]
    assert decoded.originals == [batch[0], batch[2], batch[4], batch[6]]
    assert [(r.reason, r.batch_index) for r in decoded.rejects] == [
        ("out_of_range", 1), ("not_an_object", 3), ("out_of_range", 5),
    ]
    assert decoded.rejects[0].error == "InvalidEvent: field 'count_in': value -1 violates rule '>= 0'"
    assert orjson.loads(decoded.rejects[0].payload) == batch[1]
    assert orjson.loads(decoded.rejects[1].payload) == "not an object"
    assert orjson.loads(decoded.rejects[2].payload) == {**batch[5], "customer_id": expected_pseudonym("cust-secret-5")}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe{}", "not_utf8"),  # invalid UTF-8 start bytes
        ('{"event_id": "caf\u00e9"}'.encode("latin-1"), "not_utf8"),  # Latin-1, not UTF-8
        (b'{"event_id": "e1", ', "not_json"),  # truncated
        (b"{'event_id': 'e1'}", "not_json"),  # single quotes
        (b'{"kind": "pos", "amount": NaN}', "not_json"),  # NaN token is not JSON
        (b"NaN", "not_json"),  # a bare NaN
        (b"Infinity", "not_json"),  # a bare Infinity
        (b"", "empty"),  # empty message
        (None, "empty"),  # tombstone (no value)
        (b"42", "not_an_object"),  # JSON, but a number
        (b"null", "not_an_object"),  # JSON null
    ],
)
def test_whole_message_rejects(raw: bytes | None, reason: str) -> None:
    decoded = decode(raw)
    assert decoded.events == []
    assert decoded.originals == []
    assert [(r.reason, r.batch_index) for r in decoded.rejects] == [(reason, None)]
    assert decoded.rejects[0].payload == (raw or b"")  # the original bytes, untouched


def test_empty_batch_is_rejected() -> None:
    decoded = decode(b"[]")
    assert decoded.is_batch is True
    assert decoded.events == []
    assert [(r.reason, r.batch_index, r.payload) for r in decoded.rejects] == [("empty", None, b"[]")]


def test_message_of_exactly_max_bytes_is_decoded() -> None:
    body = orjson.dumps(door())
    raw = body + b" " * (MAX_MESSAGE_BYTES - len(body))  # trailing whitespace is valid JSON
    assert len(raw) == MAX_MESSAGE_BYTES
    decoded = decode(raw)
    assert decoded.rejects == []
    assert len(decoded.events) == 1


def test_oversize_message_is_rejected_whole() -> None:
    body = orjson.dumps(door())
    raw = body + b" " * (MAX_MESSAGE_BYTES + 1 - len(body))
    decoded = decode(raw)
    assert decoded.events == []
    assert [(r.reason, r.batch_index) for r in decoded.rejects] == [("too_large", None)]
    assert f"{MAX_MESSAGE_BYTES + 1} bytes" in decoded.rejects[0].error


def test_batch_of_max_events_is_judged_element_by_element() -> None:
    # 10_000 full events do not fit in 1 MB, so the batch is one event and 9_999 zeros (~20 kB).
    batch: list[Any] = [heartbeat(), *[0] * (MAX_BATCH_EVENTS - 1)]
    decoded = decode(orjson.dumps(batch))
    assert [e.event_id for e in decoded.events] == ["e-hb"]
    assert [r.batch_index for r in decoded.rejects] == list(range(1, MAX_BATCH_EVENTS))
    assert {r.reason for r in decoded.rejects} == {"not_an_object"}


def test_batch_over_max_events_is_rejected_whole_with_ids_scrubbed() -> None:
    batch: list[Any] = [heartbeat(device_id="mac-raw-0001"), *[{"device_id": "mac-raw-0001"}] * MAX_BATCH_EVENTS]
    decoded = decode(orjson.dumps(batch))
    assert decoded.events == []
    assert [(r.reason, r.batch_index) for r in decoded.rejects] == [("too_large", None)]
    assert f"{MAX_BATCH_EVENTS + 1} events" in decoded.rejects[0].error
    assert b"mac-raw-0001" not in decoded.rejects[0].payload
    pseudonym = expected_pseudonym("mac-raw-0001")
    assert orjson.loads(decoded.rejects[0].payload) == [
        heartbeat(device_id=pseudonym), *[{"device_id": pseudonym}] * MAX_BATCH_EVENTS
    ]


# -- rejects never carry raw identifiers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_event", "field", "raw_id"),
    [
        (pos(items=-1, customer_id="card-4111-1111"), "customer_id", "card-4111-1111"),  # pos, bad items
        # visit: dwell_s on arrive
        (visit(action="arrive", visitor_id="phone-de:ad:be:ef"), "visitor_id", "phone-de:ad:be:ef"),
        (queue(ticket_id=_DROP, customer_id="cust-raw-9"), "customer_id", "cust-raw-9"),  # missing ticket
        (heartbeat(ts="2026-01-01T00:00:00", device_id="mac-raw-7"), "device_id", "mac-raw-7"),  # naive ts
        (heartbeat(kind="sensor", device_id="mac-raw-8"), "device_id", "mac-raw-8"),  # unknown kind
        (pos(customer_id="x" * 200), "customer_id", "x" * 200),  # the identifier itself is too long
    ],
)
@pytest.mark.parametrize("as_batch", [False, True])  # alone, and as element 1 of a batch
def test_reject_payload_has_identifiers_pseudonymised(
    bad_event: dict[str, Any], field: str, raw_id: str, as_batch: bool
) -> None:
    raw = orjson.dumps([door(), bad_event] if as_batch else bad_event)
    decoded = decode(raw)
    assert len(decoded.rejects) == 1
    reject = decoded.rejects[0]
    assert reject.batch_index == (1 if as_batch else None)
    assert raw_id.encode() not in reject.payload
    assert orjson.loads(reject.payload) == {**bad_event, field: expected_pseudonym(raw_id)}


def test_reject_payload_drops_non_string_identifiers() -> None:
    bad = pos(items=-1, customer_id=4111111111111111)  # a card number sent as a JSON number
    decoded = decode(orjson.dumps(bad))
    assert b"4111111111111111" not in decoded.rejects[0].payload
    assert orjson.loads(decoded.rejects[0].payload)["customer_id"] == "<non-string identifier removed>"


def test_reject_without_identifiers_keeps_the_original_bytes() -> None:
    raw = b'{"event_id": "e", "kind": "door",   "store_id": "s 1"}'  # odd spacing survives
    assert decode(raw).rejects[0].payload == raw


def test_oversize_json_message_has_identifiers_pseudonymised() -> None:
    # messages.py promises ids are pseudonymised in rejects "where those bytes are still JSON";
    # the too_large branch returns `raw` before parsing, so a big valid-JSON message keeps them.
    body = orjson.dumps(pos(customer_id="card-raw-oversize"))
    raw = body + b" " * (MAX_MESSAGE_BYTES + 1 - len(body))
    decoded = decode(raw)
    assert decoded.rejects[0].reason == "too_large"
    assert b"card-raw-oversize" not in decoded.rejects[0].payload


def test_batch_element_that_is_a_list_has_identifiers_pseudonymised() -> None:
    # A batch element that is itself a list of events is re-encoded as it is (not_an_object),
    # so the raw customer id of the inner event reaches the dead-letter payload.
    decoded = decode(orjson.dumps([[pos(customer_id="card-raw-nested")]]))
    assert decoded.rejects[0].reason == "not_an_object"
    assert b"card-raw-nested" not in decoded.rejects[0].payload


def test_oversize_reject_is_an_excerpt_with_the_size_and_sha256_of_the_message() -> None:
    from footfall.schemas.messages import EXCERPT_BYTES

    body = orjson.dumps([pos(customer_id="card-raw-big")] * 6_000)
    raw = body + b" " * (1_040_000 - len(body))  # over the 1,000,000 default, under the old 1 MiB limit
    reject = decode(raw).rejects[0]
    assert reject.reason == "too_large" and len(reject.payload) == EXCERPT_BYTES
    assert (reject.original_bytes, reject.original_sha256) == (len(raw), hashlib.sha256(raw).hexdigest())
    assert b"card-raw-big" not in reject.payload


def test_the_message_limit_comes_from_limits() -> None:
    raw = orjson.dumps(door())
    small = Limits(max_message_bytes=len(raw) - 1)
    assert decode_message(raw, now_ms=NOW_MS, limits=small).rejects[0].reason == "too_large"
    assert decode_message(raw, now_ms=NOW_MS, limits=LIMITS).events


# -- nesting depth ----------------------------------------------------------------------------------------


def nested(levels: int) -> Any:
    """`levels` arrays one inside the other around a 1 (`nested(2)` is `[[1]]`)."""
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def with_nested_member(event: dict[str, Any], member_levels: int) -> bytes:
    """`event` with an extra member `x` nested `member_levels` deep (the message is one level more).

    Built as bytes: orjson encodes at most 254 levels, and these go beyond.
    """
    member = b"[" * member_levels + b"1" + b"]" * member_levels
    return orjson.dumps({**event, "x": 0}).replace(b'"x":0', b'"x":' + member)


@pytest.mark.parametrize(
    "raw",
    [
        with_nested_member(person(), 300),  # valid but for its extra member: was counted, or internal_error re-routed
        with_nested_member(person(door_id=5), 900),  # invalid: pseudonymising it raised RecursionError
        b"[" + orjson.dumps(person()) + b"," + b"[" * 300 + b"]" * 300 + b"]",  # batch: re-encoding raised
        orjson.dumps([person(), nested(MESSAGE_DEPTH)]),  # one level more than allowed (the batch counts)
    ],
    ids=["valid-event-300", "invalid-event-900", "batch-element-300", "batch-65"],
)
def test_a_message_nested_deeper_than_the_limit_is_rejected_whole_as_not_json(raw: bytes) -> None:
    decoded = decode(raw)  # before: RecursionError or TypeError out of decode_message (the worker's internal_error)
    assert decoded.events == []
    assert [(r.reason, r.batch_index) for r in decoded.rejects] == [("not_json", None)]
    assert f"deeper than {MESSAGE_DEPTH} levels" in decoded.rejects[0].error
    assert decoded.rejects[0].payload == raw


def test_a_message_nested_to_the_limit_is_decoded() -> None:
    raw = orjson.dumps([person(), person(event_id="e-deep", x=nested(MESSAGE_DEPTH - 2))])  # 64 levels
    decoded = decode(raw)
    assert [e.event_id for e in decoded.events] == ["e-person", "e-deep"]
    assert decoded.rejects == []


def test_an_oversize_message_nested_too_deep_is_too_large_not_an_error() -> None:
    body = with_nested_member(pos(customer_id="card-raw-deep"), 900)
    raw = body + b" " * (MAX_MESSAGE_BYTES + 1 - len(body))
    reject = decode(raw).rejects[0]
    assert (reject.reason, reject.original_bytes) == ("too_large", len(raw))
