"""The committed JSON Schema files: current, valid draft 2020-12, and agreeing with `parse_event`.

The oracle is `jsonschema.Draft202012Validator`, an implementation written apart from
footfall, run on the committed files (what producers in other languages read).

Forms excluded from the generated events, and why:

- `ts` strings other than `YYYY-MM-DDTHH:MM:SS(Z|+HH:MM|-HH:MM)` of a real instant: the
  schema only checks the offset suffix (`format: date-time` is an annotation in 2020-12
  unless a format checker is asked for), so "garbageZ" passes it; only the parser can judge.
- `ts` past `now_ms`: the schema cannot know the receiver clock. Events stay within
  [0, now_ms] and `Limits(min_ts_ms=0)` matches the schema's `minimum: 0`.
- strings ending in a newline for pattern fields (`store_id`, `currency`): python-jsonschema
  runs `re.search` with the `^...$` anchors, and Python's `$` also matches before a final
  newline, unlike ECMA-262 `$` the JSON Schema spec prescribes. Not a footfall issue.
- NaN and infinities: not JSON (orjson refuses them), so no message can carry them.

Two disagreements found here were fixed and are pinned by the tests
`test_integral_float_for_integer_member_agrees` (JSON-integral floats such as `3.0`) and
`test_null_optional_enum_member_agrees` (explicit null for optional enum members); explicit null
for the door form members and `dwell_s` now reads as absent in both.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import hypothesis
import jsonschema
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from footfall.schemas import InvalidEvent, Limits, parse_event
from footfall.schemas.jsonschema import SCHEMA_DIR, kind_schema

KINDS = ("door", "visit", "pos", "queue", "heartbeat")
NOW_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
LIMITS = Limits(min_ts_ms=0, max_future_ms=0)
FILES = {kind: SCHEMA_DIR / f"{kind}.schema.json" for kind in KINDS}
VALIDATORS = {kind: jsonschema.Draft202012Validator(json.loads(path.read_text())) for kind, path in FILES.items()}
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# The rules, written out here from the README/docstrings rather than read from footfall's tables.
COMMON_STRINGS = {"event_id": 128, "region": 128, "zone": 128}
KIND_STRINGS: dict[str, dict[str, int]] = {  # free-text members and their longest length
    "door": {"door_id": 128, "sensor_id": 128},
    "visit": {"visit_id": 128, "visitor_id": 128},
    "pos": {"transaction_id": 128, "till_id": 128, "customer_id": 128},
    "queue": {"ticket_id": 128, "service": 128, "counter": 128, "customer_id": 128},
    "heartbeat": {"sensor_id": 128, "device_id": 128},
}
ENUMS: dict[str, dict[str, tuple[str, ...]]] = {
    "door": {"direction": ("in", "out")},
    "visit": {"action": ("arrive", "leave")},
    "pos": {},
    "queue": {"action": ("issued", "called", "served", "abandoned", "no_show")},
    "heartbeat": {"status": ("ok", "degraded")},
}
COMMON_ENUMS = {"kind": KINDS, "vertical": ("retail", "bank", "telecom")}
NUMBERS: dict[str, dict[str, tuple[str, float, float]]] = {  # member: (json type, min, max)
    "door": {"count_in": ("integer", 0, 100_000), "count_out": ("integer", 0, 100_000),
             "interval_s": ("integer", 1, 86_400)},
    "visit": {"dwell_s": ("number", 0, 86_400)},
    "pos": {"amount": ("number", 0, 1e7), "items": ("integer", 0, 10_000)},
    "queue": {"wait_s": ("number", 0, 86_400), "service_s": ("number", 0, 86_400)},
    "heartbeat": {},
}
COMMON_NUMBERS = {"schema_version": ("integer", 1, 1)}
PATTERNS = {"store_id": 64, "currency": 3}  # pattern members and their longest length
# Members never given as explicit null (see the module docstring).
NO_NULL = {"door": {"direction", "count_in", "count_out", "interval_s"}, "visit": {"dwell_s"}, "heartbeat": {"status"}}
NO_NULL_COMMON = {"vertical"}


def known_members(kind: str) -> set[str]:
    return ({"ts", "store_id", "currency"} | set(COMMON_STRINGS) | set(COMMON_ENUMS) | set(COMMON_NUMBERS)
            | set(KIND_STRINGS[kind]) | set(ENUMS[kind]) | set(NUMBERS[kind]))


# -- the files ----------------------------------------------------------------------------------------


def test_schema_files_are_exactly_one_per_kind() -> None:
    # Input kinds only: the output records' files are `<type>.record.schema.json` (test_record_schemas.py).
    events = [p.name for p in SCHEMA_DIR.glob("*.schema.json") if not p.name.endswith(".record.schema.json")]
    assert sorted(events) == sorted(f"{k}.schema.json" for k in KINDS)


@pytest.mark.parametrize("kind", KINDS)  # one committed file per kind
def test_committed_file_equals_generated_schema(kind: str) -> None:
    # Drift: someone changed a Field without running `footfall schemas export`.
    assert json.loads(FILES[kind].read_text()) == kind_schema(kind)


@pytest.mark.parametrize("kind", KINDS)  # one committed file per kind
def test_committed_file_is_a_valid_draft_2020_12_schema(kind: str) -> None:
    doc = json.loads(FILES[kind].read_text())
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(doc)


# -- event strategies ---------------------------------------------------------------------------------

ABSENT = object()


def text(max_size: int = 20) -> st.SearchStrategy[str]:
    """Non-empty text; never ending in a newline (python-jsonschema's `$` quirk, see the docstring)."""
    return st.text(min_size=1, max_size=max_size).filter(lambda s: not s.endswith("\n"))


@st.composite
def iso_ts(draw: st.DrawFn) -> str:
    """`YYYY-MM-DDTHH:MM:SS` + `Z` or a real offset (at most 23:59), of an instant in [0, NOW_MS]."""
    utc_s = draw(st.integers(86_400, NOW_MS // 1000 - 86_400))
    offset_min = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    local = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=utc_s, minutes=offset_min)
    if offset_min == 0 and draw(st.booleans()):
        suffix = "Z"
    else:
        sign = "+" if offset_min >= 0 else "-"
        suffix = f"{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"
    return local.strftime("%Y-%m-%dT%H:%M:%S") + suffix


TS = st.one_of(st.integers(0, NOW_MS), iso_ts())
STORE_ID = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}", fullmatch=True)


def number(json_type: str, lo: float, hi: float) -> st.SearchStrategy[int | float]:
    ints = st.integers(int(lo), int(hi))
    if json_type == "integer":
        return ints
    return st.one_of(ints, st.floats(lo, hi, allow_nan=False, allow_infinity=False))


@st.composite
def optional(draw: st.DrawFn, strategy: st.SearchStrategy[Any], nullable: bool = True) -> Any:
    choice = draw(st.sampled_from(["absent", "null", "value"] if nullable else ["absent", "value"]))
    return ABSENT if choice == "absent" else None if choice == "null" else draw(strategy)


@st.composite
def valid_events(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": draw(text()), "store_id": draw(STORE_ID), "kind": kind, "ts": draw(TS), "schema_version": 1,
        "region": draw(optional(text())), "zone": draw(optional(text())),
        "vertical": draw(optional(st.sampled_from(COMMON_ENUMS["vertical"]), nullable=False)),
    }
    if kind == "door":
        event |= {"door_id": draw(text()), "sensor_id": draw(text())}
        if draw(st.booleans()):
            event["direction"] = draw(st.sampled_from(["in", "out"]))
        else:
            event |= {name: draw(number(*NUMBERS["door"][name])) for name in ("count_in", "count_out", "interval_s")}
    elif kind == "visit":
        action = draw(st.sampled_from(["arrive", "leave"]))
        event |= {"action": action, "visit_id": draw(optional(text())), "visitor_id": draw(optional(text()))}
        if action == "leave":
            event["dwell_s"] = draw(optional(number("number", 0, 86_400), nullable=False))
    elif kind == "pos":
        event |= {
            "transaction_id": draw(text()), "amount": draw(number("number", 0, 1e7)),
            "items": draw(number("integer", 0, 10_000)),
            "currency": draw(optional(st.from_regex(r"[A-Z]{3}", fullmatch=True))),
            "till_id": draw(optional(text())), "customer_id": draw(optional(text())),
        }
    elif kind == "queue":
        event |= {
            "action": draw(st.sampled_from(ENUMS["queue"]["action"])), "ticket_id": draw(text()),
            "service": draw(text()), "counter": draw(optional(text())), "customer_id": draw(optional(text())),
            "wait_s": draw(optional(number("number", 0, 86_400))),
            "service_s": draw(optional(number("number", 0, 86_400))),
        }
    else:
        status = draw(optional(st.sampled_from(["ok", "degraded"]), nullable=False))
        event |= {"sensor_id": draw(text()), "status": status, "device_id": draw(optional(text()))}
    return {k: v for k, v in event.items() if v is not ABSENT}


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text(5), inner, max_size=3),
    max_leaves=5,
)
NON_INTEGRAL_FLOATS = st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer())


