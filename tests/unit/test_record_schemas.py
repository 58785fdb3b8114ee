"""The output contract: record kinds' JSON Schema files are current, the generator maps types right,
and the records the worker's builders make from real operator outputs validate (and broken ones do not).

The oracle is `jsonschema.Draft202012Validator`, run on the committed files (what consumers read),
on the JSON form of each record (what goes on the wire: orjson, NaN as null).
"""

from __future__ import annotations

import importlib
import json
import random
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal, NotRequired, Required, TypedDict

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from footfall.operators.alerting.alerts import AlertBook
from footfall.operators.kpis.rollup import LIVE_SUMMED, SUMMED, RollUp, compact, compact_live
from footfall.operators.peers.chain import ChainPeers
from footfall.operators.pipeline.insights_stage import Insights
from footfall.operators.pipeline.quality_stage import DataQuality
from footfall.operators.pipeline.segments_stage import CustomerSegments
from footfall.operators.pipeline.staffing_stage import StaffingAdvice
from footfall.operators.pipeline.stage import ClosedBucket, ForecastOutput, StoreContext
from footfall.operators.pipeline.store import StoreFlow, StoreParams
from footfall.operators.pipeline.store_models import StoreModels
from footfall.schemas import records
from footfall.schemas.events import VERTICALS, DoorEvent, Event, Heartbeat, PosEvent, QueueEvent, VisitEvent
from footfall.schemas.jsonschema import SCHEMA_DIR, record_schema_path
from footfall.schemas.records import RECORD_KINDS, RecordKind, record_schema, register_record_kind, type_schema
from footfall.scripts.peers import rollup_heatmaps
from footfall.stream.records import StoreMeta, record_of

BUILT_IN = ("bucket", "live", "forecast", "alert", "staffing", "segments", "insights", "quality", "rollup",
            "rollup_live", "peers", "peer_groups", "rollup_heatmap")
FILES = {t: record_schema_path(t) for t in BUILT_IN}
VALIDATORS = {
    t: jsonschema.Draft202012Validator(json.loads(path.read_text()),
                                       format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    for t, path in FILES.items()
}

MIN = 60_000
BUCKET_MS = 15 * MIN
T0 = 1_790_150_400_000  # 2026-09-23T08:00:00Z, a Wednesday: 09:00 in London


def builder(name: str) -> Callable[..., dict[str, Any]]:
    """A record builder of the worker, wherever it lives now (`stream.records`, else agents or sinks)."""
    for module in ("footfall.stream.records", "footfall.stream.agents", "footfall.stream.sinks"):
        try:
            found = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if found is not None:
            return found
    raise AssertionError(f"no record builder {name!r} in footfall.stream")


def errors(record_type: str, record: dict[str, Any]) -> list[str]:
    """What the committed schema says is wrong with the record's JSON form (nothing: [])."""
    wire = orjson.loads(orjson.dumps(record))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATORS[record_type].iter_errors(wire)]


# -- the files ----------------------------------------------------------------------------------------


def test_one_record_schema_file_per_built_in_kind() -> None:
    assert set(BUILT_IN) <= set(RECORD_KINDS)
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.record.schema.json")) == sorted(p.name for p in FILES.values())


@pytest.mark.parametrize("record_type", BUILT_IN)  # one committed file per kind
def test_committed_record_file_equals_generated_schema(record_type: str) -> None:
    # Drift: someone changed a TypedDict without running `footfall schemas export`.
    assert json.loads(FILES[record_type].read_text()) == record_schema(record_type)


@pytest.mark.parametrize("record_type", BUILT_IN)  # one committed file per kind
def test_committed_record_file_is_a_valid_draft_2020_12_schema(record_type: str) -> None:
    doc = json.loads(FILES[record_type].read_text())
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["properties"]["type"] == {"const": record_type}
    assert doc["additionalProperties"] is False
    jsonschema.Draft202012Validator.check_schema(doc)


