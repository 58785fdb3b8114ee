"""How big one store's saved state gets: `StoreFlow` run over simulated weeks, measured as the worker saves it.

The worker writes each store's `StoreFlow.to_state()` as JSON to the table's
changelog; its size is what a store costs in memory, in the changelog, and on
recovery. Beside it, under its own key and once per closed bucket, the store's
models (`StoreModels.to_bytes()`, base64: forecasters and alert watches):
measured here too, with the time judging, learning and forecasting one closed
bucket takes. This runs the
same decoding and operators as the worker on the simulator's traffic of busy
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

import base64
import dataclasses
import datetime as dt
import time
from dataclasses import dataclass

import orjson

from footfall.operators.store import StoreFlow, StoreParams
from footfall.operators.store_models import StoreModels
from footfall.schemas.events import Limits
from footfall.schemas.messages import decode_message
from footfall.schemas.privacy import Pseudonymizer
from footfall.scripts.simulation import generate, make_stores

__all__ = ["StoreStateSize", "measure_state_sizes"]

HOUR_MS = 3_600_000
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


def measure_state_sizes(days: int = 8, stores: int = 6, rate_factor: float = 3.0, seed: int = 11,
                        start: dt.datetime | None = None, forecast_horizon: int = 96) -> list[StoreStateSize]:
    """Run `days` of simulated traffic of `stores` stores (arrival rates times `rate_factor`).

    `forecast_horizon`: buckets each store forecasts, as the worker's default (0: no forecasts).
    """
    start = start or dt.datetime(2026, 3, 2, tzinfo=dt.UTC)  # a Monday
    start_ms = int(start.timestamp() * 1000)
    end_ms = start_ms + days * 24 * HOUR_MS
    profiles = [dataclasses.replace(p, base_rate_per_h=p.base_rate_per_h * rate_factor)
                for p in make_stores(stores, seed=seed)]
    flows = {p.store_id: StoreFlow(StoreParams(tz=p.timezone)) for p in profiles}
    bucket_ms = StoreParams().bucket_ms
    forecasts = {p.store_id: StoreModels(p.store_id, bucket_ms, forecast_horizon, p.timezone, p.vertical,
                                         queue_target_s=600.0)
                 for p in profiles} if forecast_horizon > 0 else {}
    fc_sizes: dict[str, list[int]] = {k: [0] for k in flows}
    fc_ms: dict[str, list[float]] = {k: [] for k in flows}
    counts = dict.fromkeys(flows, 0)
    sizes: dict[str, list[tuple[int, int]]] = {k: [] for k in flows}
    pseudonymize = Pseudonymizer(b"state-size-measurement-key")
    limits = Limits(max_future_ms=10 * 365 * 24 * HOUR_MS)
    next_hour = start_ms + HOUR_MS

    def measure(at_ms: int) -> None:
        for store_id, flow in flows.items():
            sizes[store_id].append((at_ms, len(orjson.dumps(flow.to_state()))))
            if store_id in forecasts:
                fc_sizes[store_id].append(len(base64.b64encode(forecasts[store_id].to_bytes())))

    for message in generate(profiles, start_ms=start_ms, end_ms=end_ms, seed=seed):
        while message.ts_ms >= next_hour:
            measure(next_hour)
            next_hour += HOUR_MS
        decoded = decode_message(message.payload, now_ms=message.ts_ms, limits=limits, pseudonymize=pseudonymize)
        for event in decoded.events:
            flow = flows[event.store_id]
            flow.update(event)
            for bucket_start, kpis in flow.pop_closed():
                if event.store_id in forecasts:
                    t0 = time.perf_counter()
                    forecasts[event.store_id].learn_bucket(bucket_start, kpis, occupancy=float(flow.occupancy.get()))
                    fc_ms[event.store_id].append((time.perf_counter() - t0) * 1000)
            flow.pop_touched()
            counts[event.store_id] += 1
    measure(end_ms)
    out = []
    for p in profiles:
        series = sizes[p.store_id]
        last_day = [b for t, b in series if t > end_ms - 24 * HOUR_MS]
        took = fc_ms[p.store_id] or [0.0]
        out.append(StoreStateSize(p.store_id, p.vertical, counts[p.store_id], counts[p.store_id] / days,
                                  max(b for _, b in series), max(last_day), max(fc_sizes[p.store_id]),
                                  sum(took) / len(took), max(took)))
    return out


def format_state_sizes(sizes: list[StoreStateSize], days: int) -> str:
    lines = [f"state size per store (StoreFlow.to_state() as JSON, end of every simulated hour, {days} days of "
             f"simulated traffic; target < {TARGET_BYTES // 1024} KB):",
             f"  {'store':<14} {'vertical':<8} {'events/day':>10} {'max KB':>7} {'last day max KB':>15}"]
    for s in sizes:
        lines.append(f"  {s.store_id:<14} {s.vertical:<8} {s.events_per_day:>10,.0f} {s.max_bytes / 1024:>7.1f} "
                     f"{s.last_day_max_bytes / 1024:>15.1f}")
    worst = max(s.max_bytes for s in sizes)
    lines.append(f"  largest: {worst / 1024:.1f} KB = {worst / TARGET_BYTES:.0%} of the target")
    if any(s.forecast_max_bytes for s in sizes):
        lines.append("models per store (StoreModels.to_bytes() as base64: forecasts and alert watches, saved once per "
                     "closed bucket under its own key) and the time to judge, learn and forecast one closed bucket:")
        lines.append(f"  {'store':<14} {'vertical':<8} {'max KB':>7} {'ms mean':>8} {'ms max':>7}")
        for s in sizes:
            lines.append(f"  {s.store_id:<14} {s.vertical:<8} {s.forecast_max_bytes / 1024:>7.1f} "
                         f"{s.forecast_ms_mean:>8.2f} {s.forecast_ms_max:>7.1f}")
    return "\n".join(lines)
