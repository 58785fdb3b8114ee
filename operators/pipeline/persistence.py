"""How a store's state is saved: one versioned scheme for its flow and its stages, and how older saves are read.

Two kinds of saved value, both JSON objects with readable keys and a `version`:

- a store (`store_value`): `{"version", "store_id", "partition", "offset", "rerouted", "region",
  "vertical", "flow"}`: the pipeline's `to_state()` (the flow's plain data: buckets,
  recent event ids, sliding windows, occupancy, queues, baseline, days, duplicates, late)
  and where it stands in the input;
- a partition's marker (`marker_value`): `{"version", "partition", "offset"}`, the last input
  offset applied in that partition, written once everything before it is saved;
- a stage (`stage_value`): `{"version", "stage", "encoding", "state"}`. A stage whose state
  is plain data is saved as it is (`encoding: "json"`); one whose state is bytes, such as
  the forecasts-and-alerts stage's River models (River models persist by pickling), is
  saved as base64 text (`encoding: "base64"`). Those bytes are unpickled: only state this
  deployment wrote to its own changelog is ever read.

Values of the previous scheme (version 1: two-letter keys `st, p, o, rr` around a flow
state keyed `b, dd, sl, occ, q, bl, dup`; models under `~fc:<store>` as `{"b": base64}`)
are read and converted. A value this code cannot read raises `StateRefused`, whose
message names the store and what starts over: the caller logs it and starts that part
anew, never crashes and never counts on top of a state it misread.

Examples
--------
>>> value = store_value("s1", {"region": "north", "vertical": "retail", "flow": {"late": 0}},
...                     partition=3, offset=41, rerouted={"0": 7})
>>> saved = read_store_value("s1", value)
>>> saved.partition, saved.offset, saved.rerouted, saved.state["region"]
(3, 41, {'0': 7}, 'north')
>>> old = {"st": {"b": {}, "dd": {}, "sl": {}, "occ": {}, "q": None, "bl": {}, "days": {}, "dup": 2, "late": 0},
...        "region": "north", "vertical": None, "p": 3, "o": 40, "rr": {}}
>>> read_store_value("s1", old).state["flow"]["duplicates"]
2
>>> read_stage_value("s1", "forecast", stage_value("forecast", b"models")).state
b'models'
>>> try:
...     read_stage_value("s1", "forecast", {"b": "abc"})  # not base64
... except StateRefused as refused:
...     print(refused)
store s1: saved forecast state unreadable (Error: Incorrect padding): its forecast stage starts over
>>> try:
...     read_store_value("s1", {"version": 99})
... except StateRefused as refused:
...     print(refused)
store s1: saved with state version 99, this version reads 1-2: the store's counts start over

"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "STATE_VERSION",
    "SavedStage",
    "SavedStore",
    "StateRefused",
    "legacy_stage_key",
    "marker_key",
    "marker_value",
    "parsed",
    "read_marker_value",
    "read_stage_value",
    "read_store_value",
    "stage_key",
    "stage_value",
    "store_value",
]

#: The scheme written now; 1 is still read.
STATE_VERSION = 2

#: Version 1's flow-state keys and their names now.
_V1_FLOW_KEYS = {"b": "buckets", "dd": "recent_event_ids", "sl": "sliding", "occ": "occupancy", "q": "queues",
                 "bl": "baseline", "days": "days", "dup": "duplicates", "late": "late"}

#: Stage names whose version-1 state lived under another key prefix.
_V1_STAGE_PREFIX = {"forecast": "fc"}


class StateRefused(ValueError):
    """A saved value this code cannot read: the message says whose, and what starts over."""


def stage_key(stage: str, store_id: str) -> str:
    """Table key of a store's stage state (its own key: it changes once a bucket, the store per flush).

    >>> stage_key("forecast", "s1")
    '~forecast:s1'

    """
    return f"~{stage}:{store_id}"


def legacy_stage_key(stage: str, store_id: str) -> str | None:
    """Where version 1 kept that stage's state, if anywhere."""
    prefix = _V1_STAGE_PREFIX.get(stage)
    return None if prefix is None else f"~{prefix}:{store_id}"


def marker_key(partition: int) -> str:
    """Table key of a partition's marker: the last input offset applied in that partition.

    >>> marker_key(3)
    '~partition-3'

    """
    return f"~partition-{partition}"


def marker_value(partition: int, offset: int) -> dict[str, Any]:
    """The saved value of a partition's marker."""
    return {"version": STATE_VERSION, "partition": partition, "offset": offset}


def parsed(value: Any) -> Any:
    """A saved value as the table holds it, as an object: its JSON bytes parsed, or an object as it is.

    The worker's table holds each value as the JSON bytes it sent to the changelog (as Python
    dicts, a store's state took about 210 KB of memory against 32-39 KB as JSON); values put
    in as objects (older code, tests) are read as they are.

    >>> parsed(b'{"offset": 3}'), parsed({"offset": 3}), parsed(None)
    ({'offset': 3}, {'offset': 3}, None)

    """
    if isinstance(value, bytes | bytearray | memoryview):
        return orjson.loads(value)
    return value