@pytest.mark.parametrize("record_type", BUILT_IN)  # every field says what it is
def test_every_record_field_is_described(record_type: str) -> None:
    doc = record_schema(record_type)
    objects = [doc, *doc.get("$defs", {}).values()]
    undescribed = [name for obj in objects for name, prop in obj["properties"].items()
                   if name != "type" and "description" not in prop and "$ref" not in prop]
    assert undescribed == []


def test_topics_are_the_worker_topics() -> None:
    assert {t: RECORD_KINDS[t].topic for t in BUILT_IN} == {
        "bucket": "aggregates", "live": "aggregates", "forecast": "predictions", "alert": "alerts",
        "staffing": "staffing", "segments": "segments", "insights": "insights", "quality": "quality",
        "rollup": None, "rollup_live": None,  # written to Redis only
        "peers": None, "peer_groups": None, "rollup_heatmap": None,  # written to Redis only, by `footfall peers`
    }


def test_vertical_literal_is_the_event_verticals() -> None:
    assert records.Vertical.__args__ == VERTICALS


# -- the generator ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (int, {"type": "integer"}),
        (float, {"type": "number"}),  # JSON numbers: integers validate too
        (str, {"type": "string"}),
        (bool, {"type": "boolean"}),
        (None, {"type": "null"}),
        (Any, {}),  # anything
        (int | None, {"type": ["integer", "null"]}),
        (float | str, {"type": ["number", "string"]}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (list[str] | None, {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]}),
        (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
        (dict[str, Any], {"type": "object"}),  # an open object
        (Literal["a"], {"const": "a"}),
        (Literal["a", "b"], {"enum": ["a", "b"]}),
        (Literal["a", "b"] | None, {"enum": ["a", "b", None]}),
        (Annotated[int, "people in"], {"type": "integer", "description": "people in"}),
        (Annotated[str, "a day", {"format": "date"}], {"type": "string", "description": "a day", "format": "date"}),
    ],
)
def test_type_schema_maps_annotations(annotation: Any, expected: dict[str, Any]) -> None:
    assert type_schema(annotation) == expected


@pytest.mark.parametrize(
    "annotation",
    [
        dict[int, str],  # JSON object keys are strings
        set[int],  # no JSON form
        tuple[int, int],  # not supported: use list
        bytes,
    ],
)
def test_type_schema_refuses_what_json_cannot_say(annotation: Any) -> None:
    with pytest.raises(TypeError):
        type_schema(annotation)


class Point(TypedDict):
    """A point."""

    x: float
    label: NotRequired[Annotated[str | None, "a name"]]


class Toy(TypedDict):
    """A toy record."""

    type: Literal["toy"]
    n: int
    flag: bool
    ratio: float | None
    tags: list[str]
    counts: dict[str, int]
    mode: Literal["a", "b"] | None
    where: Point
    path: list[Point]
    maybe: Annotated[Point | None, "a point or null"]
    note: NotRequired[Annotated[str, "free text", {"maxLength": 10}]]


class Sparse(TypedDict, total=False):
    a: int
    b: Required[str]


POINT_SCHEMA = {
    "title": "Point", "description": "A point.", "type": "object",
    "properties": {"x": {"type": "number"}, "label": {"type": ["string", "null"], "description": "a name"}},
    "required": ["x"], "additionalProperties": False,
}


