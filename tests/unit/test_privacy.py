"""Pseudonyms: an HMAC-SHA256 computed apart agrees, and no raw identifier survives parsing."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.schemas import InvalidEvent, Limits, Pseudonymizer, decode_message, parse_event

NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
LIMITS = Limits()
SETTINGS = settings(max_examples=200, deadline=None)


def reference(key: bytes, identifier: str) -> str:
    """`h1:` + the first 32 hex digits of HMAC-SHA256(key, UTF-8 id), computed with hmac/hashlib here."""
    return "h1:" + hmac.new(key, identifier.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


@pytest.mark.parametrize(
    ("key", "identifier", "expected"),
    [
        # RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?")
        # = 5bdcc146bf60754e6a042426089575c7 5a003f089d2739839dec58b964ec3843
        (b"Jefe", "what do ya want for nothing?", "h1:5bdcc146bf60754e6a042426089575c7"),
        # RFC 4231 test case 1: key 0x0b * 20, data "Hi There"
        # = b0344c61d8db38535ca8afceaf0bf12b 881dc200c9833da726e9376c2e32cff7
        (b"\x0b" * 20, "Hi There", "h1:b0344c61d8db38535ca8afceaf0bf12b"),
    ],
)
def test_pseudonym_matches_published_hmac_sha256(key: bytes, identifier: str, expected: str) -> None:
    assert Pseudonymizer(key)(identifier) == expected


@SETTINGS
@given(st.binary(min_size=1, max_size=64), st.text(max_size=64))
def test_pseudonym_equals_independent_hmac(key: bytes, identifier: str) -> None:
    pseudonym = Pseudonymizer(key)(identifier)
    assert pseudonym == reference(key, identifier)
    assert len(pseudonym) == 3 + 32


@SETTINGS
@given(st.binary(min_size=1, max_size=32), st.binary(min_size=1, max_size=32), st.text(max_size=32))
def test_pseudonym_differs_per_key(key_a: bytes, key_b: bytes, identifier: str) -> None:
    if key_a == key_b:
        return
    # Equal 128-bit prefixes under different keys would be a 2**-128 accident.
    assert Pseudonymizer(key_a)(identifier) != Pseudonymizer(key_b)(identifier)


@SETTINGS
@given(st.text(max_size=32), st.text(max_size=32))
def test_pseudonym_is_stable_and_tells_ids_apart(id_a: str, id_b: str) -> None:
    a, b = Pseudonymizer(b"stable-key-0123456789"), Pseudonymizer(b"stable-key-0123456789")
    assert a(id_a) == a(id_a) == b(id_a)  # same id, same pseudonym, across instances
    assert (a(id_a) == a(id_b)) == (id_a == id_b)


@pytest.mark.parametrize(
    "key",
    [
        b"hunter2-hunter2-hunter2",  # a printable secret
        b"\x00\xffsecret-bytes\x01",  # non-printable bytes
    ],
)
def test_repr_and_str_hide_the_key(key: bytes) -> None:
    p = Pseudonymizer(key)
    for shown in (repr(p), str(p), f"{p!r}", repr([p])):
        assert repr(key) not in shown
        assert key.decode("latin-1") not in shown
        assert "secret" not in shown.replace("secret=***", "")
    assert not hasattr(p, "__dict__")  # nothing else to leak it through vars()


def test_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        Pseudonymizer(b"")


# -- parse_event pseudonymises every identifier member ------------------------------------------------

KEY = b"parse-key-0123456789abcdef"


def events_with(identifier: str) -> list[tuple[str, dict[str, Any]]]:
    """(identifier member, event) for every kind that has one."""
    envelope = {"event_id": "e", "store_id": "s-1", "ts": NOW_MS, "schema_version": 1}
    return [
        ("visitor_id", {**envelope, "kind": "visit", "action": "arrive", "visitor_id": identifier}),
        ("visitor_id", {**envelope, "kind": "visit", "action": "leave", "dwell_s": 5, "visitor_id": identifier}),
        ("customer_id", {**envelope, "kind": "pos", "transaction_id": "t", "amount": 3.5, "items": 1,
                         "customer_id": identifier}),
        ("customer_id", {**envelope, "kind": "queue", "action": "issued", "ticket_id": "A1", "service": "teller",
                         "customer_id": identifier}),
        ("device_id", {**envelope, "kind": "heartbeat", "sensor_id": "c", "device_id": identifier}),
    ]


# Ids carry a marker ("ID<...>") that nothing else in an event's repr holds, so a hit is a leak.
IDS = st.text(max_size=60).map(lambda s: f"ID<{s}>")


@SETTINGS
@given(IDS)
def test_parse_event_pseudonymises_identifiers_of_every_kind(identifier: str) -> None:
    for member, obj in events_with(identifier):
        event = parse_event(obj, now_ms=NOW_MS, limits=LIMITS, pseudonymize=Pseudonymizer(KEY))
        assert getattr(event, member) == reference(KEY, identifier), event.kind
        for shown in (repr(event), str(event)):
            assert identifier not in shown
            assert repr(identifier)[1:-1] not in shown  # nor its escaped form


@SETTINGS
@given(IDS)
def test_decoded_batch_holds_no_raw_identifier(identifier: str) -> None:
    batch = [obj for _, obj in events_with(identifier)]
    decoded = decode_message(orjson.dumps(batch), now_ms=NOW_MS, limits=LIMITS, pseudonymize=Pseudonymizer(KEY))
    assert decoded.rejects == []
    assert len(decoded.events) == len(batch)
    assert identifier not in repr(decoded.events)
    assert repr(identifier)[1:-1] not in repr(decoded.events)


def test_without_pseudonymizer_ids_stay_as_given() -> None:
    # The parser itself does not hash: only when told to (the worker always tells it).
    for member, obj in events_with("card-4111"):
        assert getattr(parse_event(obj, now_ms=NOW_MS, limits=LIMITS), member) == "card-4111"


def test_non_identifier_members_are_not_pseudonymised() -> None:
    _, obj = events_with("card-4111")[2]  # pos
    event = parse_event({**obj, "till_id": "till-1", "transaction_id": "t-9"}, now_ms=NOW_MS, limits=LIMITS,
                        pseudonymize=Pseudonymizer(KEY))
    assert (event.till_id, event.transaction_id, event.event_id, event.store_id) == ("till-1", "t-9", "e", "s-1")


# -- a malformed identifier is never quoted in an error ---------------------------------------------------

MALFORMED_IDS = st.one_of(
    st.text(min_size=129, max_size=300).map(lambda s: f"ID<{s}>"),  # too long (> 128 characters)
    st.integers(10**11, 10**19),  # a card number sent as a JSON number
    st.lists(IDS, min_size=1, max_size=2),  # a list of ids
)


@SETTINGS
@given(MALFORMED_IDS)
def test_malformed_identifier_is_withheld_from_errors(identifier: Any) -> None:
    shown = str(identifier) if not isinstance(identifier, list) else identifier[0]
    for member, obj in events_with("placeholder"):
        raw = orjson.dumps({**obj, member: identifier})
        decoded = decode_message(raw, now_ms=NOW_MS, limits=LIMITS, pseudonymize=Pseudonymizer(KEY))
        assert decoded.events == []
        [reject] = decoded.rejects
        assert reject.error.startswith(f"InvalidEvent: field {member!r}: value <withheld identifier> violates rule")
        assert shown[:20] not in reject.error
        kept = orjson.loads(reject.payload)[member]
        if isinstance(identifier, str):
            assert kept == reference(KEY, identifier)
        else:
            assert kept == "<non-string identifier removed>"


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("", "'not empty'"),  # empty
        ("c" * 129, "'at most 128 characters'"),  # one too long
        (4111111111111111, "'is a string'"),  # a number
    ],
)
def test_identifier_error_keeps_field_and_rule(value: Any, rule: str) -> None:
    _, obj = events_with("x")[2]  # pos
    with pytest.raises(InvalidEvent) as caught:
        parse_event({**obj, "customer_id": value}, now_ms=NOW_MS, limits=LIMITS)
    assert str(caught.value) == f"field 'customer_id': value <withheld identifier> violates rule {rule}"
    assert caught.value.field == "customer_id"


# -- a producer's extra members never leave raw in a dead letter ------------------------------------------

EXTRAS = st.dictionaries(
    st.sampled_from(["email", "phone", "name", "customer", "note", "loyalty"]),
    st.one_of(IDS, st.integers(10**8, 10**15), st.lists(IDS, min_size=1, max_size=2),
              st.fixed_dictionaries({"name": IDS})),
    min_size=1, max_size=3)


@SETTINGS
@given(EXTRAS, st.booleans())
def test_extra_members_of_a_rejected_event_leave_as_pseudonyms(extras: dict[str, Any], batch: bool) -> None:
    _, obj = events_with("card-4111")[0]
    bad = {**obj, **extras, "ts": "not a time"}  # rejected: bad_timestamp
    raw = orjson.dumps([obj, bad] if batch else bad)
    decoded = decode_message(raw, now_ms=NOW_MS, limits=LIMITS, pseudonymize=Pseudonymizer(KEY))
    [reject] = decoded.rejects
    kept = orjson.loads(reject.payload)
    assert set(kept) == set(bad)  # every member named, so the producer sees what was sent
    for member, value in extras.items():
        assert kept[member] == reference(KEY, orjson.dumps(value).decode())
    assert kept["ts"] == "not a time" and kept["store_id"] == obj["store_id"]  # the schema's members stay
    assert "card-4111" not in reject.payload.decode()
