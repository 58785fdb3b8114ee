"""A bucket's data-quality grade on its record, and what is held back on incomplete door counts.

A retail store with two interval door counters and a till runs 16 days through the per-store
pipeline (data quality, then forecasts and alerts); on the last day its back counter stops at
12:00. Expected values come from the traffic the test made (coverage and conversion counted here),
and the same traffic through a pipeline without the quality stage shows what the hold-back spares:
there the halved count raises `arrivals_low`.
"""

from __future__ import annotations

import itertools
from collections import Counter

from footfall.operators.pipeline.forecast_stage import ForecastsAndAlerts
from footfall.operators.pipeline.quality_stage import DataQuality
from footfall.operators.pipeline.staffing_stage import StaffingAdvice, StaffingOutput
from footfall.operators.pipeline.stage import AlertOutput, BucketOutput
from footfall.operators.pipeline.store import StoreParams
from footfall.operators.pipeline.store_pipeline import HELD_BACK, StorePipeline
from footfall.schemas.events import DoorEvent, Event, PosEvent

MIN = 60_000
BUCKET = 15 * MIN
DAY = 24 * 60 * MIN
T0 = 1_788_220_800_000  # 2026-09-01T00:00:00Z, a Tuesday
DAYS = 16
STOP = T0 + (DAYS - 1) * DAY + 12 * 60 * MIN  # the back counter's last report ends here
END = STOP + 3 * 60 * MIN
ENV = {"store_id": "s1", "region": "north", "zone": None, "vertical": "retail"}
_ids = itertools.count()


def open_at(ts_ms: int) -> bool:
    return 8 <= (ts_ms % DAY) // (60 * MIN) < 20


def traffic() -> list[Event]:
    """Each counter reports every 5 minutes (6 people in, 6 out while open, zeros at night: always covering)."""
    events: list[Event] = []
    for ts in range(T0, END, 5 * MIN):
        people = 6 if open_at(ts) else 0
        for sensor in ("front", "back"):
            if sensor == "back" and ts >= STOP:
                continue
            events.append(DoorEvent(**ENV, event_id=f"d{next(_ids)}", ts_ms=ts, door_id=sensor, sensor_id=sensor,
                                    count_in=people, count_out=people, interval_s=300))
        if open_at(ts):
            for k in range(3):
                events.append(PosEvent(**ENV, event_id=f"p{next(_ids)}", ts_ms=ts + k * MIN, transaction_id=f"t{ts}{k}",
                                       amount=10.0, items=1, currency="EUR", till_id="t1", customer_id=None))
    return events


def run(with_quality: bool) -> list:
    stages = ([DataQuality(), ForecastsAndAlerts(horizon=4), StaffingAdvice()] if with_quality
              else [ForecastsAndAlerts(horizon=4)])
    pipeline = StorePipeline("s1", StoreParams(bucket_ms=BUCKET, grace_ms=0), stages)
    outputs: list = []
    for event in traffic():
        pipeline.update(event)
        outputs += pipeline.pop_outputs()
    pipeline.advance(END + BUCKET)
    return outputs + pipeline.pop_outputs(live=True)


def test_incomplete_buckets_are_graded_and_held_back_and_the_silent_counter_is_named() -> None:
    outputs = run(with_quality=True)
    closed = {o.start_ms: o for o in outputs
              if isinstance(o, BucketOutput) and o.status == "closed" and o.start_ms < END}
    assert len(closed) == (END - T0) // BUCKET
    for start, bucket in closed.items():
        # Counted here: both counters cover a bucket wholly before the stop; after it, one of two (mean 0.5).
        want = "ok" if start + BUCKET <= STOP else "partial"
        assert bucket.quality == want, (start, bucket.quality)
        visitors = sum(6 * (2 if t < STOP else 1) for t in range(start, start + BUCKET, 5 * MIN) if open_at(t))
        transactions = sum(3 for t in range(start, start + BUCKET, 5 * MIN) if open_at(t))
        assert (bucket.kpis["visitors"], bucket.kpis["transactions"]) == (visitors, transactions)
        if want == "ok":
            assert bucket.held_back == ()
            assert bucket.kpis["conversion_rate"] == (transactions / visitors if visitors else None)
        else:
            assert bucket.held_back == HELD_BACK
            assert all(bucket.kpis[k] is None for k in HELD_BACK)
    # The newest closed bucket is the one after the traffic ended: no counter covered it.
    assert outputs[-1].kind == "live" and outputs[-1].live["quality"] == "missing"

    # Retail staffing is made on the forecasts: it carries the bucket's grade, and says when it was incomplete.
    staffing = {o.made_at_ms: o for o in outputs if isinstance(o, StaffingOutput)}
    assert {staffing[s].quality for s in closed if s in staffing} == {"ok", "partial"}
    for start, plan in staffing.items():
        if start in closed:
            assert plan.quality == closed[start].quality
            assert (plan.advice is not None) == (plan.quality == "partial"), (start, plan.advice)

    opened = [o.alert for o in outputs if isinstance(o, AlertOutput) and o.alert.state == "opened"]
    after = [a for a in opened if a.bucket_start_ms >= STOP]
    assert [a.kind for a in after] == ["sensor_silent"], [(a.kind, a.explanation) for a in after]
    assert "sensor back sent nothing for 8 buckets in a row" in after[0].explanation
    assert after[0].bucket_start_ms == STOP + 7 * BUCKET  # two hours (the rule's wait) after the stop


def test_without_the_grade_the_halved_count_reads_as_a_fall() -> None:
    outputs = run(with_quality=False)
    after = Counter(o.alert.kind for o in outputs
                    if isinstance(o, AlertOutput) and o.alert.state == "opened" and o.alert.bucket_start_ms >= STOP)
    assert after["arrivals_low"] == 1, after
    closed = [o for o in outputs if isinstance(o, BucketOutput) and o.status == "closed"]
    assert all(o.quality is None and o.held_back == () for o in closed)