def test_typed_dict_schema_written_out_by_hand() -> None:
    assert type_schema(Toy) == {
        "title": "Toy",
        "description": "A toy record.",
        "type": "object",
        "properties": {
            "type": {"const": "toy"},
            "n": {"type": "integer"},
            "flag": {"type": "boolean"},
            "ratio": {"type": ["number", "null"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "mode": {"enum": ["a", "b", None]},
            "where": {"$ref": "#/$defs/Point"},
            "path": {"type": "array", "items": {"$ref": "#/$defs/Point"}},
            "maybe": {"anyOf": [{"$ref": "#/$defs/Point"}, {"type": "null"}], "description": "a point or null"},
            "note": {"type": "string", "description": "free text", "maxLength": 10},
        },
        "required": ["type", "n", "flag", "ratio", "tags", "counts", "mode", "where", "path", "maybe"],
        "additionalProperties": False,
        "$defs": {"Point": POINT_SCHEMA},
    }


def test_total_false_and_required() -> None:
    assert type_schema(Sparse)["required"] == ["b"]
    assert type_schema(list[Sparse])["items"] == {"$ref": "#/$defs/Sparse"}


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ({"x": 1.5}, True),  # label may be absent
        ({"x": 2, "label": None}, True),  # an integer for a float; a null label
        ({"x": True}, False),  # a boolean is no number
        ({"x": "1.5"}, False),  # nor is a string
        ({}, False),  # x is required
        ({"x": 1.0, "y": 2.0}, False),  # no other members
    ],
)
def test_generated_typed_dict_schema_validates_as_typed(value: dict[str, Any], valid: bool) -> None:
    doc = {"$defs": {"Point": POINT_SCHEMA}, "$ref": "#/$defs/Point"}
    assert jsonschema.Draft202012Validator(doc).is_valid(value) is valid


# -- the registry -------------------------------------------------------------------------------------


class NoteRecord(TypedDict):
    """A later capability's record."""

    type: Literal["note"]
    store_id: str
    text: Annotated[str, "what was noted"]


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> dict[str, RecordKind]:
    """A copy of the registry for this test: kinds it registers are gone afterwards."""
    kinds = dict(RECORD_KINDS)
    monkeypatch.setattr(records, "RECORD_KINDS", kinds)
    return kinds


def test_a_later_kind_registers_and_gets_its_schema(registry: dict[str, RecordKind]) -> None:
    kind = register_record_kind(RecordKind("note", NoteRecord, "notes", "A note about a store."))
    assert registry["note"] is kind
    assert register_record_kind(kind) is kind  # the very same kind again: no change
    doc = records.record_schema("note")
    assert doc["$id"].endswith("/note.record.schema.json")
    assert doc["required"] == ["type", "store_id", "text"]
    assert jsonschema.Draft202012Validator(doc).is_valid({"type": "note", "store_id": "s", "text": "hi"})


@pytest.mark.parametrize(
    "kind",
    [
        RecordKind("bucket", NoteRecord, "aggregates", "x"),  # a built-in type name: a clash
        RecordKind("memo", NoteRecord, "notes", "x"),  # its TypedDict's `type` says "note"
        RecordKind("plain", dict, "notes", "x"),  # not a TypedDict
    ],
)
def test_register_refuses(registry: dict[str, RecordKind], kind: RecordKind) -> None:
    before = dict(registry)
    with pytest.raises(ValueError):
        register_record_kind(kind)
    assert registry == before


# -- records built from real operator outputs ---------------------------------------------------------


