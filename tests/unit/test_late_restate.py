"""Skewed clocks and backfills against brute force: the robust watermark and restated buckets.

A store's pipeline (`StorePipeline`, default parameters: 15-minute buckets, 5 minutes of grace,
24 hours of restate horizon) is fed honest traffic with a few events from a clock up to an hour
ahead, a gateway's outage (its events held back while the idle ticks move the store's time on,
then uploaded in order), and a few events older than the horizon. The last revision of every
bucket must equal a brute-force count of every event within the horizon; only the events older
than the horizon are late; the stages see each bucket once, at its first close; region roll-ups
fed every revision equal the brute-force sums.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from footfall.operators.kpis.rollup import RollUp, compact, rollup_kpis
from footfall.operators.pipeline.stage import BucketOutput, ClosedBucket, OpenBucket, StoreContext
from footfall.operators.pipeline.store import StoreParams
from footfall.operators.pipeline.store_pipeline import StorePipeline
from footfall.operators.windows.localtime import local_day
from footfall.schemas.events import DoorEvent, Event
from footfall.stream.records import StoreMeta, record_of

MIN = 60_000
HOUR = 60 * MIN
BUCKET = 15 * MIN
T0 = 1_780_300_800_000  # 2026-06-01T08:00:00Z


def door(store_id: str, event_id: str, ts_ms: int, n_in: int = 1) -> DoorEvent:
    return DoorEvent(event_id=event_id, store_id=store_id, ts_ms=ts_ms, region="north", zone=None,
                     vertical="retail", door_id="d", sensor_id="c", count_in=n_in, count_out=0, interval_s=0)


@dataclass
class Seen:
    """A toy stage: the buckets it was given at their close, and the events it saw."""

    closes: list[tuple[int, int]] = field(default_factory=list)  # (start, arrivals)
    events: int = 0
    changed: bool = False

    def on_event(self, event: Event, context: StoreContext) -> None:
        self.events += 1

    def on_bucket_closed(self, bucket: ClosedBucket, context: StoreContext) -> list[Any]:
        self.closes.append((bucket.start_ms, bucket.kpis["arrivals"]))
        return []

    def on_partial(self, bucket: OpenBucket, context: StoreContext) -> list[Any]:
        return []

    def to_state(self) -> Any:
        return None


@dataclass
class SeenFactory:
    name: ClassVar[str] = "seen"
    built: list[Seen] = field(default_factory=list)

    def build(self, context: StoreContext, state: Any | None) -> Seen:
        self.built.append(Seen())
        return self.built[-1]


@dataclass
class Run:
    fates: Counter[str] = field(default_factory=Counter)
    latest: dict[int, BucketOutput] = field(default_factory=dict)  # the last revision of each closed bucket
    outputs: list[BucketOutput] = field(default_factory=list)


def feed(pipeline: StorePipeline, arrivals: list[tuple[str, Any]], run: Run) -> None:
    """Feed `("event", e)` and `("tick", ts)` items, popping outputs after each (as the worker does)."""
    for what, item in arrivals:
        if what == "event":
            run.fates[pipeline.update(item)] += 1
        else:
            pipeline.advance(item)
        for out in pipeline.pop_outputs():
            if isinstance(out, BucketOutput) and out.status == "closed":
                run.outputs.append(out)
                previous = run.latest.get(out.start_ms)
                assert previous is None or out.revision > previous.revision
                run.latest[out.start_ms] = out


def brute_counts(events: list[Event]) -> dict[int, int]:
    counts: dict[int, int] = defaultdict(int)
    for e in events:
        counts[e.ts_ms - e.ts_ms % BUCKET] += e.count_in  # type: ignore[attr-defined]
    return counts


def test_one_event_59_minutes_ahead_then_60_honest_events_none_late_none_restated():
    factory = SeenFactory()
    pipeline = StorePipeline("s", StoreParams(), [factory])
    honest = [door("s", f"h{i}", T0 + i * MIN) for i in range(10)]
    skewed = door("s", "skewed", T0 + 9 * MIN + 59 * MIN)
    more = [door("s", f"h{i}", T0 + i * MIN) for i in range(10, 70)]
    run = Run()
    feed(pipeline, [("event", e) for e in [*honest, skewed, *more]], run)
    assert run.fates == Counter(counted=71)  # nothing late, nothing restated
    assert pipeline.watermark_ms == T0 + 69 * MIN  # the honest clock, never the skewed one
    assert all(out.revision == 1 and not out.restated for out in run.outputs)
    want = brute_counts([*honest, *more])
    assert {s: o.kpis["arrivals"] for s, o in run.latest.items()} == {s: want[s] for s in run.latest}
    assert sorted(run.latest) == [T0 + i * BUCKET for i in range(4)]  # 08:45's closes at 09:05 <= 09:09
    # the skewed event counts in its own (future) bucket, still open
    assert pipeline.flow.bucket(skewed.ts_ms - skewed.ts_ms % BUCKET)["arrivals"] == 1 + (
        want.get(skewed.ts_ms - skewed.ts_ms % BUCKET, 0))
    assert factory.built[0].closes == [(s, want[s]) for s in sorted(run.latest)]


def scenario(seed: int, store_id: str) -> tuple[list[tuple[str, Any]], list[Event], list[Event]]:
    """One store's arrivals (events and idle ticks, in arrival order), its events within the horizon,
    and its events older than it.

    Honest traffic every 20-90 s, each event up to 4 minutes late (within grace); one to three
    events from a clock 10 to 59 minutes ahead, at least an hour apart; one outage of 30 minutes
    to 2.5 hours during which the gateway buffers everything and the store's time moves on by idle
    ticks every minute, then the buffer arrives in order; and a few events 26 to 30 hours old.
    """
    rng = random.Random(seed)
    arrivals: list[tuple[str, Any]] = []
    within: list[Event] = []
    old: list[Event] = []
    clock = T0
    end = T0 + 8 * HOUR
    outage_from = T0 + rng.randrange(HOUR, 4 * HOUR)
    outage_to = outage_from + rng.randrange(30 * MIN, 150 * MIN)
    skew_at = sorted(rng.sample(range(0, 8), rng.randint(1, 3)))
    skew_times = {T0 + h * HOUR + rng.randrange(0, 10 * MIN) for h in skew_at}
    buffer: list[Event] = []
    n = 0
    last_tick = clock
    while clock < end:
        clock += rng.randrange(20_000, 90_000)
        n += 1
        ts = clock - (rng.randrange(0, 4 * MIN) if rng.random() < 0.2 else 0)
        e = door(store_id, f"{store_id}-{n}", ts, rng.randint(1, 3))
        within.append(e)
        if outage_from <= clock < outage_to:
            buffer.append(e)
            while last_tick + MIN <= clock:  # the worker's idle ticks: the store's time runs on
                last_tick += MIN
                arrivals.append(("tick", last_tick))
            continue
        if buffer:  # the gateway is back: its buffer first, in order, then live traffic
            arrivals += [("event", b) for b in buffer]
            buffer = []
        arrivals.append(("event", e))
        last_tick = clock
        if any(clock - MIN < t <= clock for t in skew_times):
            skewed = door(store_id, f"{store_id}-skew{n}", clock + rng.randrange(10 * MIN, 59 * MIN))
            within.append(skewed)
            arrivals.append(("event", skewed))
        if rng.random() < 0.01 and clock > T0 + HOUR:
            stale = door(store_id, f"{store_id}-old{n}", clock - rng.randrange(26 * HOUR, 30 * HOUR))
            old.append(stale)
            arrivals.append(("event", stale))
    if buffer:
        arrivals += [("event", b) for b in buffer]
    arrivals.append(("tick", end + 2 * HOUR))  # close everything
    return arrivals, within, old


@pytest.mark.parametrize("seed", range(12))
def test_backfill_and_skew_end_with_brute_force_counts(seed):
    stores = ("a", "b")
    params = StoreParams()
    rollups: dict[int, RollUp] = defaultdict(RollUp)
    want_total: dict[int, int] = defaultdict(int)
    for store_id in stores:
        arrivals, within, old = scenario(seed * 10 + stores.index(store_id), store_id)
        factory = SeenFactory()
        pipeline = StorePipeline(store_id, params, [factory])
        run = Run()
        feed(pipeline, arrivals, run)
        assert run.fates["late"] == len(old)  # only the events older than the horizon
        assert run.fates["counted"] + run.fates["restated"] == len(within)
        assert run.fates["restated"] > 0  # the backfill restated the buckets the idle ticks had closed
        want = brute_counts(within)
        got = {s: o.kpis["arrivals"] for s, o in run.latest.items()}
        assert {s: n for s, n in got.items() if n} == dict(want)
        # Revisions: 1 at the close, then +1 at each restatement; the stage saw each bucket once, at revision 1.
        firsts = [(o.start_ms, o.kpis["arrivals"]) for o in run.outputs if o.revision == 1]
        assert factory.built[0].closes == firsts
        assert len({s for s, _ in firsts}) == len(firsts) == len(run.latest)
        assert all(o.restated == (o.revision > 1) for o in run.outputs)
        assert factory.built[0].events == run.fates["counted"]  # restating events do not reach the stages
        # Day totals: every event within the horizon, by local day.
        days: Counter[str] = Counter()
        for e in within:
            days[local_day(e.ts_ms, params.tz).isoformat()] += e.count_in
        for day, n in days.items():
            assert pipeline.flow.day(day)["arrivals"] == n
        # Roll-ups fed every revision as published: each store's latest row counts, once.
        meta = StoreMeta(store_id, "north", "retail", params.tz)
        for out in run.outputs:
            rollups[out.start_ms].update(store_id, compact(record_of(meta, out, BUCKET, now_ms=0)))
        for s, n in want.items():
            want_total[s] += n
    for s, n in want_total.items():
        assert rollup_kpis(rollups[s].totals)["arrivals"] == n


def test_state_cost_is_bounded_by_the_horizon():
    pipeline = StorePipeline("s", StoreParams())
    for i in range(3 * 24 * 60):  # three days, an event a minute
        pipeline.update(door("s", f"e{i}", T0 + i * MIN))
        pipeline.pop_outputs()
    buckets = pipeline.flow.buckets
    # (24 h + 5 min grace) / 15 min + 1 kept closed buckets at most: 97
    assert buckets.closed_kept() <= (24 * HOUR + 5 * MIN) // BUCKET + 1
    assert len(pipeline.flow.to_state()["refs"]) == buckets.closed_kept()