@st.composite
def mutated(draw: st.DrawFn, event: dict[str, Any]) -> dict[str, Any]:
    """One rule-breaking (or harmless) change of the event."""
    kind = event["kind"]
    event = dict(event)
    numbers = COMMON_NUMBERS | NUMBERS[kind]
    enums = COMMON_ENUMS | ENUMS[kind]
    strings = COMMON_STRINGS | KIND_STRINGS[kind] | {p: n for p, n in PATTERNS.items() if p in known_members(kind)}
    if kind != "pos":
        strings.pop("currency", None)
    how = draw(st.sampled_from(
        ["drop", "wrong_type", "out_of_range", "bad_enum", "long_string", "extra", "set_known", "bad_ts"]
    ))
    if how == "drop":
        del event[draw(st.sampled_from(sorted(event)))]
    elif how == "wrong_type":
        name = draw(st.sampled_from(sorted(event)))
        if name == "ts":
            return draw(mutated(event))  # ts has its own forms: see bad_ts
        wrong = st.one_of(st.booleans(), NON_INTEGRAL_FLOATS, st.lists(st.integers(), max_size=2),
                          st.dictionaries(text(3), st.integers(), max_size=2), st.integers(-100, 10**6), text(5),
                          st.just(""))
        if name not in NO_NULL.get(kind, set()) | NO_NULL_COMMON:
            wrong = wrong | st.none()
        event[name] = draw(wrong)
    elif how == "out_of_range":
        name = draw(st.sampled_from(sorted(numbers)))
        json_type, lo, hi = numbers[name]
        step = draw(st.integers(1, 10**9) if json_type == "integer" else st.floats(1e-6, 1e9))
        event[name] = lo - step if draw(st.booleans()) else hi + step
    elif how == "bad_enum":
        name = draw(st.sampled_from(sorted(enums)))
        event[name] = draw(st.one_of(st.just(""), text(12).filter(lambda s: s not in enums[name])))
    elif how == "long_string":
        name = draw(st.sampled_from(sorted(strings)))
        # -1 and 0: under or at the limit (valid); 1 and 2: too long
        event[name] = "A" * (strings[name] + draw(st.sampled_from([-1, 0, 1, 1, 2])))
    elif how == "extra":
        name = draw(text(12).filter(lambda s: s not in known_members(kind)))
        event[name] = draw(JSON_VALUES)
    elif how == "set_known":
        # Give a member of this kind a valid value: may create a door with both forms or dwell_s on arrive.
        name = draw(st.sampled_from(sorted(set(numbers) | (set(enums) - {"kind"}))))
        if name in numbers:
            event[name] = draw(number(*numbers[name]))
        else:
            event[name] = draw(st.sampled_from(enums[name]))
    else:  # bad_ts
        event["ts"] = draw(st.one_of(
            iso_ts().map(lambda s: s[:19]),  # naive local time: no offset
            st.integers(-(10**13), -1),  # before the epoch: below minimum 0 and min_ts_ms 0
            st.booleans(), NON_INTEGRAL_FLOATS, st.none(), st.lists(st.integers(), max_size=2),
            TS,  # a valid one again
        ))
    return event


