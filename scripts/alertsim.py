"""Alerts on simulated stores through the worker's own operators: false alerts, and injected incidents.

`simulated_alerts` sends the simulator's messages through what the worker runs
per message (decoding, `StoreFlow`, `StoreModels`: forecasts, watches, rules,
early warnings at each message), with no Kafka or Redis, and returns every alert
change. On quiet stores (no incident injected) every alert opened after the
watches' warm-up is a false one; with incidents (`surge`, `drop`, `stuck_zero`)
each should open one alert, soon after the incident starts.

Run::

    python -m footfall.scripts.alertsim --stores 6 --weeks 4            # quiet stores
    python -m footfall.scripts.alertsim --stores 3 --weeks 1 --incidents  # one incident per store
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from footfall.operators.alerting.alerts import Alert
from footfall.operators.pipeline.forecast_stage import ForecastsAndAlerts
from footfall.operators.pipeline.stage import AlertOutput, StageError
from footfall.operators.pipeline.store import StoreParams
from footfall.operators.pipeline.store_pipeline import StorePipeline
from footfall.schemas.events import Limits
from footfall.schemas.messages import decode_message
from footfall.schemas.privacy import Pseudonymizer
from footfall.scripts.simulation import Anomaly, StoreProfile, generate, make_stores, rostered

__all__ = ["SimulatedAlerts", "incidents_for", "simulated_alerts"]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WARMUP_DAYS = 15  # the watches judge quietly for 14 days; a day more for their first forecasts


@dataclass
class SimulatedAlerts:
    """Every alert change per store, and when the judged period starts."""

    judged_from_ms: int
    changes: dict[str, list[Alert]] = field(default_factory=dict)

    def opened(self, store_id: str) -> list[Alert]:
        return [a for a in self.changes.get(store_id, []) if a.state == "opened"]


def incidents_for(stores: Sequence[StoreProfile], day_start_ms: int) -> list[Anomaly]:
    """One incident per store on the day starting at `day_start_ms` (UTC), at its local late morning.

    In turn: a surge (3x arrivals for 2 hours), a drop (arrivals a quarter for 3 hours), a
    counter stuck at zero (3 hours).
    """
    import zoneinfo

    out = []
    for i, store in enumerate(stores):
        zone = zoneinfo.ZoneInfo(store.timezone)
        local = dt.datetime.fromtimestamp(day_start_ms / 1000, zone).date()
        while not store.opening_hours[local.weekday()]:
            local += dt.timedelta(days=1)  # a day it opens
        opening = store.opening_hours[local.weekday()][0]
        opens = dt.datetime.combine(local, dt.time(int(opening), round(opening % 1 * 60)), zone)
        start = int(opens.timestamp() * 1000) + 2 * HOUR_MS
        kind, factor, hours = (("surge", 3.0, 2), ("drop", 4.0, 3), ("stuck_zero", 3.0, 3))[i % 3]
        out.append(Anomaly(store.store_id, kind, start, start + hours * HOUR_MS, factor))
    return out


def simulated_alerts(stores: Sequence[StoreProfile], start_ms: int, end_ms: int, seed: int = 7,
                     anomalies: Sequence[Anomaly] = (), bucket_ms: int = 900_000, horizon: int = 96,
                     batch_size: int = 20) -> SimulatedAlerts:
    """Run the simulator's messages through the worker's operators; collect alert changes per store."""
    stages = [ForecastsAndAlerts(horizon=horizon, queue_target_s=600.0)]
    pipelines = {s.store_id: StorePipeline(s.store_id, StoreParams(bucket_ms=bucket_ms, tz=s.timezone), stages,
                                           vertical=s.vertical) for s in stores}
    pseudonymize = Pseudonymizer(b"simulated-alerts-key-0123456789")
    limits = Limits(max_future_ms=10 * 365 * DAY_MS)
    result = SimulatedAlerts(start_ms + WARMUP_DAYS * DAY_MS, {s.store_id: [] for s in stores})
    for message in generate(stores, start_ms=start_ms, end_ms=end_ms, seed=seed, anomalies=anomalies,
                            batch_size=batch_size, chunk_ms=DAY_MS):
        decoded = decode_message(message.payload, now_ms=message.ts_ms, limits=limits, pseudonymize=pseudonymize)
        touched = set()
        for event in decoded.events:
            pipelines[event.store_id].update(event)
            touched.add(event.store_id)
        for store_id in touched:
            # Early warnings after every message, not once a second as the worker: the strictest case.
            for output in pipelines[store_id].pop_outputs(live=True):
                if isinstance(output, StageError):
                    raise RuntimeError(f"{store_id}: {output.error}\n{output.details.get('traceback', '')}")
                if isinstance(output, AlertOutput):
                    result.changes[store_id].append(output.alert)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", type=int, default=6)
    parser.add_argument("--weeks", type=int, default=4, help="weeks judged after the warm-up (default 4)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--rate", type=float, default=1.0, help="arrival rates times this (default 1)")
    parser.add_argument("--incidents", action="store_true", help="one incident per store, first judged day")
    args = parser.parse_args(argv)
    stores = [rostered(dataclasses.replace(p, base_rate_per_h=p.base_rate_per_h * args.rate), args.seed)
              for p in make_stores(args.stores, seed=args.seed)]
    start_ms = 1_767_571_200_000  # 2026-01-05, a Monday
    judged = start_ms + WARMUP_DAYS * DAY_MS
    end_ms = judged + args.weeks * 7 * DAY_MS
    anomalies = incidents_for(stores, judged + DAY_MS) if args.incidents else []
    run = simulated_alerts(stores, start_ms, end_ms, seed=args.seed, anomalies=anomalies)
    doc: dict[str, Any] = {"stores": {}, "weeks": args.weeks, "incidents": [vars(a) if hasattr(a, "__dict__") else
                                                                           {"store_id": a.store_id, "kind": a.kind,
                                                                            "start_ms": a.start_ms, "end_ms": a.end_ms}
                                                                           for a in anomalies]}
    for store in stores:
        opened = [a for a in run.opened(store.store_id) if a.started_ms >= judged]
        doc["stores"][store.store_id] = {
            "vertical": store.vertical, "opened": len(opened), "per_week": len(opened) / args.weeks,
            "alerts": [{"kind": a.kind, "severity": a.severity, "started": dt.datetime.fromtimestamp(
                a.started_ms / 1000, dt.UTC).isoformat(), "explanation": a.explanation} for a in opened],
        }
    json.dump(doc, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