def _events(store_id: str, vertical: str, region: str, seed: int) -> Iterator[Event]:
    """Ten hours of a store: people in for four hours, out for two, sales, visits, tickets, heartbeats,
    one repeated event and one late one."""
    rng = random.Random(seed)
    env = {"store_id": store_id, "region": region, "zone": None, "vertical": vertical}
    for minute in range(600):
        ts = T0 + minute * MIN + rng.randrange(MIN)
        n_in, n_out = (rng.randint(1, 3), rng.randint(0, 1)) if minute < 240 else (0, rng.randint(0, 3))
        yield DoorEvent(**env, event_id=f"d{minute}", ts_ms=ts, door_id="main", sensor_id="c1", count_in=n_in,
                        count_out=n_out, interval_s=60)
        if minute % 5 == 0:
            yield Heartbeat(**env, event_id=f"h{minute}", ts_ms=ts, sensor_id="c1", status="ok", device_id=None)
        if vertical == "retail":
            if minute % 3 == 0:
                yield PosEvent(**env, event_id=f"p{minute}", ts_ms=ts, transaction_id=f"t{minute}",
                               amount=round(rng.uniform(2, 80), 2), items=rng.randint(1, 5), currency="GBP",
                               till_id="till-1", customer_id=None)
            if minute % 7 == 0:
                yield VisitEvent(**env, event_id=f"va{minute}", ts_ms=ts, action="arrive", visit_id=f"v{minute}",
                                 visitor_id=None, dwell_s=None)
                yield VisitEvent(**env, event_id=f"vl{minute}", ts_ms=ts, action="leave", visit_id=f"v{minute}",
                                 visitor_id=None, dwell_s=float(rng.randint(60, 1800)))
        elif minute % 4 == 0:
            ticket = f"A{minute}"
            step = {**env, "ticket_id": ticket, "service": "teller" if minute % 8 else "mortgage",
                    "customer_id": None, "wait_s": None, "service_s": None}
            yield QueueEvent(**step, event_id=f"qi{minute}", ts_ms=ts, action="issued", counter=None)
            if minute % 20 == 0:
                yield QueueEvent(**step, event_id=f"qa{minute}", ts_ms=ts + 1, action="abandoned", counter=None)
            else:
                counter = f"c{minute % 3}"
                yield QueueEvent(**step, event_id=f"qc{minute}", ts_ms=ts + 2, action="called", counter=counter)
                yield QueueEvent(**step, event_id=f"qs{minute}", ts_ms=ts + 3, action="served", counter=counter)
        if minute == 100:
            yield DoorEvent(**env, event_id="d99", ts_ms=ts, door_id="main", sensor_id="c1", count_in=1,
                            count_out=0, interval_s=60)  # a repeat of d99: a duplicate
        if minute == 200:
            yield DoorEvent(**env, event_id="late", ts_ms=T0, door_id="main", sensor_id="c1", count_in=1,
                            count_out=0, interval_s=60)  # its bucket closed long ago


