"""The store page's insights, segments and data quality: records checked and shaped (`dashboard_views`), and the
hub's push.

The records are built in the stages' documented shapes and checked against their committed JSON
Schema (`tests.dashrecords.validated`); broken ones are made from them by hand, one field at a time.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.schemas.keys import RedisKeys
from footfall.stream.dashboard_hub import Hub
from footfall.stream.dashboard_views import parse_heatmap, parse_insights, parse_quality, parse_segments
from footfall.stream.settings import Settings
from tests.dashrecords import BUCKET_MS, insights_record, quality_record, segment_set, segments_record

SUNDAY, MONDAY = "2026-11-29", "2026-11-30"
MADE_AT = 1_796_000_400_000 - 1_796_000_400_000 % BUCKET_MS
#: Values a field may hold instead (orjson reads a number too big for 64 bits as a float, so 1e30 stands for it).
JUNK: list[Any] = [None, "x", "<script>alert(1)</script>", -1, 1.5, 1e30, True, [], {}, [[None] * 24] * 7]


def sunday() -> dict[str, Any]:
    return insights_record("retail-001", SUNDAY, cells={(0, 10): 42.0, (6, 23): 0.5})


def segments() -> dict[str, Any]:
    return segments_record("retail-001", MADE_AT, [
        segment_set("till", [("single item, weekday morning", 30, 3), ("full basket, weekend afternoon", 10, 1)]),
        segment_set("visit", [("quick look, no purchase", 12, 2)])])


def partial() -> dict[str, Any]:
    """A quality record of a bucket that ends a day: one sensor silent, one half, one whole; with the day's uptime."""
    return quality_record("retail-001", MADE_AT, {"front": 1.0, "c-side": 0.0, "back": 0.5},
                          uptime={"front": 1.0, "c-side": 0.4167, "back": 0.9})


def paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into a record (dict keys and list indexes), the record's own first."""
    yield at
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):  # a row or two of each list is enough
            yield from paths(v, (*at, i))


def replaced(record: dict[str, Any], path: tuple[Any, ...], junk: Any) -> Any:
    if not path:
        return copy.deepcopy(junk)
    out = copy.deepcopy(record)
    node = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = copy.deepcopy(junk)
    return out


# -- insights ---------------------------------------------------------------------------------------------


def test_a_sunday_insights_record_passes_through():
    view = parse_insights(sunday())
    assert view["day"] == SUNDAY and view["series"] == ["arrivals", "transactions"]
    assert view["heatmap_from"] == "2026-11-02" and view["made_at_ms"] == sunday()["made_at_ms"]
    arrivals = view["heatmap"]["arrivals"]
    assert arrivals["mean"][0][10] == 42.0 and arrivals["mean"][6][23] == 0.5 and arrivals["mean"][0][3] is None
    assert arrivals["weeks"][0][10] == 4 and arrivals["weeks"][0][3] == 0
    assert view["today"]["arrivals"] == {"total": 412, "last_week": 400, "last_week_change": 12,
                                         "last_week_change_pct": 3.0, "last_year": 380, "last_year_change": 32,
                                         "last_year_change_pct": 8.42}
    assert view["today"]["transactions"]["last_year"] is None
    week = view["week"]
    assert (week["week_start"], week["week_end"]) == ("2026-11-23", SUNDAY)
    assert (week["series"]["arrivals"]["mean"], week["series"]["arrivals"]["last_mean"]) == (212.4, 190.1)
    assert (week["series"]["arrivals"]["p"], week["series"]["arrivals"]["significant"]) == (0.031, True)
    assert week["series"]["transactions"]["significant"] is False
    assert week["correlation"] == {"x": "arrivals", "y": "transactions", "r": 0.87, "days": 28}
    # What the page gets is plain JSON.
    assert orjson.loads(orjson.dumps(view)) == view


def test_a_weekdays_insights_record_has_no_week():
    view = parse_insights(insights_record("retail-001", MONDAY))
    assert view["week"] is None and view["today"]["arrivals"]["total"] == 412


@pytest.mark.parametrize("obj", [None, "insights", 3, [], {}, {"day": SUNDAY}, {"type": "insights"}])
def test_what_is_not_an_insights_record_is_refused(obj: Any):
    assert parse_insights(obj) is None


