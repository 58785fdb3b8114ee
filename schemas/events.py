"""What a customer-flow event is: kinds, fields, parsing and validation.

Five kinds share a common envelope (`event_id`, `store_id`, `kind`, `ts`,
`schema_version`, optional `region`, `zone`, `vertical`):

- `door`: a door counter. Either one person (`direction` in/out) or an
  interval report (`count_in`, `count_out` over `interval_s` seconds starting at `ts`).
- `visit`: a visit starts (`arrive`) or ends (`leave`, with `dwell_s`).
- `pos`: a till transaction (`amount`, `items`).
- `queue`: a queue ticket's step (`issued`, `called`, `served`, `abandoned`, `no_show`).
- `heartbeat`: a sensor saying it is alive, so silence can be told from a quiet shop.

`ts` is ISO-8601 with a UTC offset, or integer epoch milliseconds; both become
`ts_ms` (UTC epoch milliseconds).

Examples
--------
>>> from footfall.schemas.events import Limits, parse_event
>>> limits = Limits(min_ts_ms=0, max_future_ms=3_600_000)
>>> door = parse_event(
...     {"event_id": "e1", "store_id": "s-1", "kind": "door", "ts": "2026-03-01T10:15:00+01:00",
...      "schema_version": 1, "door_id": "main", "sensor_id": "c1", "direction": "in"},
...     now_ms=1_900_000_000_000, limits=limits)
>>> door.ts_ms, door.count_in, door.count_out
(1772356500000, 1, 0)
>>> try:
...     parse_event({"event_id": "e2", "store_id": "s-1", "kind": "pos", "ts": 1, "schema_version": 1,
...                  "transaction_id": "t", "amount": float("nan"), "items": 1},
...                 now_ms=1_900_000_000_000, limits=limits)
... except InvalidEvent as exc:
...     print(exc.reason, "|", exc)
out_of_range | field 'amount': value nan violates rule 'is finite'

"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from footfall.schemas.fields import Field, InvalidEvent

__all__ = [
    "COMMON_FIELDS",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "KINDS",
    "KIND_FIELDS",
    "SCHEMA_VERSION",
    "DoorEvent",
    "Event",
    "Heartbeat",
    "Limits",
    "PosEvent",
    "QueueEvent",
    "VisitEvent",
    "parse_event",
    "parse_ts_ms",
]

SCHEMA_VERSION = 1
#: A store id is what Kafka keys and Redis keys are made of: keep it plain.
STORE_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}"
VERTICALS = ("retail", "bank", "telecom")
QUEUE_ACTIONS = ("issued", "called", "served", "abandoned", "no_show")
#: Longest interval a door counter may report in one event (one day).
MAX_INTERVAL_S = 86_400
#: Most people a door counter may report in one interval; more is a broken sensor.
MAX_COUNT = 100_000

COMMON_FIELDS: tuple[Field, ...] = (
    Field("event_id", "string", required=True, description="Unique id of the event, for de-duplication."),
    Field("store_id", "string", required=True, pattern=STORE_ID_PATTERN, max_length=64,
          description="Store, branch or shop id; also the Kafka message key."),
    Field("kind", "string", required=True, enum=("door", "visit", "pos", "queue", "heartbeat")),
    Field("schema_version", "integer", required=True, minimum=1, maximum=SCHEMA_VERSION),
    Field("region", "string", description="Region, for roll-ups."),
    Field("zone", "string", description="Zone inside the store."),
    Field("vertical", "string", enum=VERTICALS),
)
# `ts` is checked apart: it is a string or an integer, and its range depends on the clock.

KIND_FIELDS: dict[str, tuple[Field, ...]] = {
    "door": (
        Field("door_id", "string", required=True),
        Field("sensor_id", "string", required=True),
        Field("direction", "string", enum=("in", "out"), description="One person passed (per-person counters)."),
        Field("count_in", "integer", minimum=0, maximum=MAX_COUNT, description="People in during the interval."),
        Field("count_out", "integer", minimum=0, maximum=MAX_COUNT, description="People out during the interval."),
        Field("interval_s", "integer", minimum=1, maximum=MAX_INTERVAL_S,
              description="Length of the reported interval, starting at ts."),
    ),
    "visit": (
        Field("action", "string", required=True, enum=("arrive", "leave")),
        Field("visit_id", "string", description="Links an arrive to its leave."),
        Field("visitor_id", "string", identifier=True, description="Customer or device id; pseudonymised at ingest."),
        Field("dwell_s", "number", minimum=0, maximum=MAX_INTERVAL_S, description="Time in store, on leave."),
    ),
    "pos": (
        Field("transaction_id", "string", required=True),
        Field("amount", "number", required=True, minimum=0, maximum=1e7, description="Sale total in `currency`."),
        Field("items", "integer", required=True, minimum=0, maximum=10_000),
        Field("currency", "string", pattern="[A-Z]{3}", max_length=3),
        Field("till_id", "string"),
        Field("customer_id", "string", identifier=True, description="Loyalty or card id; pseudonymised at ingest."),
    ),
    "queue": (
        Field("action", "string", required=True, enum=QUEUE_ACTIONS),
        Field("ticket_id", "string", required=True),
        Field("service", "string", required=True, description="Service type (teller, advice, repair...)."),
        Field("counter", "string", description="Counter or desk that called or served the ticket."),
        Field("customer_id", "string", identifier=True, description="Customer id; pseudonymised at ingest."),
        Field("wait_s", "number", minimum=0, maximum=MAX_INTERVAL_S,
              description="Wait so far, on called/served/abandoned."),
        Field("service_s", "number", minimum=0, maximum=MAX_INTERVAL_S, description="Service time, on served."),
    ),
    "heartbeat": (
        Field("sensor_id", "string", required=True),
        Field("status", "string", enum=("ok", "degraded")),
        Field("device_id", "string", identifier=True, description="Hardware id; pseudonymised at ingest."),
    ),
}
KINDS = tuple(KIND_FIELDS)

#: Members that hold customer or device identifiers, per kind.
IDENTIFIER_FIELDS: dict[str, tuple[str, ...]] = {
    kind: tuple(f.name for f in fields if f.identifier) for kind, fields in KIND_FIELDS.items()
}
ALL_IDENTIFIER_FIELDS = frozenset(name for names in IDENTIFIER_FIELDS.values() for name in names)

_COMMON_BY_NAME = {f.name: f for f in COMMON_FIELDS}

#: Default of `FOOTFALL_MAX_MESSAGE_BYTES`: Faust's producer (`producer_max_request_size`) refuses a request over
#: 1,000,000 bytes by default, and Kafka's default `message.max.bytes` is 1,048,588 (a batch, overhead included).
DEFAULT_MAX_MESSAGE_BYTES = 1_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class Limits:
    """Which event times are believable, and how big a message may be.

    Parameters
    ----------
    min_ts_ms
        Earliest accepted event time (UTC epoch ms). Replays of old data need an early one.
    max_future_ms
        How far past the receiver's clock an event may be (gateway clock skew).
    max_message_bytes
        Largest message accepted (`FOOTFALL_MAX_MESSAGE_BYTES`): the same number bounds what the
        worker's producer may send (dead letters, re-routes, records, saved state), so whatever
        is accepted can be passed on; a bigger message is dead-lettered as `too_large`, as an excerpt.

    """

    min_ts_ms: int = 946_684_800_000  # 2000-01-01T00:00:00Z
    max_future_ms: int = 3_600_000
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES


def parse_ts_ms(value: Any, *, now_ms: int, limits: Limits) -> int:
    """UTC epoch milliseconds of an ISO-8601 string with offset, or of integer epoch ms.

    >>> parse_ts_ms("2026-01-01T00:00:00Z", now_ms=1_800_000_000_000, limits=Limits())
    1767225600000
    >>> parse_ts_ms("2026-01-01T00:00:00", now_ms=1_800_000_000_000, limits=Limits())
    Traceback (most recent call last):
    ...
    footfall.schemas.fields.InvalidEvent: field 'ts': value '2026-01-01T00:00:00' violates rule 'carries a UTC offset'

    """
    if isinstance(value, str):
        if len(value) > 40:
            raise InvalidEvent("bad_timestamp", f"field 'ts': value {value[:30]!r}... violates rule 'ISO-8601'", "ts")
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise InvalidEvent("bad_timestamp", f"field 'ts': value {value!r} violates rule 'ISO-8601'", "ts") from None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise InvalidEvent(
                "bad_timestamp", f"field 'ts': value {value!r} violates rule 'carries a UTC offset'", "ts"
            )
        ts_ms = (parsed - _EPOCH) // _MS
    elif isinstance(value, int) and not isinstance(value, bool):
        ts_ms = value
    elif isinstance(value, float) and value.is_integer():
        ts_ms = int(value)  # 1.7e12 written with a zero fraction is still whole milliseconds
    else:
        raise InvalidEvent(
            "wrong_type",
            f"field 'ts': value {value!r:.40} violates rule 'ISO-8601 string or integer epoch ms'",
            "ts",
        )
    if ts_ms < limits.min_ts_ms:
        raise InvalidEvent(
            "bad_timestamp", f"field 'ts': value {value!r} violates rule 'not before {_iso(limits.min_ts_ms)}'", "ts"
        )
    if ts_ms > now_ms + limits.max_future_ms:
        raise InvalidEvent(
            "bad_timestamp",
            f"field 'ts': value {value!r} violates rule 'at most {limits.max_future_ms // 1000} s "
            f"after the receiver clock ({_iso(now_ms)})'",
            "ts",
        )
    return ts_ms


def _iso(ts_ms: int) -> str:
    return (_EPOCH + ts_ms * _MS).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Event:
    """The envelope every kind shares. `ts_ms` is UTC epoch milliseconds."""

    kind: ClassVar[str] = ""
    event_id: str
    store_id: str
    ts_ms: int
    region: str | None
    zone: str | None
    vertical: str | None


@dataclass(frozen=True, slots=True)
class DoorEvent(Event):
    """A door counter reading: one person (`count_in` or `count_out` is 1) or an interval."""

    kind: ClassVar[str] = "door"
    door_id: str
    sensor_id: str
    count_in: int
    count_out: int
    interval_s: int


@dataclass(frozen=True, slots=True)
class VisitEvent(Event):
    """A visit starts (`arrive`) or ends (`leave`)."""

    kind: ClassVar[str] = "visit"
    action: str
    visit_id: str | None
    visitor_id: str | None
    dwell_s: float | None


@dataclass(frozen=True, slots=True)
class PosEvent(Event):
    """A till transaction."""

    kind: ClassVar[str] = "pos"
    transaction_id: str
    amount: float
    items: int
    currency: str | None
    till_id: str | None
    customer_id: str | None


@dataclass(frozen=True, slots=True)
class QueueEvent(Event):
    """One step of a queue ticket."""

    kind: ClassVar[str] = "queue"
    action: str
    ticket_id: str
    service: str
    counter: str | None
    customer_id: str | None
    wait_s: float | None
    service_s: float | None


@dataclass(frozen=True, slots=True)
class Heartbeat(Event):
    """A sensor is alive."""

    kind: ClassVar[str] = "heartbeat"
    sensor_id: str
    status: str | None
    device_id: str | None


_CLASSES: dict[str, type[Event]] = {
    "door": DoorEvent, "visit": VisitEvent, "pos": PosEvent, "queue": QueueEvent, "heartbeat": Heartbeat,
}


def _filler(cls: type[Event]) -> Callable[..., Event]:
    """`cls(**fields)`, made empty and each slot filled through its descriptor.

    The frozen dataclass's `__init__` sets each field with `object.__setattr__` (to get past its
    own `__setattr__`): 3.3 µs of a door event's 9 µs of decoding, about 14 % of the worker's
    CPU on batches (sampled). Filling the slots directly gives the same frozen, equal instance in
    about half the time. Generated once per class, like the dataclass's own `__init__`.
    """
    names = [f.name for f in dataclasses.fields(cls)]
    source = (f"def fill(*, {', '.join(names)}):\n    event = new(cls)\n"
              + "".join(f"    set_{name}(event, {name})\n" for name in names) + "    return event\n")
    scope: dict[str, Any] = {"new": object.__new__, "cls": cls}
    scope.update({f"set_{name}": getattr(cls, name).__set__ for name in names})
    exec(source, scope)  # the source is built here from the dataclass's own field names
    return scope["fill"]  # type: ignore[no-any-return]


_FILLERS: dict[str, Callable[..., Event]] = {kind: _filler(cls) for kind, cls in _CLASSES.items()}


#: Per field: name, required, its fast acceptor, the field (see `Field.acceptor`).
_Plan = tuple[tuple[str, bool, Callable[[Any], bool], Field], ...]


def _plan(fields: tuple[Field, ...]) -> _Plan:
    return tuple((field.name, field.required, field.acceptor(), field) for field in fields)


_COMMON_PLAN = _plan(COMMON_FIELDS)
_KIND_PLANS = {kind: _plan(fields) for kind, fields in KIND_FIELDS.items()}


def _checked(obj: Mapping[str, Any], plan: _Plan) -> dict[str, Any]:
    values: dict[str, Any] = {}
    get = obj.get
    for name, required, accepts, field in plan:
        value = get(name)
        if value is None:
            if required:
                raise InvalidEvent("missing_field", f"field {name!r}: value missing violates rule 'required'", name)
            values[name] = None
        elif accepts(value):
            values[name] = value
        else:
            values[name] = field.check(value)  # converts (3.0 -> 3) or raises naming the rule
    return values


def parse_event(
    obj: Any,
    *,
    now_ms: int,
    limits: Limits,
    pseudonymize: Callable[[str], str] | None = None,
) -> Event:
    """Validate one decoded JSON value and build its event.

    Parameters
    ----------
    obj
        The decoded JSON value (must be an object).
    now_ms
        The receiver's clock, for the future-timestamp rule.
    limits
        Which event times are believable.
    pseudonymize
        Applied to every identifier field (`visitor_id`, `customer_id`, `device_id`)
        so raw identifiers never leave the parser.

    Raises
    ------
    InvalidEvent
        Naming the field, the value and the rule.

    """
    if not isinstance(obj, dict):
        raise InvalidEvent("not_an_object", f"event: value {type(obj).__name__} violates rule 'is a JSON object'")
    common = _checked(obj, _COMMON_PLAN)
    if "ts" not in obj or obj["ts"] is None:
        raise InvalidEvent("missing_field", "field 'ts': value missing violates rule 'required'", "ts")
    ts_ms = parse_ts_ms(obj["ts"], now_ms=now_ms, limits=limits)
    kind = common["kind"]
    values = _checked(obj, _KIND_PLANS[kind])
    if pseudonymize is not None:
        for name in IDENTIFIER_FIELDS[kind]:
            if values[name] is not None:
                values[name] = pseudonymize(values[name])
    envelope = {
        "event_id": common["event_id"], "store_id": common["store_id"], "ts_ms": ts_ms,
        "region": common["region"], "zone": common["zone"], "vertical": common["vertical"],
    }
    if kind == "door":
        _door_counts(values)
    elif kind == "visit" and values["action"] == "arrive" and values["dwell_s"] is not None:
        raise InvalidEvent("out_of_range", "field 'dwell_s': value given violates rule 'only on leave'", "dwell_s")
    return _FILLERS[kind](**envelope, **values)


def _door_counts(values: dict[str, Any]) -> None:
    """Turn the two door forms into one: counts in and out over an interval."""
    direction = values.pop("direction")
    if direction is not None:
        for name in ("count_in", "count_out", "interval_s"):
            if values[name] is not None:
                raise InvalidEvent(
                    "conflicting_fields",
                    f"field {name!r}: value {values[name]!r} violates rule 'not with direction (one person)'",
                    name,
                )
        values["count_in"] = int(direction == "in")
        values["count_out"] = int(direction == "out")
        values["interval_s"] = 0
        return
    for name in ("count_in", "count_out", "interval_s"):
        if values[name] is None:
            raise InvalidEvent(
                "missing_field",
                f"field {name!r}: value missing violates rule 'required without direction (interval report)'",
                name,
            )
