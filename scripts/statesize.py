"""How big one store's saved state gets: `StorePipeline` run over simulated weeks, measured as the worker saves it.

The worker writes each store's value (`operators.pipeline.persistence.store_value`: the
pipeline's flow state) as JSON to the table's changelog; its size is what a store
costs in memory, in the changelog, and on recovery. Beside it, under their own
keys and once per closed bucket, the store's stage states (the forecasts-and-alerts
stage's models, base64): measured here too, with the time closing one bucket and
running its stages (judging, learning, forecasting) takes. This runs the
same decoding and pipeline as the worker on the simulator's traffic of busy
stores of each vertical (pure: no Kafka, no Redis) and reports, per store, the
size at the end of every simulated hour: the steady state is the largest size
over the last days, once the week ring of the baselines is full.

Examples
--------
>>> sizes = measure_state_sizes(days=1, stores=3, rate_factor=1.0, seed=3)
>>> sorted(s.vertical for s in sizes)
['bank', 'retail', 'telecom']
>>> all(0 < s.max_bytes < 64 * 1024 and s.events > 0 for s in sizes)
True

"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random
import time
from dataclasses import dataclass
from typing import Any

import orjson

from footfall.operators.pipeline.forecast_stage import ForecastsAndAlerts
from footfall.operators.pipeline.persistence import stage_value, store_value
from footfall.operators.pipeline.store import StoreParams
from footfall.operators.pipeline.store_models import StoreModels
from footfall.operators.pipeline.store_pipeline import StorePipeline
from footfall.schemas.events import Limits
from footfall.schemas.messages import decode_message
from footfall.schemas.privacy import Pseudonymizer
from footfall.scripts.simulation import generate, make_stores, rostered

__all__ = ["ModelsFootprint", "StoreStateSize", "live_state_ram", "measure_models", "measure_state_sizes"]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
#: 64 KB: the most one store's state should take at steady state.
TARGET_BYTES = 64 * 1024


@dataclass(frozen=True)
class StoreStateSize:
    store_id: str
    vertical: str
    events: int
    events_per_day: float
    max_bytes: int  # largest end-of-hour size over the whole run
    last_day_max_bytes: int  # largest end-of-hour size over the last simulated day
    forecast_max_bytes: int = 0  # forecasting state as saved (base64), largest end-of-hour size
    forecast_ms_mean: float = 0.0  # learning one closed bucket and forecasting its series, mean
    forecast_ms_max: float = 0.0
    ram_bytes: int = 0  # tracemalloc: the store's pipeline without its stages, rebuilt from its saved value at the end
    first_ram_bytes: int = 0  # the same, loaded alone (the first of `live_state_ram`'s copies)


def live_state_ram(store_id: str, params: StoreParams, saved: bytes, copies: int = 1) -> tuple[int, int]:
    """Bytes a store's pipeline (its flow, no stages) holds in memory once rebuilt from its saved JSON `saved`:
    `(per store with `copies` of it loaded, the first copy alone)`.

    As the worker loads a store (after a restart, an eviction or a rebalance): measured with
    `tracemalloc` from the parse to the built pipelines, the parsed values dropped (what a
    pipeline keeps of its value stays counted). The first copy also pays what the process
    allocates once and then shares between stores (orjson's cache of short dict keys, names
    of quantities and days, time zones): with a worker's thousands of stores that is no
    store's own, so the per-store figure is that of the `copies - 1` loaded after the first.
    The copies share the one store's own dict keys (its open tickets' ids), a few hundred bytes.

    >>> pipeline = StorePipeline("s1", StoreParams(tz="UTC"), [])
    >>> per_store, first = live_state_ram("s1", pipeline.params, orjson.dumps(pipeline.to_state()), copies=5)
    >>> 0 < per_store <= first < 64 * 1024
    True
    """
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start(1)
    pipelines = []
    try:
        before = tracemalloc.get_traced_memory()[0]
        marks = []
        for _ in range(copies):
            state = orjson.loads(saved)
            pipelines.append(StorePipeline.from_state(store_id, params, [], state))
            del state
            gc.collect()
            marks.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    first = marks[0] - before
    per_store = first if copies == 1 else (marks[-1] - marks[0]) // (copies - 1)
    del pipelines
    return per_store, first


def measure_state_sizes(days: int = 8, stores: int = 6, rate_factor: float = 3.0, seed: int = 11,
                        start: dt.datetime | None = None, forecast_horizon: int = 96) -> list[StoreStateSize]:
    """Run `days` of simulated traffic of `stores` stores (arrival rates times `rate_factor`).

    `forecast_horizon`: buckets each store forecasts, as the worker's default (0: no forecasts).
    """
    start = start or dt.datetime(2026, 3, 2, tzinfo=dt.UTC)  # a Monday
    start_ms = int(start.timestamp() * 1000)
    end_ms = start_ms + days * 24 * HOUR_MS
    profiles = [rostered(dataclasses.replace(p, base_rate_per_h=p.base_rate_per_h * rate_factor), seed)
                for p in make_stores(stores, seed=seed)]
    stages = [ForecastsAndAlerts(horizon=forecast_horizon, queue_target_s=600.0)] if forecast_horizon > 0 else []
    pipelines = {p.store_id: StorePipeline(p.store_id, StoreParams(tz=p.timezone), stages, vertical=p.vertical)
                 for p in profiles}
    fc_sizes: dict[str, list[int]] = {k: [0] for k in pipelines}
    fc_ms: dict[str, list[float]] = {k: [] for k in pipelines}
    counts = dict.fromkeys(pipelines, 0)
    sizes: dict[str, list[tuple[int, int]]] = {k: [] for k in pipelines}
    pseudonymize = Pseudonymizer(b"state-size-measurement-key")
    limits = Limits(max_future_ms=10 * 365 * 24 * HOUR_MS)
    next_hour = start_ms + HOUR_MS

    def measure(at_ms: int) -> None:
        # As the worker saves them (`operators.pipeline.persistence`): the store's value, and its stages' apart.
        for store_id, pipeline in pipelines.items():
            sizes[store_id].append((at_ms, len(orjson.dumps(store_value(store_id, pipeline.to_state(), 0, 0, {})))))
            if stages:
                fc_sizes[store_id].append(sum(len(orjson.dumps(stage_value(name, state)))
                                              for name, state in pipeline.stage_states().items()))

    for message in generate(profiles, start_ms=start_ms, end_ms=end_ms, seed=seed):
        while message.ts_ms >= next_hour:
            measure(next_hour)
            next_hour += HOUR_MS
        decoded = decode_message(message.payload, now_ms=message.ts_ms, limits=limits, pseudonymize=pseudonymize)
        for event in decoded.events:
            pipeline = pipelines[event.store_id]
            pipeline.update(event)
            t0 = time.perf_counter()
            closed = sum(1 for output in pipeline.pop_outputs() if output.kind == "bucket")
            if closed and stages:
                # Closing a bucket and running its stages (judging, learning, forecasting), per closed bucket.
                fc_ms[event.store_id] += [(time.perf_counter() - t0) * 1000 / closed] * closed
            counts[event.store_id] += 1
    measure(end_ms)
    out = []
    for p in profiles:
        series = sizes[p.store_id]
        last_day = [b for t, b in series if t > end_ms - 24 * HOUR_MS]
        took = fc_ms[p.store_id] or [0.0]
        pipeline = pipelines[p.store_id]
        ram, first_ram = live_state_ram(p.store_id, pipeline.params, orjson.dumps(pipeline.to_state()), copies=20)
        out.append(StoreStateSize(p.store_id, p.vertical, counts[p.store_id], counts[p.store_id] / days,
                                  max(b for _, b in series), max(last_day), max(fc_sizes[p.store_id]),
                                  sum(took) / len(took), max(took), ram, first_ram))
    return out


def format_state_sizes(sizes: list[StoreStateSize], days: int) -> str:
    lines = [f"state size per store (the saved store value as JSON, end of every simulated hour, {days} days of "
             f"simulated traffic; target < {TARGET_BYTES // 1024} KB):",
             f"  {'store':<14} {'vertical':<8} {'events/day':>10} {'max KB':>7} {'last day max KB':>15} "
             f"{'RAM KB':>7} {'alone KB':>8}"]
    for s in sizes:
        lines.append(f"  {s.store_id:<14} {s.vertical:<8} {s.events_per_day:>10,.0f} {s.max_bytes / 1024:>7.1f} "
                     f"{s.last_day_max_bytes / 1024:>15.1f} {s.ram_bytes / 1024:>7.1f} "
                     f"{s.first_ram_bytes / 1024:>8.1f}")
    worst = max(s.max_bytes for s in sizes)
    lines.append(f"  largest: {worst / 1024:.1f} KB = {worst / TARGET_BYTES:.0%} of the target")
    ram = max(s.ram_bytes for s in sizes)
    lines.append(f"  RAM (tracemalloc: the store's pipeline without its stages, rebuilt from its value at the end, "
                 f"per store with 20 copies loaded; alone: the first copy, with what the process allocates once): "
                 f"largest {ram / 1024:.1f} KB = {ram / TARGET_BYTES:.0%} of the target")
    if any(s.forecast_max_bytes for s in sizes):
        lines.append("models per store (the stages' saved values, models as base64: forecasts and alert watches, "
                     "saved once per closed bucket under their own key) and the time to close one bucket and run its "
                     "stages (judge, learn, forecast):")
        lines.append(f"  {'store':<14} {'vertical':<8} {'max KB':>7} {'ms mean':>8} {'ms max':>7}")
        for s in sizes:
            lines.append(f"  {s.store_id:<14} {s.vertical:<8} {s.forecast_max_bytes / 1024:>7.1f} "
                         f"{s.forecast_ms_mean:>8.2f} {s.forecast_ms_max:>7.1f}")
    return "\n".join(lines)


@dataclass(frozen=True)
class ModelsFootprint:
    """One store's forecasts-and-alerts stage after `days` of closed buckets (`measure_models`)."""

    vertical: str
    bucket_ms: int
    horizon: int
    days: int
    ram_bytes: int  # tracemalloc: what the models hold in memory, unpickled afresh from their saved bytes
    pickled_bytes: int  # `StoreModels.to_bytes()`: the compressed pickle the worker saves
    ms_mean: float  # `on_bucket_closed`, per closed bucket, over the last simulated day
    ms_p95: float
    top: tuple[tuple[str, int], ...] = ()  # the biggest allocation sites (file:line, bytes)
    save_ms_mean: float = 0.0  # `to_state` right after each close (the worker saves a changed stage so)