def test_broken_parts_of_an_insights_record_are_dropped_or_blank():
    good = sunday()
    assert parse_insights({**good, "day": "29/11/2026"}) is None
    assert parse_insights({**good, "day": None}) is None
    # A series name that is not a bare identifier is not shown (nor used as a key).
    hostile = {**good, "series": ["arrivals", "<img src=x onerror=alert(1)>", "__proto__ x"]}
    assert parse_insights(hostile)["series"] == ["arrivals"]
    # Without a list of series, the heatmap's and totals' keys are.
    assert parse_insights({**good, "series": "arrivals"})["series"] == ["arrivals", "transactions"]
    # A heatmap not 7 × 24 is not drawn; the day's totals still show.
    short = replaced(good, ("heatmap", "arrivals", "mean"), [[1.0] * 24] * 6)
    view = parse_insights(short)
    assert "arrivals" not in view["heatmap"] and view["series"] == ["arrivals", "transactions"]
    ragged = replaced(good, ("heatmap", "arrivals", "mean", 3), [1.0] * 23)
    assert "arrivals" not in parse_insights(ragged)["heatmap"]
    # Cells that are not numbers read blank; bad `weeks` do not cost the means.
    cells = replaced(replaced(good, ("heatmap", "arrivals", "mean", 0, 10), "42"), ("heatmap", "arrivals", "weeks"), 4)
    arrivals = parse_insights(cells)["heatmap"]["arrivals"]
    assert arrivals["mean"][0][10] is None and arrivals["mean"][0][9] == 19.0
    assert arrivals["weeks"] == [[None] * 24] * 7
    # Numbers out of their range or of the wrong type read None.
    odd = replaced(good, ("today", "arrivals", "total"), "412")
    odd = replaced(odd, ("week", "series", "arrivals", "p"), 3.0)
    odd = replaced(odd, ("week", "series", "arrivals", "significant"), "yes")
    odd = replaced(odd, ("week", "correlation", "r"), 5)
    odd = replaced(odd, ("week", "correlation", "y"), "<b>")
    view = parse_insights(odd)
    assert view["today"]["arrivals"]["total"] is None and view["today"]["arrivals"]["last_week"] == 400
    assert view["week"]["series"]["arrivals"]["p"] is None and view["week"]["series"]["arrivals"]["significant"] is None
    assert view["week"]["correlation"]["r"] is None and view["week"]["correlation"]["y"] is None
    # A week whose bounds are not days is not shown.
    assert parse_insights(replaced(good, ("week", "week_end"), "Sunday"))["week"] is None
    # Nothing left to show: refused.
    assert parse_insights({**good, "heatmap": {}, "today": []}) is None


def test_a_heatmap_must_be_seven_rows_of_twenty_four():
    row = [1.0] * 24
    assert parse_heatmap({"mean": [row] * 7})["mean"][6][23] == 1.0
    for mean in ([row] * 8, [row[:-1]] * 7, "grid", [row] * 6 + ["row"], None):
        assert parse_heatmap({"mean": mean, "weeks": [[4] * 24] * 7}) is None
    assert parse_heatmap({"mean": [[float("inf"), float("nan"), True, *row[3:]]] * 7})["mean"][0][:4] == [
        None, None, None, 1.0]


# -- segments ---------------------------------------------------------------------------------------------


def test_a_segments_record_passes_through():
    view = parse_segments(segments())
    assert (view["day"], view["made_at_ms"], view["bucket_ms"]) == (segments()["day"], MADE_AT, BUCKET_MS)
    till, visit = view["kinds"]
    assert (till["kind"], till["k"], till["day_events"], till["bucket_events"]) == ("till", 2, 40, 4)
    assert [(s["segment_id"], s["description"], s["day_share"], s["bucket_share"], s["day_count"])
            for s in till["segments"]] == [(0, "single item, weekday morning", 0.75, 0.75, 30),
                                           (1, "full basket, weekend afternoon", 0.25, 0.25, 10)]
    assert visit["kind"] == "visit" and visit["segments"][0]["description"] == "quick look, no purchase"
    assert orjson.loads(orjson.dumps(view)) == view