def operator_records() -> dict[str, list[dict[str, Any]]]:
    """Every record kind, built by the worker's builders from two stores' operators, as the worker does."""
    bucket_record, live_record = builder("bucket_record"), builder("live_record")
    forecast_record, alert_record = builder("forecast_record"), builder("alert_record")
    rollup_record, live_rollup_record = builder("rollup_record"), builder("live_rollup_record")
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in BUILT_IN}
    rollups: dict[tuple[str, str, int | str], RollUp] = {}
    seq = 0

    def roll_up(record: dict[str, Any]) -> None:
        # As the Redis sink does: the store's row into its region's totals of the slot (the bucket, or
        # `live`), then the region's row into the chain's; `members` and `seq` as the sink's script keeps them.
        nonlocal seq
        live = record["type"] == "live"
        slot = "live" if live else record["bucket_start_ms"]
        row = compact_live(record) if live else compact(record)
        region = record["region"]
        for level, key, member in (("region", region, record["store_id"]), ("chain", "all", region)):
            rollup = rollups.setdefault((level, key, slot), RollUp(LIVE_SUMMED if live else SUMMED))
            seq += 1
            totals = {**rollup.update(member, row), "members": len(rollup.rows), "seq": seq}
            if live:
                out["rollup_live"].append(live_rollup_record(level, key, totals))
            else:
                out["rollup"].append(rollup_record(level, key, record, totals))
            row = rollup.row()

    for store_id, vertical, region, seed in (("retail-001", "retail", "north", 1), ("bank-002", "bank", "south", 2)):
        tz = "Europe/London"
        meta = {"region": region, "vertical": vertical}
        flow = StoreFlow(StoreParams(bucket_ms=BUCKET_MS, grace_ms=5 * MIN, tz=tz))
        models = StoreModels(store_id, BUCKET_MS, horizon=8, tz=tz, vertical=vertical, capacity=50.0,
                             queue_target_s=60.0)
        staffing = StaffingAdvice(answer_s=60.0).build(StoreContext(store_id, BUCKET_MS, tz), None)
        segments = CustomerSegments(min_events=20, min_days=0).build(StoreContext(store_id, BUCKET_MS, tz), None)
        quality = DataQuality().build(StoreContext(store_id, BUCKET_MS, tz), None)
        for i, event in enumerate(_events(store_id, vertical, region, seed)):
            if flow.update(event) == "counted":
                staffing.on_event(event, StoreContext(store_id, BUCKET_MS, tz))
                segments.on_event(event, StoreContext(store_id, BUCKET_MS, tz))
                quality.on_event(event, StoreContext(store_id, BUCKET_MS, tz))
            for start, kpis in flow.pop_closed():
                out["bucket"].append(bucket_record(store_id, meta, start, BUCKET_MS, kpis, "closed",
                                                   flow.watermark_ms, None, tz))
                roll_up(out["bucket"][-1])
                queue_wait_s = flow.queues.get()["total"]["est_wait_s"] if flow.queues is not None else None
                outcome = models.learn_bucket(start, kpis, occupancy=float(flow.occupancy.get()),
                                              queue_wait_s=queue_wait_s)
                out["forecast"] += [forecast_record(store_id, meta, tz, p) for p in outcome.forecasts]
                out["alert"] += [alert_record(store_id, meta, tz, a) for a in outcome.alerts]
                queue = flow.queues.get()["total"] if flow.queues is not None else {}
                context = StoreContext(store_id, BUCKET_MS, tz, region, vertical,
                                       counters_active=queue.get("counters_active"))
                closed = ClosedBucket(start, BUCKET_MS, kpis, tuple(ForecastOutput(p) for p in outcome.forecasts))
                out["staffing"] += [record_of(StoreMeta(store_id, region, vertical, tz), o, BUCKET_MS)
                                    for o in staffing.on_bucket_closed(closed, context)]
                out["segments"] += [record_of(StoreMeta(store_id, region, vertical, tz), o, BUCKET_MS)
                                    for o in segments.on_bucket_closed(closed, context)]
                out["quality"] += [record_of(StoreMeta(store_id, region, vertical, tz), o, BUCKET_MS)
                                   for o in quality.on_bucket_closed(closed, context)]
            if i % 50 == 0:
                for start, kpis, event_id in flow.pop_touched():
                    out["bucket"].append(bucket_record(store_id, meta, start, BUCKET_MS, kpis, "open",
                                                       flow.watermark_ms, event_id, tz))
                    roll_up(out["bucket"][-1])
                out["live"].append(live_record(store_id, meta, tz, flow.live()))
                roll_up(out["live"][-1])
    # Fifteen local days of hourly buckets (a DST change inside): an insights record a day, a week's on Sundays.
    context = StoreContext("retail-001", 3_600_000, "Europe/London", "north", "retail")
    insights = Insights().build(context, None)
    for h in range(15 * 24 + 1):
        start = 1_774_220_400_000 + h * 3_600_000  # from Monday 2026-03-23 00:00 GMT
        closed = ClosedBucket(start, 3_600_000, {"arrivals": (h * 7) % 23, "transactions": (h * 5) % 7})
        out["insights"] += [record_of(StoreMeta("retail-001", "north", "retail", "Europe/London"), o, 3_600_000)
                            for o in insights.on_bucket_closed(closed, context)]
    # The chain's peers from those insights, as `footfall peers` makes them: the last record as eight stores,
    # half with the hours turned by 10 (another shape), one with no total, one on an older day, one too sparse.
    last = out["insights"][-1]
    stores: dict[str, dict[str, Any]] = {}
    for i in range(8):
        record = orjson.loads(orjson.dumps(last))
        record["store_id"] = f"retail-{i:03d}"
        mean = [[None if v is None else v * (1 + 0.01 * i * ((h + d) % 3)) for h, v in enumerate(row)]
                for d, row in enumerate(record["heatmap"]["arrivals"]["mean"])]  # no two stores alike
        record["heatmap"]["arrivals"]["mean"] = [row[10:] + row[:10] for row in mean] if i % 2 else mean
        total = record["today"]["arrivals"]["total"]
        record["today"]["arrivals"]["total"] = None if i == 5 else (total or 0) * (i + 1)
        stores[record["store_id"]] = record
    stores["retail-006"]["day"] = "2026-04-01"
    sparse = orjson.loads(orjson.dumps(last))
    sparse["heatmap"]["arrivals"]["mean"] = [[None] * 24 for _ in range(6)] + [sparse["heatmap"]["arrivals"]["mean"][0]]
    stores["retail-sparse"] = {**sparse, "store_id": "retail-sparse"}
    chain = ChainPeers(k=None)
    for day_offset in (0, 1):
        on_day = {s: {**r, "day": r["day"] if day_offset == 0 else "2026-04-08"} for s, r in stores.items()}
        peers = chain.update(on_day, emitted_at_ms=T0 + day_offset)
        out["peers"] += peers.records.values()
        out["peer_groups"].append(peers.summary)
    out["peer_groups"].append(ChainPeers().update({}, emitted_at_ms=T0).summary)  # no stores: no groups
    out["rollup_heatmap"] += rollup_heatmaps(stores, T0)
    # Two door counters over London's 25-hour day (clocks go back): one stops at 06:00, the other reports every
    # other quarter hour from noon; heartbeats of a third, one of them down. Every quality, and a day's uptime.
    context = StoreContext("retail-001", BUCKET_MS, "Europe/London", "north", "retail")
    quality = DataQuality().build(context, None)
    env = {"store_id": "retail-001", "region": "north", "zone": None, "vertical": "retail"}
    day_start = 1_792_882_800_000  # 2026-10-25 00:00 BST
    for k in range(27 * 4):
        start = day_start + k * BUCKET_MS
        for minute in range(15):
            ts = start + minute * MIN
            if k < 24:
                quality.on_event(DoorEvent(**env, event_id=f"q1-{k}-{minute}", ts_ms=ts, door_id="main",
                                           sensor_id="c1", count_in=1, count_out=0, interval_s=60), context)
            if k < 48 or k % 2:
                quality.on_event(DoorEvent(**env, event_id=f"q2-{k}-{minute}", ts_ms=ts, door_id="side",
                                           sensor_id="c2", count_in=0, count_out=1, interval_s=60), context)
        if k % 10 == 0:
            quality.on_event(Heartbeat(**env, event_id=f"qh{k}", ts_ms=start + 7 * MIN, sensor_id="h1",
                                       status="down" if k % 20 == 0 else "ok", device_id=None), context)
        closed = ClosedBucket(start, BUCKET_MS, {"door_in": 15 * (k < 24), "door_out": 15})
        out["quality"] += [record_of(StoreMeta("retail-001", "north", "retail", "Europe/London"), o, BUCKET_MS)
                           for o in quality.on_bucket_closed(closed, context)]
    # An alert book's whole lifecycle, resolution included, whatever the models raised above.
    book = AlertBook("retail-001", cooldown_ms=0, resolve_after_ms=0)
    changes = book.raise_alert("arrivals_high", "warning", bucket_start_ms=T0, bucket_end_ms=T0 + BUCKET_MS,
                               now_ms=T0 + BUCKET_MS, observed=40, expected=10.5, expected_lo=4.0, expected_hi=17.0,
                               score=1.5, explanation="arrivals 40 in 09:00-09:15, expected 4-17")
    changes += book.clear("arrivals_high", now_ms=T0 + 2 * BUCKET_MS)
    out["alert"] += [alert_record("retail-001", {"region": None, "vertical": None}, "UTC", a) for a in changes]
    return out