def _bucket_kpis(rng: random.Random, profile: Any, start_ms: int, bucket_ms: int) -> tuple[dict[str, Any], float]:
    """A bucket's record drawn from the simulator's arrival rate (Poisson counts), and its occupancy."""
    from footfall.scripts.simulation import arrival_rate_per_h

    mean = arrival_rate_per_h(profile, start_ms + bucket_ms // 2) * bucket_ms / HOUR_MS
    arrivals = _poisson(rng, mean)
    other = "transactions" if profile.vertical == "retail" else "tickets_issued"
    share = 0.3 if profile.vertical == "retail" else 0.8
    kpis: dict[str, Any] = {"arrivals": arrivals, other: _poisson(rng, mean * share),
                            "departures": _poisson(rng, mean), "dwell_mean_s": 600.0 + rng.gauss(0, 60) if arrivals
                            else None}
    return kpis, float(_poisson(rng, mean * 1.5))


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def measure_models(days: int = 28, bucket_ms: int = 900_000, horizon: int | None = None, vertical: str = "retail",
                   seed: int = 11, top: int = 0) -> ModelsFootprint:
    """One store's `StoreModelsStage` fed `days` of closed buckets (the simulator's rates, Poisson counts).

    `horizon` defaults to 24 hours of buckets. RAM is measured with `tracemalloc` as what
    loading the saved models (`StoreModels.from_bytes`) allocates and keeps (the steady state the worker holds); `top`
    lists the biggest allocation sites of that. Times are `on_bucket_closed` over the last day.
    """
    import gc
    import tracemalloc

    from footfall.operators.pipeline.stage import ClosedBucket, StoreContext
    from footfall.scripts.simulation import make_stores

    horizon = horizon or DAY_MS // bucket_ms
    profile = next(p for p in make_stores(6, seed=seed) if p.vertical == vertical)
    rng = random.Random(seed)
    stage = ForecastsAndAlerts(horizon=horizon, queue_target_s=600.0).build(
        StoreContext(profile.store_id, bucket_ms, profile.timezone, vertical=vertical), None)
    start = int(dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp() * 1000)
    n = days * DAY_MS // bucket_ms
    took: list[float] = []
    saving: list[float] = []
    for i in range(n):
        t = start + i * bucket_ms
        kpis, occupancy = _bucket_kpis(rng, profile, t, bucket_ms)
        ctx = StoreContext(profile.store_id, bucket_ms, profile.timezone, vertical=vertical, occupancy=occupancy,
                           queue_wait_s=None if vertical == "retail" else 60.0 * rng.random())
        t0 = time.perf_counter()
        stage.on_bucket_closed(ClosedBucket(t, bucket_ms, kpis), ctx)
        t1 = time.perf_counter()
        stage.to_state()
        took.append((t1 - t0) * 1000)
        saving.append((time.perf_counter() - t1) * 1000)
    blob = stage.to_state()
    assert blob is not None
    gc.collect()
    tracemalloc.start(1)
    base = tracemalloc.take_snapshot()
    before = tracemalloc.get_traced_memory()[0]
    models = StoreModels.from_bytes(blob)
    gc.collect()
    ram = tracemalloc.get_traced_memory()[0] - before
    sites: tuple[tuple[str, int], ...] = ()
    if top:
        stats = tracemalloc.take_snapshot().compare_to(base, "lineno")
        sites = tuple((str(s.traceback), s.size_diff) for s in stats[:top])
    tracemalloc.stop()
    del models
    last = sorted(took[-(DAY_MS // bucket_ms):])
    saves = saving[-(DAY_MS // bucket_ms):]
    return ModelsFootprint(vertical, bucket_ms, horizon, days, ram, len(blob), sum(last) / len(last),
                           last[int(0.95 * (len(last) - 1))], sites, sum(saves) / len(saves))


def main(argv: list[str] | None = None) -> None:
    """`python -m footfall.scripts.statesize --days 28 --bucket-min 15 5`: the models' footprint per store."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--bucket-min", type=int, nargs="+", default=[15, 5])
    parser.add_argument("--verticals", nargs="+", default=["retail", "bank"])
    parser.add_argument("--top", type=int, default=0)
    args = parser.parse_args(argv)
    for minutes in args.bucket_min:
        for vertical in args.verticals:
            f = measure_models(args.days, minutes * 60_000, vertical=vertical, top=args.top)
            print(f"{vertical:<8} {minutes:>2} min buckets, {f.horizon} ahead, {f.days} days: RAM "
                  f"{f.ram_bytes / 1024:7.1f} KB (tracemalloc)  pickled {f.pickled_bytes / 1024:6.1f} KB  "
                  f"on_bucket_closed {f.ms_mean:.3f} ms mean, {f.ms_p95:.3f} ms p95; its save (to_state) "
                  f"{f.save_ms_mean:.3f} ms mean")
            for site, size in f.top:
                print(f"    {size / 1024:8.1f} KB  {site}")


if __name__ == "__main__":
    main()