def read_marker_value(value: Any) -> int | None:
    """The offset a marker holds (this scheme's or version 1's `{"p", "o"}`), None when there is none.

    >>> read_marker_value(marker_value(2, 17)), read_marker_value({"p": 2, "o": 16}), read_marker_value(None)
    (17, 16, None)
    >>> read_marker_value(orjson.dumps(marker_value(2, 18)))
    18

    """
    try:
        value = parsed(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, Mapping):
        return None
    offset = value.get("offset", value.get("o"))
    return offset if isinstance(offset, int) else None


@dataclass(frozen=True)
class SavedStore:
    """A store's saved value, read: its pipeline state and where it stands in the input."""

    state: dict[str, Any]
    partition: int | None
    offset: int
    rerouted: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SavedStage:
    """A stage's saved state, read."""

    stage: str
    state: Any


def store_value(store_id: str, state: Mapping[str, Any], partition: int, offset: int,
                rerouted: Mapping[str, int]) -> dict[str, Any]:
    """The saved value of a store: its pipeline's `to_state()` and its place in the input."""
    return {"version": STATE_VERSION, "store_id": store_id, "partition": partition, "offset": offset,
            "rerouted": dict(rerouted), "region": state.get("region"), "vertical": state.get("vertical"),
            "flow": state.get("flow")}


def read_store_value(store_id: str, value: Mapping[str, Any] | bytes) -> SavedStore:
    """A store's saved value, of this scheme or the previous one; `StateRefused` otherwise, whatever is wrong."""
    try:
        return _read_store_value(store_id, value)
    except StateRefused:
        raise
    except Exception as exc:
        raise StateRefused(f"store {store_id}: saved value unreadable ({type(exc).__name__}: {exc}): "
                           "the store's counts start over") from exc


def _read_store_value(store_id: str, value: Mapping[str, Any] | bytes) -> SavedStore:
    value = parsed(value)
    if not isinstance(value, Mapping):
        raise StateRefused(f"store {store_id}: saved value is a {type(value).__name__}, not an object: "
                           "the store's counts start over")
    version = value.get("version", 1 if "st" in value else None)
    if version == STATE_VERSION:
        state = {"region": value.get("region"), "vertical": value.get("vertical"), "flow": value.get("flow")}
        return SavedStore(state, value.get("partition"), value.get("offset", -1), dict(value.get("rerouted") or {}))
    if version == 1:
        flow = value.get("st")
        if flow:
            unknown = set(flow) - set(_V1_FLOW_KEYS)
            if unknown:
                raise StateRefused(f"store {store_id}: saved flow state has unknown fields {sorted(unknown)}: "
                                   "the store's counts start over")
            flow = {_V1_FLOW_KEYS[k]: v for k, v in flow.items()}
        state = {"region": value.get("region"), "vertical": value.get("vertical"), "flow": flow}
        return SavedStore(state, value.get("p"), value.get("o", -1), dict(value.get("rr") or {}))
    raise StateRefused(f"store {store_id}: saved with state version {version}, this version reads "
                       f"1-{STATE_VERSION}: the store's counts start over")


def stage_value(stage: str, state: Any) -> dict[str, Any]:
    """The saved value of a stage's state (bytes as base64 text, plain data as it is)."""
    if isinstance(state, bytes | bytearray):
        return {"version": STATE_VERSION, "stage": stage, "encoding": "base64",
                "state": base64.b64encode(state).decode()}
    return {"version": STATE_VERSION, "stage": stage, "encoding": "json", "state": state}


def read_stage_value(store_id: str, stage: str, value: Mapping[str, Any] | bytes | None) -> SavedStage:
    """A stage's saved state (None: nothing saved); `StateRefused` when it cannot be read, whatever is wrong."""
    try:
        return _read_stage_value(store_id, stage, value)
    except StateRefused:
        raise
    except Exception as exc:  # a broken value of any shape: refused, never raised as something else
        raise StateRefused(f"store {store_id}: saved {stage} state unreadable ({type(exc).__name__}: {exc}): "
                           f"its {stage} stage starts over") from exc


def _read_stage_value(store_id: str, stage: str, value: Mapping[str, Any] | bytes | None) -> SavedStage:
    value = parsed(value)
    if value is None:
        return SavedStage(stage, None)
    if not isinstance(value, Mapping):
        raise StateRefused(f"store {store_id}: saved {stage} state is a {type(value).__name__}: its {stage} "
                           "stage starts over")
    version = value.get("version", 1)
    if version == 1 and set(value) == {"b"}:  # version 1 kept only the forecasting models, as {"b": base64}
        raw = value["b"]
        return SavedStage(stage, base64.b64decode(raw) if raw else None)
    if version != STATE_VERSION or value.get("stage") != stage:
        raise StateRefused(f"store {store_id}: saved {stage} state has version {version} and stage "
                           f"{value.get('stage')!r}; this version reads {STATE_VERSION}: its {stage} stage starts over")
    encoding = value.get("encoding")
    if encoding == "base64":
        return SavedStage(stage, base64.b64decode(value["state"]) if value["state"] else None)
    if encoding == "json":
        return SavedStage(stage, value["state"])
    raise StateRefused(f"store {store_id}: saved {stage} state has encoding {encoding!r}: its {stage} stage "
                       "starts over")