@pytest.fixture(scope="module")
def built() -> dict[str, list[dict[str, Any]]]:
    return operator_records()


def test_the_operators_gave_every_kind_and_shape(built: dict[str, list[dict[str, Any]]]) -> None:
    # What the checks below rely on: each kind, open and closed buckets, queues, dwell, every alert state.
    assert all(built[t] for t in BUILT_IN), {t: len(v) for t, v in built.items()}
    assert {r["status"] for r in built["bucket"]} == {"open", "closed"}
    assert any(r["queue"] is not None for r in built["live"]) and any(r["queue"] is None for r in built["live"])
    assert any(r["dwell_mean_s"] is not None for r in built["bucket"])
    assert {r["state"] for r in built["alert"]} >= {"opened", "resolved"}
    assert any(r["kind"] == "over_capacity" for r in built["alert"])
    assert {r["level"] for r in built["rollup"]} == {"region", "chain"}
    assert all(len(r["points"]) == 8 for r in built["staffing"])  # one per forecast interval
    assert any(r["week"] is not None for r in built["insights"])  # a Sunday's, with its week
    assert {r["quality"] for r in built["quality"]} == {"ok", "partial", "missing"}
    assert any(r["uptime"] is not None and r["uptime"]["hours"] == 25.0 for r in built["quality"])
    assert {r["group_id"] for r in built["peers"]} == {0, 1}
    assert any(r["vs_peers_pct"] is None for r in built["peers"]) and any(r["vs_peers_pct"] for r in built["peers"])
    assert any(g["left_out"] for g in built["peer_groups"]) and any(not g["groups"] for g in built["peer_groups"])