@pytest.mark.parametrize("obj", [None, "segments", 3, [], {}, {"kinds": "till"}, {"kinds": []},
                                 {"kinds": [{"kind": "till", "segments": []}]}])
def test_what_is_not_a_segments_record_is_refused(obj: Any):
    assert parse_segments(obj) is None


def test_broken_parts_of_a_segments_record_are_dropped():
    good = segments()
    # Till then visit whatever the record's order; an unknown kind and a kind given twice are not shown twice.
    shuffled = {**good, "kinds": [good["kinds"][1], {**good["kinds"][0], "kind": "<b>"}, good["kinds"][0],
                                  {**good["kinds"][0], "k": 99}]}
    view = parse_segments(shuffled)
    assert [k["kind"] for k in view["kinds"]] == ["till", "visit"] and view["kinds"][0]["k"] == 2
    # A segment without a description or a whole id is dropped; a share outside [0, 1] reads None.
    broken = replaced(good, ("kinds", 0, "segments", 0, "description"), None)
    broken = replaced(broken, ("kinds", 0, "segments", 1, "day_share"), 1.5)
    broken = replaced(broken, ("kinds", 1, "segments", 0, "segment_id"), "0")
    view = parse_segments(broken)
    assert [k["kind"] for k in view["kinds"]] == ["till"]
    [segment] = view["kinds"][0]["segments"]
    assert segment["segment_id"] == 1 and segment["day_share"] is None and segment["bucket_share"] == 0.25
    # A description is text, cut short; it is never parsed as markup here or on the page (textContent).
    long = replaced(good, ("kinds", 0, "segments", 0, "description"), "<i>" + "x" * 500)
    assert parse_segments(long)["kinds"][0]["segments"][0]["description"] == "<i>" + "x" * 197
    assert parse_segments({**good, "day": "today"})["day"] is None


# -- data quality -----------------------------------------------------------------------------------------


def test_a_partial_quality_record_passes_through():
    view = parse_quality(partial())
    assert (view["quality"], view["bucket_start_ms"], view["bucket_ms"]) == ("partial", MADE_AT, BUCKET_MS)
    assert view["coverage"] == 0.5 and view["sensors_known"] == 3 and view["ok_coverage"] == 0.9
    assert view["silent_sensors"] == ["c-side"]
    assert [(s["sensor_id"], s["coverage"], s["reported"]) for s in view["sensors"]] == [
        ("back", 0.5, True), ("c-side", 0.0, False), ("front", 1.0, True)]
    assert (view["door_in"], view["door_out"], view["imbalance"], view["imbalance_ratio"]) == (40, 37, 3, 0.075)
    assert view["uptime"]["hours"] == 24.0 and view["uptime"]["day"] == partial()["uptime"]["day"]
    assert view["uptime"]["sensors"] == [{"sensor_id": "back", "uptime": 0.9},
                                         {"sensor_id": "c-side", "uptime": 0.4167},
                                         {"sensor_id": "front", "uptime": 1.0}]
    assert orjson.loads(orjson.dumps(view)) == view


def test_each_grade_of_quality_passes_and_most_buckets_carry_no_uptime():
    cases = {"ok": {"front": 1.0, "back": 0.95}, "missing": {"front": 0.0, "back": 0.1}, "no_sensors": {}}
    for grade, coverage in cases.items():
        view = parse_quality(quality_record("retail-001", MADE_AT, coverage))
        assert view["quality"] == grade and view["uptime"] is None, grade
    view = parse_quality(quality_record("retail-001", MADE_AT, {}))
    assert view["coverage"] is None and view["sensors"] == [] and view["silent_sensors"] == []
    negative = parse_quality(quality_record("retail-001", MADE_AT, {"front": 1.0}, door_in=3, door_out=10))
    assert (negative["imbalance"], negative["imbalance_ratio"]) == (-7, -7 / 3)


@pytest.mark.parametrize("obj", [None, "quality", 3, [], {}, {"quality": "ok"}, {"bucket_start_ms": MADE_AT},
                                 {"quality": "fine", "bucket_start_ms": MADE_AT},
                                 {"quality": "OK", "bucket_start_ms": MADE_AT},
                                 {"quality": "ok", "bucket_start_ms": -900_000},
                                 {"quality": "ok", "bucket_start_ms": 1.5},
                                 {"quality": "ok", "bucket_start_ms": True},
                                 {"quality": ["ok"], "bucket_start_ms": MADE_AT}])