def parser_verdict(obj: dict[str, Any]) -> tuple[bool, str]:
    try:
        parse_event(obj, now_ms=NOW_MS, limits=LIMITS)
    except InvalidEvent as exc:
        return False, f"{exc.reason}: {exc}"
    return True, "valid"


def schema_verdict(kind: str, obj: dict[str, Any]) -> tuple[bool, str]:
    errors = [e.message for e in VALIDATORS[kind].iter_errors(obj)]
    return not errors, "; ".join(errors)[:500] or "valid"


EVENTS = st.sampled_from(KINDS).flatmap(valid_events)


@SETTINGS
@given(EVENTS)
def test_valid_events_are_valid_for_both(event: dict[str, Any]) -> None:
    assert parser_verdict(event) == (True, "valid")
    assert schema_verdict(event["kind"], event) == (True, "valid")


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), EVENTS, st.sampled_from([1, 1, 1, 2, 3]))  # mostly one change, so it decides the verdict
def test_mutated_events_get_the_same_verdict(data: st.DataObject, event: dict[str, Any], n_mutations: int) -> None:
    kind = event["kind"]
    for _ in range(n_mutations):
        event = data.draw(mutated(event))
        if "kind" not in event or event["kind"] != kind:
            break  # later mutations would read `kind`
    note(f"event={event!r}")
    parser_ok, parser_why = parser_verdict(event)
    schema_ok, schema_why = schema_verdict(kind, event)
    hypothesis.event(f"{kind} valid={schema_ok}")
    assert parser_ok == schema_ok, f"parser: {parser_why} | schema: {schema_why}"