@pytest.mark.parametrize("record_type", BUILT_IN)
def test_records_built_from_operator_outputs_validate(built: dict[str, list[dict[str, Any]]],
                                                      record_type: str) -> None:
    bad = {i: e for i, r in enumerate(built[record_type]) if (e := errors(record_type, r))}
    assert bad == {}, (len(built[record_type]), dict(list(bad.items())[:3]))


@st.composite
def store_events(draw: st.DrawFn) -> list[Event]:
    """Events of every kind in any order within a few hours: some repeated, some late, some odd queues."""
    env = {"store_id": "s", "region": draw(st.sampled_from([None, "north"])), "zone": None,
           "vertical": draw(st.sampled_from([None, *VERTICALS]))}
    events: list[Event] = []
    for n in range(draw(st.integers(1, 60))):
        ts = T0 + draw(st.integers(0, 4 * 60)) * MIN
        kind = draw(st.sampled_from(["door", "visit", "pos", "queue", "heartbeat", "repeat"]))
        if kind == "repeat" and events:
            events.append(draw(st.sampled_from(events)))
        elif kind == "door":
            events.append(DoorEvent(**env, event_id=f"e{n}", ts_ms=ts, door_id="d", sensor_id="c",
                                    count_in=draw(st.integers(0, 5)), count_out=draw(st.integers(0, 5)),
                                    interval_s=60))
        elif kind == "visit":
            leave = draw(st.booleans())
            events.append(VisitEvent(**env, event_id=f"e{n}", ts_ms=ts, action="leave" if leave else "arrive",
                                     visit_id=None, visitor_id=None,
                                     dwell_s=draw(st.none() | st.floats(0, 86_400)) if leave else None))
        elif kind == "pos":
            events.append(PosEvent(**env, event_id=f"e{n}", ts_ms=ts, transaction_id=f"t{n}",
                                   amount=draw(st.floats(0, 1e4)), items=draw(st.integers(0, 20)), currency=None,
                                   till_id=None, customer_id=None))
        elif kind == "queue":
            events.append(QueueEvent(**env, event_id=f"e{n}", ts_ms=ts,
                                     action=draw(st.sampled_from(["issued", "called", "served", "abandoned",
                                                                  "no_show"])),
                                     ticket_id=f"A{draw(st.integers(0, 5))}", service=draw(st.sampled_from("ab")),
                                     counter=draw(st.none() | st.sampled_from(["c1", "c2"])), customer_id=None,
                                     wait_s=draw(st.none() | st.floats(0, 3600)),
                                     service_s=draw(st.none() | st.floats(0, 3600))))
        else:
            events.append(Heartbeat(**env, event_id=f"e{n}", ts_ms=ts, sensor_id="c", status=None, device_id=None))
    return events


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(store_events())
def test_any_store_history_gives_valid_bucket_and_live_records(events: list[Event]) -> None:
    bucket_record, live_record = builder("bucket_record"), builder("live_record")
    flow = StoreFlow(StoreParams(bucket_ms=BUCKET_MS, grace_ms=5 * MIN, tz="America/New_York"))
    meta = {"region": events[0].region, "vertical": events[0].vertical}
    for event in events:
        flow.update(event)
        for start, kpis in flow.pop_closed():
            assert errors("bucket", bucket_record("s", meta, start, BUCKET_MS, kpis, "closed", flow.watermark_ms,
                                                  None, "America/New_York")) == []
        for start, kpis, event_id in flow.pop_touched():
            assert errors("bucket", bucket_record("s", meta, start, BUCKET_MS, kpis, "open", flow.watermark_ms,
                                                  event_id, "America/New_York")) == []
        assert errors("live", live_record("s", meta, "America/New_York", flow.live())) == []