def test_what_is_not_a_quality_record_is_refused(obj: Any):
    assert parse_quality(obj) is None


def test_broken_parts_of_a_quality_record_are_dropped_or_blank():
    good = partial()
    # The grade and the bucket are the record: without either it is refused.
    assert parse_quality({**good, "quality": None}) is None
    assert parse_quality({**good, "bucket_start_ms": str(MADE_AT)}) is None
    # Shares outside [0, 1] and counts that are not whole read None; a wrong `reported` too.
    odd = replaced(good, ("coverage",), 1.5)
    odd = replaced(odd, ("sensors", 0, "coverage"), -0.1)
    odd = replaced(odd, ("sensors", 1, "reported"), "no")
    odd = replaced(odd, ("door_in",), 4.5)
    odd = replaced(odd, ("imbalance",), "3")
    odd = replaced(odd, ("uptime", "sensors", "front"), 2)
    view = parse_quality(odd)
    assert view["coverage"] is None and view["door_in"] is None and view["imbalance"] is None
    assert view["sensors"][0]["coverage"] is None and view["sensors"][1]["reported"] is None
    assert {s["sensor_id"]: s["uptime"] for s in view["uptime"]["sensors"]}["front"] is None
    # A sensor without an id is dropped, one given twice is shown once; silent ids that are not text are left out.
    dup = replaced(good, ("sensors", 0, "sensor_id"), "")
    dup = {**dup, "sensors": [*dup["sensors"], dup["sensors"][2]],
           "silent_sensors": ["c-side", 7, None, "c-side", "   ", "<img src=x onerror=alert(1)>"]}
    view = parse_quality(dup)
    assert [s["sensor_id"] for s in view["sensors"]] == ["c-side", "front"]
    assert view["silent_sensors"] == ["c-side", "<img src=x onerror=alert(1)>"]  # text: the page sets it as text
    # A sensor id is cut short; at most 64 sensors are kept.
    long = parse_quality({**good, "silent_sensors": ["s" * 500], "sensors": [
        {"sensor_id": f"s{i:03}", "coverage": 0.0, "reported": False, "last_seen_ms": 0, "graded": True}
        for i in range(200)]})
    assert long["silent_sensors"] == ["s" * 64] and len(long["sensors"]) == 64
    # Not lists: nothing named (the badge still shows).
    view = parse_quality({**good, "sensors": {"front": 1.0}, "silent_sensors": "c-side"})
    assert view["sensors"] == [] and view["silent_sensors"] == [] and view["quality"] == "partial"
    # An uptime without a day or without sensors is not shown.
    assert parse_quality(replaced(good, ("uptime", "day"), "yesterday"))["uptime"] is None
    assert parse_quality(replaced(good, ("uptime", "sensors"), {}))["uptime"] is None
    assert parse_quality(replaced(good, ("uptime", "sensors"), [1.0]))["uptime"] is None
    # Thresholds that are not shares read None (the page then grades by 0.9).
    assert parse_quality(replaced(good, ("thresholds", "ok_coverage"), 90))["ok_coverage"] is None


def test_junk_in_a_quality_records_other_fields_keeps_its_grade():
    record = partial()
    for path in paths(record):
        if path in ((), ("quality",), ("bucket_start_ms",)):
            continue
        for junk in JUNK:
            view = parse_quality(replaced(record, path, junk))
            assert view is not None and view["quality"] == "partial", (path, junk)


# -- nothing escapes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("parse", "make", "least"), [(parse_insights, sunday, 500), (parse_segments, segments, 500),
                                                       (parse_quality, partial, 400)],
                         ids=["insights", "segments", "quality"])
