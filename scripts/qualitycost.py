"""What the data-quality stage costs: µs per event, µs per closed bucket, bytes of state, for a simulated day.

One store with `--sensors` door counters, each sending an interval report every minute
(`interval_s` 60) and a heartbeat every 5 minutes, one of them silent from 10:00 to 12:00,
over one local day of 15-minute buckets (Europe/London). The stage alone is timed
(`on_event` and `on_bucket_closed`, `timeit`, best of `--repeat` runs over the whole
day); the state is `to_state()` as JSON, at its largest after any event of the day.

    .venv/bin/python -m footfall.scripts.qualitycost --sensors 4
"""

from __future__ import annotations

import argparse
import json
import timeit
from typing import Any

from footfall.operators.pipeline.quality_stage import DataQuality
from footfall.operators.pipeline.stage import ClosedBucket, StoreContext
from footfall.schemas.events import DoorEvent, Event, Heartbeat

__all__ = ["day_of_events", "measure"]

MIN = 60_000
BUCKET = 15 * MIN
DAY_START = 1_790_118_000_000  # 2026-09-23 00:00 BST


def day_of_events(sensors: int) -> list[tuple[int, list[Event]]]:
    """Per bucket of the day, its start and its events, in time order."""
    env = {"store_id": "s1", "region": "north", "zone": None, "vertical": "retail"}
    out = []
    for k in range(96):
        start = DAY_START + k * BUCKET
        events: list[Event] = []
        for minute in range(15):
            ts = start + minute * MIN
            for i in range(sensors):
                if i == 0 and 40 <= k < 48:
                    continue  # sensor 0 silent 10:00-12:00
                events.append(DoorEvent(**env, event_id=f"d{i}-{ts}", ts_ms=ts + 137 * i, door_id=f"door{i}",
                                        sensor_id=f"c{i}", count_in=2, count_out=1, interval_s=60))
                if minute % 5 == 0:
                    events.append(Heartbeat(**env, event_id=f"h{i}-{ts}", ts_ms=ts + 137 * i, sensor_id=f"c{i}",
                                            status="ok", device_id=None))
        out.append((start, events))
    return out


def measure(sensors: int = 4, repeat: int = 5) -> dict[str, Any]:
    """µs per event and per closed bucket (best of `repeat` days), and the state's JSON size in bytes."""
    day = day_of_events(sensors)
    ctx = StoreContext("s1", BUCKET, "Europe/London", "north", "retail")
    config = DataQuality()
    n_events = sum(len(events) for _, events in day)
    buckets = [ClosedBucket(start, BUCKET, {"door_in": 30 * sensors, "door_out": 15 * sensors}) for start, _ in day]

    def events_only() -> None:
        stage = config.build(ctx, None)
        for _, events in day:
            for event in events:
                stage.on_event(event, ctx)

    def whole_day() -> None:
        stage = config.build(ctx, None)
        for (_, events), bucket in zip(day, buckets, strict=True):
            for event in events:
                stage.on_event(event, ctx)
            stage.on_bucket_closed(bucket, ctx)

    per_event_s = min(timeit.repeat(events_only, number=1, repeat=repeat)) / n_events
    whole_s = min(timeit.repeat(whole_day, number=1, repeat=repeat))
    per_bucket_s = (whole_s - per_event_s * n_events) / len(buckets)

    stage = config.build(ctx, None)
    largest, qualities, uptime = 0, {}, None
    for (_, events), bucket in zip(day, buckets, strict=True):
        for event in events:
            stage.on_event(event, ctx)
        largest = max(largest, len(json.dumps(stage.to_state())))
        for out in stage.on_bucket_closed(bucket, ctx):
            qualities[out.quality] = qualities.get(out.quality, 0) + 1
            uptime = out.uptime or uptime
    return {"sensors": sensors, "events": n_events, "buckets": len(buckets),
            "us_per_event": round(per_event_s * 1e6, 2), "us_per_closed_bucket": round(per_bucket_s * 1e6, 1),
            "state_bytes_max": largest, "state_bytes_end_of_day": len(json.dumps(stage.to_state())),
            "qualities": qualities, "uptime": uptime}


def main(argv: list[str] | None = None) -> None:
    """Print what the data-quality stage costs over a simulated day (JSON)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--sensors", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.sensors, args.repeat), indent=1))


if __name__ == "__main__":
    main()