@pytest.mark.parametrize(
    ("kind", "member", "value"),
    [
        ("door", "count_in", 3.0),  # JSON `3.0` read by orjson as a float
        ("pos", "items", 2.0),  # same for items
        ("heartbeat", "schema_version", 1.0),  # same for the envelope
        ("heartbeat", "ts", 1_767_225_600_000.0),  # and for epoch-ms timestamps
    ],
)
def test_integral_float_for_integer_member_agrees(kind: str, member: str, value: float) -> None:
    base = {
        "door": {"door_id": "d", "sensor_id": "c", "count_in": 1, "count_out": 0, "interval_s": 60},
        "pos": {"transaction_id": "t", "amount": 1.5, "items": 1},
        "heartbeat": {"sensor_id": "c"},
    }[kind]
    event = {"event_id": "e", "store_id": "s", "kind": kind, "ts": 1_767_225_600_000, "schema_version": 1,
             **base, member: value}
    assert schema_verdict(kind, event)[0] is True  # the published schema says valid
    assert parser_verdict(event)[0] is True  # so a conforming producer's event must not be rejected


@pytest.mark.parametrize(
    ("kind", "member"),
    [
        ("door", "vertical"),  # the common optional enum, on a door event
        ("pos", "vertical"),  # and on a pos event
        ("heartbeat", "status"),  # the heartbeat's optional enum
    ],
)
def test_null_optional_enum_member_agrees(kind: str, member: str) -> None:
    # kind_schema says "An optional member may be absent or null; parse_event reads both as
    # 'not given'", and makes the type ["string", "null"], but keeps `enum` without null.
    base = {
        "door": {"door_id": "d", "sensor_id": "c", "direction": "in"},
        "pos": {"transaction_id": "t", "amount": 1.5, "items": 1},
        "heartbeat": {"sensor_id": "c"},
    }[kind]
    event = {"event_id": "e", "store_id": "s", "kind": kind, "ts": 1_767_225_600_000, "schema_version": 1,
             **base, member: None}
    assert parser_verdict(event)[0] is True  # the parser reads null as absent
    assert schema_verdict(kind, event)[0] is True