# -- broken records fail ------------------------------------------------------------------------------


def _last(built: dict[str, list[dict[str, Any]]], record_type: str, **where: Any) -> dict[str, Any]:
    """The last record of a type matching `where` (a store's fullest state), as a deep copy in its wire form."""
    record = [r for r in built[record_type] if all(r.get(k) == v for k, v in where.items())][-1]
    return orjson.loads(orjson.dumps(record))


def _set(path: tuple[str | int, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(record: dict[str, Any]) -> None:
        target = record
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
    return change


def _drop(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda record: record.pop(name)


@pytest.mark.parametrize(
    ("record_type", "where", "change"),
    [
        ("bucket", {"status": "closed"}, _set(("surprise",), 1)),  # an unexpected top-level field
        ("bucket", {"status": "closed"}, _set(("arrivals",), "12")),  # a count as text
        ("bucket", {"status": "closed"}, _set(("arrivals",), 1.5)),  # a count with a fraction
        ("bucket", {"status": "closed"}, _set(("arrivals",), None)),  # a count missing as null
        ("bucket", {"status": "closed"}, _set(("sales",), "9.99")),  # money as text
        ("bucket", {"status": "closed"}, _set(("status",), "pending")),  # not a status
        ("bucket", {"status": "closed"}, _set(("vertical",), "grocery")),  # not a vertical
        ("bucket", {"status": "closed"}, _set(("type",), "live")),  # another kind's type
        ("bucket", {"status": "closed"}, _drop("watermark_ms")),  # a required field missing
        ("bucket", {"status": "closed"}, _set(("compare", "arrivals", "vs_ewm", "odd"), 1)),  # nested: extra
        ("bucket", {"status": "closed"}, _set(("compare", "arrivals", "value"), True)),  # nested: a bool
        ("live", {}, _set(("occupancy", "extra"), 0)),  # nested extra field
        ("live", {}, _set(("windows", "30m"), {"arrivals": 0})),  # a window the contract does not have
        ("live", {}, _set(("as_of_ms",), 1.5)),  # a time with a fraction of a millisecond
        ("live", {"store_id": "bank-002"}, _set(("queue", "services", "teller", "waiting_now"), -0.5)),  # not an int
        ("forecast", {}, _set(("points", 0, "h"), "1")),  # in an array element
        ("forecast", {}, _set(("cold",), 0)),  # 0 is no boolean
        ("alert", {}, _set(("severity",), "fatal")),  # not a severity
        ("alert", {}, _set(("alert_id",), "not-hex")),  # not 16 hex digits
        ("rollup", {}, _set(("level",), "country")),  # not a level
        ("rollup_live", {}, _set(("bucket_start_ms",), 0)),  # a field of the bucket roll-up, not of this one
        ("peers", {}, _set(("group_id",), "0")),  # an id as text
        ("peers", {}, _set(("peers",), "retail-001")),  # peers as one string, not a list
        ("peers", {}, _drop("vs_peers_pct")),  # a required field missing
        ("peer_groups", {"stores_read": 9}, _set(("groups", 0, "size"), 1.5)),  # nested: a count with a fraction
        ("peer_groups", {"stores_read": 9}, _set(("left_out", "x"), 3)),  # a reason as a number
        ("rollup_heatmap", {"level": "chain"}, _set(("heatmap", "arrivals", "stores", 0, 9), 1.5)),  # not a count
    ],
)
def test_a_broken_record_fails(built: dict[str, list[dict[str, Any]]], record_type: str, where: dict[str, Any],
                               change: Callable[[dict[str, Any]], None]) -> None:
    record = _last(built, record_type, **where)
    assert errors(record_type, record) == []
    change(record)
    assert errors(record_type, record) != []
