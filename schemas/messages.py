"""From the bytes of one Kafka message to events and rejects.

A message holds one event (a JSON object) or a batch (a JSON array) of events
from one store, as store gateways send after an outage. Each event of a batch
stands alone: the good ones are kept, each bad one becomes a `Reject` carrying
its own bytes, the reason and its place in the batch.

Identifier fields are pseudonymised before anything leaves this module, in the
events and in the bytes of rejects alike (where those bytes are still JSON), so
a dead-letter topic never holds a raw customer id that a valid event would not.

A message larger than `Limits.max_message_bytes` (`FOOTFALL_MAX_MESSAGE_BYTES`) is
rejected whole as `too_large`, and its reject does not carry it: it carries an excerpt,
the first `EXCERPT_BYTES` (4 KiB) of its (pseudonymised) bytes, with the size and the
sha256 of the message as received (`Reject.original_bytes`, `Reject.original_sha256`),
so the dead letter is small enough to send whatever came in (`excerpt_reject`).

A message nested deeper than `MAX_DEPTH` (64) levels is rejected whole as `not_json`, as orjson
itself refuses one deeper than 1,024: the worker walks (pseudonymisation) and re-encodes (batch
elements, re-routes, dead letters) what it accepts, and orjson re-encodes at most 254 levels.

Examples
--------
>>> from footfall.schemas.events import Limits
>>> raw = b'''[
...  {"event_id": "a", "store_id": "s1", "kind": "door", "ts": 1000, "schema_version": 1,
...   "door_id": "d", "sensor_id": "c", "direction": "in"},
...  {"event_id": "b", "store_id": "s1", "kind": "door", "ts": 2000, "schema_version": 1,
...   "door_id": "d", "sensor_id": "c", "count_in": -3, "count_out": 0, "interval_s": 60}
... ]'''
>>> decoded = decode_message(raw, now_ms=10_000, limits=Limits(min_ts_ms=0))
>>> [e.event_id for e in decoded.events]
['a']
>>> [(r.reason, r.batch_index) for r in decoded.rejects]
[('out_of_range', 1)]
>>> print(decoded.rejects[0].error)
InvalidEvent: field 'count_in': value -3 violates rule '>= 0'

"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from footfall.schemas.events import (
    ALL_IDENTIFIER_FIELDS,
    COMMON_FIELDS,
    DEFAULT_MAX_MESSAGE_BYTES,
    KIND_FIELDS,
    Event,
    Limits,
    parse_event,
)
from footfall.schemas.fields import InvalidEvent

__all__ = ["EXCERPT_BYTES", "MAX_BATCH_EVENTS", "MAX_DEPTH", "MAX_MESSAGE_BYTES", "Decoded", "Reject", "decode_message",
           "excerpt_reject", "scrub_identifiers"]

#: Largest message accepted by default (`Limits.max_message_bytes` sets it: `FOOTFALL_MAX_MESSAGE_BYTES`).
MAX_MESSAGE_BYTES = DEFAULT_MAX_MESSAGE_BYTES
#: How much of an input too large to pass on a dead letter carries: its first 4 KiB.
EXCERPT_BYTES = 4096
#: Most events one batch may carry.
MAX_BATCH_EVENTS = 10_000
#: Deepest nesting of arrays and objects a message may have (an event is 1 level, a batch of them 2).
MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Reject:
    """An input that is not a valid event.

    Parameters
    ----------
    reason
        Stable short code: `not_utf8`, `not_json`, `not_an_object`, `missing_field`,
        `wrong_type`, `out_of_range`, `bad_timestamp`, `too_large`, ...
    error
        Error class and message, for people.
    payload
        The bytes of the rejected input (the whole message, or this batch element
        re-encoded), with identifier fields pseudonymised where it is JSON.
    batch_index
        Position in the batch, or None for a single-event message.
    original_bytes, original_sha256
        When `payload` is only an excerpt (the input was too large to pass on): the size and
        the sha256 (hex) of the input as received; None when `payload` is the whole input.

    """

    reason: str
    error: str
    payload: bytes
    batch_index: int | None = None
    original_bytes: int | None = None
    original_sha256: str | None = None


def excerpt_reject(reason: str, error: str, payload: bytes, original: bytes, batch_index: int | None = None,
                   excerpt_bytes: int = EXCERPT_BYTES) -> Reject:
    """A reject carrying the first `excerpt_bytes` of `payload`, with the size and sha256 of `original`.

    >>> r = excerpt_reject("too_large", "big", b"x" * 10_000, b"x" * 10_000)
    >>> len(r.payload), r.original_bytes, r.original_sha256[:12]
    (4096, 10000, 'e4ee97ec2527')

    """
    return Reject(reason, error, payload[:excerpt_bytes], batch_index, len(original),
                  hashlib.sha256(original).hexdigest())


@dataclass(slots=True)
class Decoded:
    """Events and rejects of one message.

    `originals[i]` is the decoded JSON object `events[i]` came from, before
    pseudonymisation: only for sending a mis-keyed event back to the input topic
    under its right key, never for output.
    """

    events: list[Event] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    originals: list[Any] = field(default_factory=list)
    is_batch: bool = False


def _reject_whole(reason: str, exc: BaseException | str, raw: bytes) -> Decoded:
    error = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return Decoded(rejects=[Reject(reason, error, raw)])


#: Members an event may have (of any kind): the others are a producer's extras, which may say who someone is.
KNOWN_MEMBERS = frozenset(f.name for f in COMMON_FIELDS) | {"ts"} | frozenset(  # `ts` is checked apart
    f.name for fields in KIND_FIELDS.values() for f in fields)


def scrub_identifiers(obj: Any, pseudonymize: Callable[[str], str] | None) -> Any:
    """The dead-letter copy of a rejected event (or batch): nothing in it that could say who someone is.

    Identifier members are pseudonymised, at any depth. So is the value of every member an event does
    not have (a producer's extras: `email`, `phone`, a nested `customer`...), as the pseudonym of its
    JSON text: its name stays, so the producer sees what was sent, but not its content. Members an
    event has keep their values (except a nested object or array where a scalar belongs, whose content
    is pseudonymised like an extra). Returns `obj` itself when nothing needed changing, so unchanged
    rejects keep their original bytes.

    >>> scrub = lambda v: f"h({v})"
    >>> scrub_identifiers({"store_id": "s1", "customer_id": "card-1", "email": "a@b.c", "age": 31}, scrub)
    {'store_id': 's1', 'customer_id': 'h(card-1)', 'email': 'h("a@b.c")', 'age': 'h(31)'}
    >>> scrub_identifiers([{"kind": "door", "door_id": {"name": "Ann"}}, 7], scrub)
    [{'kind': 'door', 'door_id': 'h({"name":"Ann"})'}, 7]
    """
    if pseudonymize is None:
        return obj
    if isinstance(obj, list):
        scrubbed = [scrub_identifiers(v, pseudonymize) for v in obj]
        return obj if all(a is b for a, b in zip(scrubbed, obj, strict=True)) else scrubbed
    if not isinstance(obj, dict):
        return obj
    out: dict[str, Any] = {}
    changed = False
    for k, v in obj.items():
        if k in ALL_IDENTIFIER_FIELDS and v is not None:
            out[k] = pseudonymize(v) if isinstance(v, str) else "<non-string identifier removed>"
        elif k not in KNOWN_MEMBERS or isinstance(v, dict | list):
            out[k] = pseudonymize(orjson.dumps(v).decode())
        else:
            out[k] = v
            continue
        changed = True
    return out if changed else obj


def too_deep(raw: bytes, doc: Any) -> bool:
    """Whether `doc` (decoded from `raw`) nests arrays and objects more than `MAX_DEPTH` levels deep.

    Walked without recursion, and only when `raw` holds more than `MAX_DEPTH` opening brackets.

    >>> too_deep(b"[[1]]", [[1]]), too_deep(b"[" * 65 + b"]" * 65, orjson.loads(b"[" * 65 + b"]" * 65))
    (False, True)

    """
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    # Level by level, carrying only the containers: a batch of flat events costs one pass over
    # its members (a stack of every member, scalars included, took a third of a batch's decoding).
    level, containers = 1, [doc]
    while containers:
        if level > MAX_DEPTH:
            return True
        below: list[Any] = []
        for container in containers:
            members = container.values() if type(container) is dict else container
            below += [m for m in members if type(m) is dict or type(m) is list]
        containers, level = below, level + 1
    return False


def _scrubbed_bytes(obj: Any, raw: bytes, pseudonymize: Callable[[str], str] | None) -> bytes:
    scrubbed = scrub_identifiers(obj, pseudonymize)
    return raw if scrubbed is obj else orjson.dumps(scrubbed)


def decode_message(
    raw: bytes | None,
    *,
    now_ms: int,
    limits: Limits,
    pseudonymize: Callable[[str], str] | None = None,
) -> Decoded:
    """Decode one message into events and rejects. Never raises on bad input."""
    if raw is None or len(raw) == 0:
        return _reject_whole("empty", "InvalidEvent: message: value empty violates rule 'not empty'", b"")
    if len(raw) > limits.max_message_bytes:
        error = (f"InvalidEvent: message: value of {len(raw)} bytes violates rule "
                 f"'at most {limits.max_message_bytes} bytes'")
        try:
            # Still pseudonymise identifiers when the oversize message is JSON: the excerpt is of those bytes.
            doc = orjson.loads(raw)
            payload = raw if too_deep(raw, doc) else _scrubbed_bytes(doc, raw, pseudonymize)
        except orjson.JSONDecodeError:
            payload = raw
        return Decoded(rejects=[excerpt_reject("too_large", error, payload, raw)])
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _reject_whole("not_utf8", exc, raw)
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _reject_whole("not_json", exc, raw)
    if too_deep(raw, doc):
        return _reject_whole("not_json", f"InvalidEvent: message: value nested deeper than {MAX_DEPTH} levels "
                                         f"violates rule 'at most {MAX_DEPTH} levels of arrays and objects'", raw)

    if isinstance(doc, list):
        decoded = Decoded(is_batch=True)
        if not doc:
            decoded.rejects.append(Reject("empty", "InvalidEvent: batch: value [] violates rule 'not empty'", raw))
            return decoded
        if len(doc) > MAX_BATCH_EVENTS:
            return _reject_whole(
                "too_large",
                f"InvalidEvent: batch: value of {len(doc)} events violates rule 'at most {MAX_BATCH_EVENTS}'",
                _scrubbed_bytes(doc, raw, pseudonymize),
            )
        elements = list(enumerate(doc))
    else:
        decoded = Decoded()
        elements = [(None, doc)]

    for index, obj in elements:
        try:
            decoded.events.append(parse_event(obj, now_ms=now_ms, limits=limits, pseudonymize=pseudonymize))
            decoded.originals.append(obj)
        except InvalidEvent as exc:
            scrubbed = scrub_identifiers(obj, pseudonymize)
            payload = raw if index is None and scrubbed is obj else orjson.dumps(scrubbed)
            decoded.rejects.append(Reject(exc.reason, f"InvalidEvent: {exc}", payload, index))
    return decoded