def test_any_field_replaced_by_junk_is_tolerated(parse: Any, make: Any, least: int):
    record = make()
    checked = 0
    for path in paths(record):
        for junk in JUNK:
            view = parse(replaced(record, path, junk))
            assert view is None or orjson.loads(orjson.dumps(view)) == view, (path, junk)
            checked += 1
    assert checked > least


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(_JSON, _JSON)
def test_parsers_never_raise(a: Any, b: Any):
    for obj in (a, {"day": SUNDAY, "series": ["arrivals"], "heatmap": {"arrivals": a}, "today": {"arrivals": b},
                    "week": {"week_start": SUNDAY, "week_end": SUNDAY, "series": {"arrivals": a}, "correlation": b}}):
        parse_insights(obj)
    for obj in (a, {"kinds": [{"kind": "till", "segments": [a, b]}, b]}):
        parse_segments(obj)
    for obj in (a, {"quality": "partial", "bucket_start_ms": MADE_AT, "coverage": a,
                    "sensors": [a, b, {"sensor_id": a}], "silent_sensors": [a, b],
                    "uptime": {"day": SUNDAY, "sensors": a, "hours": b}, "thresholds": a},
                {"quality": "ok", "bucket_start_ms": a, "imbalance": b}):
        view = parse_quality(obj)
        assert view is None or orjson.loads(orjson.dumps(view)) == view


# -- the hub's push -----------------------------------------------------------------------------------------


def queued(listener: Any) -> list[tuple[str, Any]]:
    """The events queued for a listener (by the hub's flushes so far)."""
    events = []
    while not listener.queue.empty():
        chunk = listener.queue.get_nowait()
        for block in chunk.decode().strip().split("\n\n"):
            head, data = block.split("\n")
            events.append((head.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))))
    return events


def test_the_hub_pushes_a_stores_newest_insights_and_segments_to_its_page_only():
    settings = Settings(topic_prefix="hubtest")
    keys = RedisKeys("hubtest")
    hub = Hub(settings, client=None)  # type: ignore[arg-type]  # handle and flush use no Redis
    mine, other = hub.add("retail-001"), hub.add("retail-002")
    older = insights_record("retail-001", "2026-11-28")
    newer = sunday()
    # Newer first: a late older record does not replace it within a push.
    hub.handle(keys.record_channel("insights", "retail-001").encode(), orjson.dumps(newer))
    hub.handle(keys.record_channel("insights", "retail-001").encode(), orjson.dumps(older))
    hub.handle(keys.record_channel("segments", "retail-001").encode(), orjson.dumps(segments()))
    # Junk and a channel naming no store are ignored.
    hub.handle(keys.record_channel("insights", "retail-001").encode(), b"{\"day\": 1}")
    hub.handle(keys.record_channel("segments", "<b>").encode(), orjson.dumps(segments()))
    hub.handle(keys.record_channel("insights", "retail-001").encode(), b"not json")
    hub.flush()
    events = queued(mine)
    assert [name for name, _ in events] == ["insights", "segments"]
    assert events[0][1] == parse_insights(newer) and events[1][1] == parse_segments(segments())
    assert queued(other) == []
    # The subscription covers both kinds' channels of every store.
    assert keys.record_channel("insights", "*") in hub._patterns
    assert keys.record_channel("segments", "*") in hub._patterns


def test_the_hub_pushes_a_stores_latest_quality_to_its_page_only():
    settings = Settings(topic_prefix="hubtest")
    keys = RedisKeys("hubtest")
    hub = Hub(settings, client=None)  # type: ignore[arg-type]  # handle and flush use no Redis
    mine, other = hub.add("retail-001"), hub.add("retail-002")
    later = quality_record("retail-001", MADE_AT + BUCKET_MS, {"front": 1.0, "c-side": 1.0})
    channel = keys.record_channel("quality", "retail-001").encode()
    # The later bucket first: the earlier one arriving late does not replace it within a push.
    hub.handle(channel, orjson.dumps(later))
    hub.handle(channel, orjson.dumps(partial()))
    # Junk and a channel naming no store are ignored.
    hub.handle(channel, b'{"quality": "great", "bucket_start_ms": 1}')
    hub.handle(channel, b"not json")
    hub.handle(keys.record_channel("quality", "<b>").encode(), orjson.dumps(partial()))
    hub.flush()
    assert queued(mine) == [("quality", parse_quality(later))]
    assert queued(other) == []
    # Within the next push, a later bucket replaces the one pending.
    hub.handle(channel, orjson.dumps(partial()))
    hub.handle(channel, orjson.dumps(later))
    hub.flush()
    assert [d["quality"] for _, d in queued(mine)] == ["ok"]
    assert keys.record_channel("quality", "*") in hub._patterns
