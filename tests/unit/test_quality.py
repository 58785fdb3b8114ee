"""The data-quality stage (`operators/pipeline/quality_stage.py`, `operators/quality/`).

Hand-worked cases (coverage, quality, silent sensors, heartbeats, a down heartbeat, DST days'
uptime, imbalance, forgetting and bounding sensors) and a hypothesis test of coverage against a
brute-force set of covered seconds built here from the events, never from the stage's own output.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from footfall.operators.pipeline.quality_stage import DataQuality, QualityOutput, StoreQuality
from footfall.operators.pipeline.stage import ClosedBucket, StoreContext
from footfall.operators.pipeline.store import StoreParams
from footfall.operators.pipeline.store_pipeline import STAGES, StorePipeline
from footfall.operators.quality.intervals import CoveredIntervals
from footfall.schemas.events import DoorEvent, Event, Heartbeat, PosEvent

S = 1000
MIN = 60 * S
HOUR = 60 * MIN
BUCKET = 15 * MIN
T0 = 1_790_150_400_000  # 2026-09-23T08:00:00Z, a bucket boundary
ENV = {"store_id": "s1", "region": "north", "zone": None, "vertical": "retail"}
_n = 0


def door(sensor: str, ts_ms: int, interval_s: int = 60, n_in: int = 1, n_out: int = 0) -> DoorEvent:
    global _n
    _n += 1
    return DoorEvent(**ENV, event_id=f"d{_n}", ts_ms=ts_ms, door_id=f"door-{sensor}", sensor_id=sensor,
                     count_in=n_in, count_out=n_out, interval_s=interval_s)


def beat(sensor: str, ts_ms: int, status: str | None = "ok") -> Heartbeat:
    global _n
    _n += 1
    return Heartbeat(**ENV, event_id=f"h{_n}", ts_ms=ts_ms, sensor_id=sensor, status=status, device_id=None)


def ctx(bucket_ms: int = BUCKET, tz: str = "UTC") -> StoreContext:
    return StoreContext("s1", bucket_ms, tz, "north", "retail")


def feed(stage: StoreQuality, events: list[Event], context: StoreContext) -> None:
    for event in events:
        stage.on_event(event, context)


def close(stage: StoreQuality, start: int, context: StoreContext, kpis: dict[str, Any] | None = None
          ) -> QualityOutput:
    [out] = stage.on_bucket_closed(ClosedBucket(start, context.bucket_ms, kpis or {}), context)
    return out


def by_sensor(out: QualityOutput) -> dict[str, dict[str, Any]]:
    return {s["sensor_id"]: s for s in out.sensors}


# -- hand-worked cases -----------------------------------------------------------------------------


def test_one_sensor_every_minute_covers_the_bucket() -> None:
    c = ctx()
    stage = DataQuality().build(c, None)
    feed(stage, [door("c1", T0 + m * MIN) for m in range(15)], c)  # [T0 + m min, +1 min) for m = 0..14
    out = close(stage, T0, c, {"door_in": 15, "door_out": 0})
    assert (out.quality, out.coverage, out.sensors_known, out.silent_sensors) == ("ok", 1.0, 1, [])
    assert out.sensors == [{"sensor_id": "c1", "coverage": 1.0, "reported": True, "last_seen_ms": T0 + 14 * MIN,
                            "graded": True}]
    assert (out.door_in, out.door_out, out.imbalance, out.imbalance_ratio) == (15, 0, 15, 1.0)
    assert out.uptime is None


def test_a_sensor_stopping_halfway_is_partial() -> None:
    c = ctx(bucket_ms=10 * MIN)
    stage = DataQuality().build(c, None)
    feed(stage, [door("c1", T0 + m * MIN) for m in range(5)], c)  # minutes 0-4 of 10
    out = close(stage, T0, c)
    assert (out.quality, out.coverage, out.silent_sensors) == ("partial", 0.5, [])
    assert by_sensor(out)["c1"]["reported"] is True


def test_a_whole_bucket_without_the_sensor_is_missing_and_names_it() -> None:
    c = ctx()
    stage = DataQuality().build(c, None)
    feed(stage, [door("c1", T0 + m * MIN) for m in range(15)], c)
    assert close(stage, T0, c).quality == "ok"
    out = close(stage, T0 + BUCKET, c)
    assert (out.quality, out.coverage, out.silent_sensors) == ("missing", 0.0, ["c1"])
    assert by_sensor(out)["c1"] == {"sensor_id": "c1", "coverage": 0.0, "reported": False,
                                    "last_seen_ms": T0 + 14 * MIN, "graded": True}


def test_two_sensors_one_silent_is_partial_and_names_the_silent_one() -> None:
    c = ctx()
    stage = DataQuality().build(c, None)
    feed(stage, [door(s, T0 + m * MIN) for m in range(15) for s in ("front", "back")], c)
    assert close(stage, T0, c).quality == "ok"
    feed(stage, [door("front", T0 + BUCKET + m * MIN) for m in range(15)], c)
    out = close(stage, T0 + BUCKET, c)
    assert (out.quality, out.coverage, out.sensors_known, out.silent_sensors) == ("partial", 0.5, 2, ["back"])
    assert {s: (v["coverage"], v["reported"]) for s, v in by_sensor(out).items()} == {
        "back": (0.0, False), "front": (1.0, True)}


def test_heartbeats_alone_cover_the_minute_before_each() -> None:
    c = ctx()
    stage = DataQuality(heartbeat_every_s=60).build(c, None)
    # Every minute from T0 + 1 min to T0 + 15 min: [T0, T0 + 15 min) covered, the last one is the next bucket's.
    feed(stage, [beat("c1", T0 + m * MIN) for m in range(1, 16)], c)
    out = close(stage, T0, c)
    assert (out.quality, out.coverage) == ("ok", 1.0)
    # Then one every 2 minutes, at 17, 19, ..., 29 min: [16, 17), [18, 19), ..., [28, 29) covered, 7 of 15 minutes.
    feed(stage, [beat("c1", T0 + BUCKET + m * MIN) for m in range(2, 16, 2)], c)
    out = close(stage, T0 + BUCKET, c)
    assert (out.quality, out.coverage, out.sensors[0]["coverage"]) == ("partial", 7 / 15, round(7 / 15, 4))


def test_heartbeat_every_s_is_configurable() -> None:
    c = ctx()
    stage = DataQuality(heartbeat_every_s=120).build(c, None)
    feed(stage, [beat("c1", T0 + m * MIN) for m in range(2, 16, 2)] + [beat("c1", T0 + 16 * MIN)], c)
    assert close(stage, T0, c).coverage == 1.0


def test_a_down_heartbeat_covers_nothing_but_the_sensor_is_known() -> None:
    c = ctx()
    stage = DataQuality(heartbeat_every_s=60).build(c, None)
    statuses = ["error", "offline", None, "degraded"] * 4
    feed(stage, [beat("c1", T0 + m * MIN, status="down") for m in range(1, 16)], c)
    feed(stage, [beat("c2", T0 + m * MIN, status=s) for m, s in zip(range(1, 16), statuses, strict=False)], c)
    out = close(stage, T0, c)
    # c2: no status and `degraded` count as up (m = 3, 4, 7, 8, 11, 12, 15: the minute before each).
    up = 7
    assert by_sensor(out)["c1"] == {"sensor_id": "c1", "coverage": 0.0, "reported": True,
                                    "last_seen_ms": T0 + 15 * MIN, "graded": True}
    assert by_sensor(out)["c2"]["coverage"] == round(up / 15, 4)
    assert out.silent_sensors == ["c1"] and out.quality == "partial"


def test_interval_reports_start_at_ts_unless_told_they_end_there() -> None:
    c = ctx()
    # One report of 5 minutes at T0 + 12 min: [12, 17) min by the event contract, [7, 12) read as ending there.
    for anchor, covered_min in (("start", 3), ("end", 5)):
        stage = DataQuality(interval_anchor=anchor).build(c, None)
        feed(stage, [door("c1", T0 + 12 * MIN, interval_s=300)], c)
        assert close(stage, T0, c).coverage == covered_min / 15
        if anchor == "start":  # the rest is the next bucket's
            assert close(stage, T0 + BUCKET, c).coverage == 2 / 15


def test_a_per_person_reading_makes_its_sensor_known_but_covers_no_time() -> None:
    c = ctx()
    stage = DataQuality().build(c, None)
    feed(stage, [door("c1", T0 + 5 * MIN, interval_s=0)], c)
    out = close(stage, T0, c)
    # Known, but not graded: per-person readings say nothing of when the counter was listening.
    assert (out.quality, out.sensors_known, by_sensor(out)["c1"]["reported"]) == ("no_sensors", 1, True)
    assert (by_sensor(out)["c1"]["graded"], out.coverage, out.silent_sensors) == (False, None, [])
    feed(stage, [beat("c1", T0 + 20 * MIN, "ok")], c)  # a heartbeat: graded from now on
    out = close(stage, T0 + BUCKET, c)
    assert (out.quality, by_sensor(out)["c1"]["graded"], out.coverage) == ("partial", True, 5 / 15)


def test_imbalance_from_the_bucket_counts() -> None:
    c = ctx()
    stage = DataQuality().build(c, None)
    feed(stage, [door("c1", T0)], c)
    out = close(stage, T0, c, {"door_in": 40, "door_out": 50})
    assert (out.imbalance, out.imbalance_ratio) == (-10, -0.25)
    out = close(stage, T0 + BUCKET, c, {"door_in": 0, "door_out": 3})
    assert (out.imbalance, out.imbalance_ratio) == (-3, -3.0)


def test_a_store_without_sensors_gets_no_record_and_forgotten_sensors_give_no_sensors() -> None:
    c = ctx()
    stage = DataQuality().build(c, None)
    sale = PosEvent(**ENV, event_id="p1", ts_ms=T0, transaction_id="t", amount=1.0, items=1, currency=None,
                    till_id=None, customer_id=None)
    stage.on_event(sale, c)
    assert stage.on_bucket_closed(ClosedBucket(T0, BUCKET, {}), c) == []
    feed(stage, [door("c1", T0 + BUCKET)], c)
    assert close(stage, T0 + BUCKET, c).sensors_known == 1
    # Heard from last at T0 + 15 min: still known at a bucket ending 7 days later, not at one ending after.
    week = 7 * 24 * HOUR
    assert close(stage, T0 + BUCKET + week - BUCKET, c).sensors_known == 1
    out = close(stage, T0 + BUCKET + week, c)
    assert (out.quality, out.coverage, out.sensors_known, out.sensors) == ("no_sensors", None, 0, [])


def test_sensors_are_bounded_and_the_oldest_heard_go() -> None:
    c = ctx()
    stage = DataQuality(max_sensors=4).build(c, None)
    feed(stage, [door(f"c{i}", T0 + i * S) for i in range(7)], c)
    out = close(stage, T0, c)
    assert ([s["sensor_id"] for s in out.sensors], out.sensors_dropped) == (["c3", "c4", "c5", "c6"], 3)


def test_known_sensors_start_with_the_time_they_speak_for() -> None:
    c = ctx()
    stage = DataQuality().build(c, None)
    feed(stage, [door("c1", T0 + m * MIN) for m in range(30)], c)
    feed(stage, [door("c2", T0 + BUCKET + m * MIN) for m in range(15)], c)  # a counter installed later
    assert close(stage, T0, c).sensors_known == 1
    assert close(stage, T0 + BUCKET, c).quality == "ok"


@pytest.mark.parametrize(("day", "hours"), [(dt.date(2026, 3, 29), 23), (dt.date(2026, 10, 25), 25),
                                            (dt.date(2026, 10, 26), 24)])
def test_uptime_over_a_local_day_of_23_24_or_25_hours(day: dt.date, hours: int) -> None:
    tz = "Europe/London"
    c = ctx(tz=tz)
    stage = DataQuality().build(c, None)
    # Local midnight, worked out by hand: BST (UTC+1) from 29 March to 25 October 01:00 UTC.
    start = int(dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC).timestamp() * 1000)
    start -= HOUR if dt.date(2026, 3, 29) < day <= dt.date(2026, 10, 25) else 0
    outs = []
    for k in range(hours * 4 + 1):  # the day's buckets and the next day's first
        b = start + k * BUCKET
        # c1 reports all day; c2 the day's first 10 hours only, in 5-minute intervals.
        events = [door("c1", b + m * MIN) for m in range(15)]
        if k < 40:
            events += [door("c2", b + m * MIN, interval_s=300) for m in range(0, 15, 5)]
        feed(stage, events, c)
        outs.append(close(stage, b, c))
    with_uptime = [k for k, out in enumerate(outs) if out.uptime is not None]
    assert with_uptime == [hours * 4 - 1]  # the day's last bucket only
    uptime = outs[-2].uptime
    assert uptime == {"day": day.isoformat(), "day_start_ms": start, "day_end_ms": start + hours * HOUR,
                      "hours": float(hours), "sensors": {"c1": 1.0, "c2": round(10 / hours, 4)}}


def test_uptime_in_a_zone_whose_midnight_splits_a_bucket() -> None:
    tz = "Asia/Kolkata"  # UTC+05:30: local midnight is 18:30 UTC, inside an hourly bucket
    c = ctx(bucket_ms=HOUR, tz=tz)
    stage = DataQuality().build(c, None)
    midnight = int(dt.datetime(2026, 1, 1, 18, 30, tzinfo=dt.UTC).timestamp() * 1000)  # 2026-01-02 00:00 IST
    first = midnight - 30 * MIN - 24 * HOUR  # the bucket holding 2026-01-01's midnight
    reports = []
    for k in range(26):
        b = first + k * HOUR
        # The sensor reports every minute except from 12:00 to 18:00 UTC on the 1st (17:30-23:30 IST).
        feed(stage, [door("c1", b + m * MIN) for m in range(60)
                     if not (midnight - 6 * HOUR - 30 * MIN <= b + m * MIN < midnight - 30 * MIN)], c)
        out = close(stage, b, c)
        if out.uptime is not None:
            reports.append((k, out.uptime["day"], out.uptime["sensors"]["c1"]))
    # 2026-01-01 IST: from its midnight, 30 minutes into bucket 0 (the sensor was not known before that
    # bucket's start, but reported from it), to 2026-01-02 00:00 IST, in bucket 24: 18 hours of 24 covered.
    assert reports == [(24, "2026-01-01", 0.75)]


# -- state ------------------------------------------------------------------------------------------


def test_state_round_trip_through_json_continues_identically() -> None:
    tz = "Europe/London"
    c = ctx(tz=tz)
    config = DataQuality(max_sensors=3)
    stage = config.build(c, None)
    t0 = T0 - 9 * HOUR  # 2026-09-23 00:00 BST: the day is followed whole, and ends after the restore
    events = {k: [door(f"c{(k + m) % 4}", t0 + k * BUCKET + m * MIN, interval_s=60 + 30 * (m % 3))
                  for m in range(0, 15, 1 + k % 3)] + [beat("h", t0 + k * BUCKET + 7 * MIN, "down" if k % 2 else "ok")]
              for k in range(100)}
    first = []
    for k in range(50):
        feed(stage, events[k], c)
        first.append(stage.on_bucket_closed(ClosedBucket(t0 + k * BUCKET, BUCKET, {"door_in": k}), c))
    feed(stage, events[50], c)  # an open bucket's coverage goes across too
    restored = config.build(c, json.loads(json.dumps(stage.to_state(), allow_nan=False)))
    assert restored.to_state() == stage.to_state()
    twin_outs, restored_outs = [], []
    for k in range(50, 100):
        if k > 50:
            feed(stage, events[k], c)
            feed(restored, events[k], c)
        bucket = ClosedBucket(t0 + k * BUCKET, BUCKET, {"door_in": k})
        twin_outs.append(stage.on_bucket_closed(bucket, c))
        restored_outs.append(restored.on_bucket_closed(bucket, c))
    assert restored_outs == twin_outs
    assert any(o and o[0].uptime for o in twin_outs)  # a day ended after the restore
    assert {o[0].quality for o in first + twin_outs} >= {"partial", "missing"}
    assert restored.to_state() == stage.to_state()


def test_the_stage_runs_first_in_the_pipeline() -> None:
    assert [cls.name for cls in STAGES] == ["quality", "forecast", "staffing", "segments", "insights"]
    pipeline = StorePipeline("s1", StoreParams(bucket_ms=BUCKET, grace_ms=0), [DataQuality()])
    for m in range(16):
        pipeline.update(door("c1", T0 + m * MIN))
    kinds = [(o.kind, getattr(o, "quality", None)) for o in pipeline.pop_outputs()]
    assert kinds == [("bucket", "ok"), ("quality", "ok")]  # the grade is on the bucket too
    restored = StorePipeline.from_state("s1", pipeline.params, [DataQuality()], pipeline.to_state(),
                                        pipeline.stage_states())
    assert restored.stage_states() == pipeline.stage_states()


# -- against brute force ----------------------------------------------------------------------------

N_BUCKETS = 4
B = 60 * S  # one-minute buckets of whole seconds: brute force counts covered seconds


@st.composite
def report_streams(draw: st.DrawFn) -> tuple[list[tuple[str, str, int, int, str | None]], int, str]:
    """Reports of up to 3 sensors over 4 one-minute buckets: (kind, sensor, ts_s, interval_s, status)."""
    reports = []
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["door", "door", "beat"]))
        sensor = draw(st.sampled_from(["a", "b", "c"]))
        ts_s = draw(st.integers(0, N_BUCKETS * 60 - 1))
        interval_s = draw(st.integers(0, 90)) if kind == "door" else 0
        status = draw(st.sampled_from(["ok", "degraded", "down", "error", None])) if kind == "beat" else None
        reports.append((kind, sensor, ts_s, interval_s, status))
    grace_s = draw(st.sampled_from([0, 10, 60]))
    anchor = draw(st.sampled_from(["start", "end"]))
    return sorted(reports, key=lambda r: r[2]), grace_s, anchor


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(report_streams(), st.sampled_from([0.9, 0.75]), st.sampled_from([0.1, 0.3]),
       st.sampled_from([20, 45]))
def test_coverage_against_brute_force_seconds(stream: tuple[list[Any], int, str], ok: float, missing: float,
                                               every_s: int) -> None:
    reports, grace_s, anchor = stream
    config = DataQuality(ok_coverage=ok, missing_coverage=missing, heartbeat_every_s=every_s, interval_anchor=anchor)
    c = ctx(bucket_ms=B)
    stage = config.build(c, None)
    base = T0 // 1000
    covered: dict[str, set[int]] = {}  # sensor -> covered seconds (relative), brute force
    first: dict[str, int] = {}  # sensor -> earliest second its reports speak for
    vouching: set[str] = set()  # sensors that sent an interval report or a heartbeat: graded
    last: dict[str, int] = {}
    reported: dict[str, set[int]] = {}  # sensor -> buckets with an event of it
    closed_to = None  # seconds: end of the latest bucket closed
    outs: list[QualityOutput] = []
    expected: list[dict[str, Any]] = []

    def close_until(now_s: int) -> None:
        nonlocal closed_to
        while True:
            k = 0 if closed_to is None else closed_to // 60
            if k >= N_BUCKETS or (k + 1) * 60 + grace_s > now_s:
                return
            lo, hi = k * 60, (k + 1) * 60
            known = sorted(s for s in first if first[s] < hi)
            cov = {s: len({x for x in covered.get(s, ()) if lo <= x < hi}) / 60 for s in known}
            if first:  # a store that never had a door event or heartbeat gets no record
                expected.append({"start": lo, "cov": cov, "known": known, "graded": [s for s in known if s in vouching],
                                 "reported": {s: k in reported.get(s, ()) for s in known},
                                 "last": {s: (base + last[s]) * 1000 for s in known}})
            outs.extend(stage.on_bucket_closed(ClosedBucket(T0 + lo * 1000, B, {}), c))
            closed_to = hi

    for kind, sensor, ts_s, interval_s, status in reports:
        close_until(ts_s)
        if kind == "door":
            event: Event = door(sensor, T0 + ts_s * 1000, interval_s=interval_s)
            lo, hi = (ts_s, ts_s + interval_s) if anchor == "start" else (ts_s - interval_s, ts_s)
        else:
            event = beat(sensor, T0 + ts_s * 1000, status)
            lo, hi = (ts_s, ts_s) if status in ("down", "error", "offline") else (ts_s - every_s, ts_s)
        stage.on_event(event, c)
        if kind == "beat" or interval_s > 0:
            vouching.add(sensor)
        first[sensor] = min(first.get(sensor, lo), lo, ts_s)
        last[sensor] = max(last.get(sensor, ts_s), ts_s)
        floor = -10**9 if closed_to is None else closed_to
        covered.setdefault(sensor, set()).update(x for x in range(max(lo, floor), hi))
        reported.setdefault(sensor, set()).add(ts_s // 60)
    close_until(10**9)

    assert len(outs) == len(expected)
    for out, want in zip(outs, expected, strict=True):
        cov = want["cov"]
        assert out.bucket_start_ms == T0 + want["start"] * 1000
        assert [s["sensor_id"] for s in out.sensors] == want["known"]
        assert {s["sensor_id"]: s["coverage"] for s in out.sensors} == {s: round(v, 4) for s, v in cov.items()}
        assert {s["sensor_id"]: s["reported"] for s in out.sensors} == want["reported"]
        assert {s["sensor_id"]: s["last_seen_ms"] for s in out.sensors} == want["last"]
        assert {s["sensor_id"] for s in out.sensors if s["graded"]} == set(want["graded"])
        assert out.silent_sensors == [s for s in want["graded"] if cov[s] == 0]
        values = [cov[s] for s in want["graded"]]
        if not values:
            quality = "no_sensors"
        elif all(v >= ok for v in values):
            quality = "ok"
        elif sum(values) / len(values) <= missing:
            quality = "missing"
        else:
            quality = "partial"
        assert out.quality == quality
        assert out.coverage == (pytest.approx(sum(values) / len(values)) if values else None)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.integers(0, 60)), max_size=40), st.integers(0, 450),
       st.integers(1, 6))
def test_intervals_against_a_set_of_instants(adds: list[tuple[int, int]], trim_at: int, cap: int) -> None:
    cover = CoveredIntervals(max_intervals=cap)
    points: set[int] = set()
    for lo, length in adds[: len(adds) // 2]:
        cover.add(lo, lo + length)
        points.update(range(lo, lo + length))
    cover.trim(trim_at)
    points = {p for p in points if p >= trim_at}
    for lo, length in adds[len(adds) // 2:]:
        cover.add(lo, lo + length)
        points.update(range(max(lo, trim_at), lo + length))
    got = cover.intervals()
    assert len(got) <= cap
    assert all(a < b for a, b in got) and all(b1 < a2 for (_, b1), (a2, _) in itertools.pairwise(got))
    # Bridging may only add the gaps it counts; without it, exactly the union.
    assert len(points) <= cover.covered_ms(-1000, 1000) <= len(points) + cover.bridged_ms
    for lo, hi in ((0, 100), (50, 300), (trim_at, trim_at + 37)):
        inside = sum(1 for p in points if lo <= p < hi)
        assert inside <= cover.covered_ms(lo, hi) <= inside + cover.bridged_ms
    if cover.bridged_ms == 0:
        assert {p for a, b in got for p in range(a, b)} == points
