"""CPU per event of the worker's own work, without Kafka or Redis: decoding, and the store pipelines.

`footfall bench` measures whole pipes on a broker; most of what separates the worker from a
plain Faust agent is what this measures apart: `schemas.decode_message` (parse, validate,
pseudonymise) and `StorePipeline.update` with the worker's stages, each closed bucket's stage
work included (`pop_outputs` once per message, as the intake calls it). The traffic is
`footfall bench`'s (door events of 8 stores, one second apart, one per message or 100 per
message) or the simulator's (every kind, busy stores). Each phase runs `--repeat` times on
fresh pipelines and the least CPU time (`time.process_time`) is reported: shared machines
are noisy, and the least is the run least disturbed.

Run it twice, before and after a change, to compare (nothing else runs in the meantime).

Examples
--------
>>> figures = measure(events=2_000, repeat=1, traffic="door")
>>> sorted(figures), all(v > 0 for v in figures.values())
(['door batch decode', 'door batch pipeline', 'door single decode', 'door single pipeline'], True)

"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from footfall.operators.pipeline.store_pipeline import StorePipeline
from footfall.schemas.events import Limits
from footfall.schemas.messages import decode_message
from footfall.schemas.privacy import Pseudonymizer
from footfall.scripts.bench import EventFactory
from footfall.scripts.simulation import generate, make_stores
from footfall.stream.settings import Settings
from footfall.stream.stores import pipeline_params, stage_factories

__all__ = ["measure"]

SECRET = "hot-path-measurement-secret-0123456789"


def _least_cpu(run: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best


def _door_messages(events: int, per_message: int) -> list[bytes]:
    factory = EventFactory(stores=8)
    start_ms = int(dt.datetime(2026, 3, 2, 8, tzinfo=dt.UTC).timestamp() * 1000)
    messages = []
    for first in range(0, events, per_message):
        ts = [start_ms + (first + i) * 1000 for i in range(min(per_message, events - first))]
        messages.append(factory.message("h", first, (first // per_message) % 8, ts)[1])
    return messages


def _simulated_messages(events: int, per_message: int) -> list[bytes]:
    stores = [dataclasses.replace(p, base_rate_per_h=p.base_rate_per_h * 3) for p in make_stores(6, seed=3)]
    start_ms = int(dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp() * 1000)
    messages, total = [], 0
    for message in generate(stores, start_ms=start_ms, seed=3, batch_size=per_message):
        messages.append(message.payload)
        total += message.payload.count(b'"event_id"')
        if total >= events:
            break
    return messages


def measure(events: int = 30_000, repeat: int = 5, traffic: str = "both") -> dict[str, float]:
    """µs of CPU per event, by `"<traffic> <single|batch> <decode|pipeline>"`."""
    settings = Settings.from_env({"FOOTFALL_PSEUDONYM_SECRET": SECRET})
    stages = stage_factories(settings)
    pseudonymize = Pseudonymizer(SECRET.encode())
    limits = Limits(max_future_ms=100 * 365 * 86_400_000)  # simulated times lie ahead of the clock
    now_ms = int(time.time() * 1000)
    makers = {"door": _door_messages, "simulated": _simulated_messages}
    figures: dict[str, float] = {}
    for name in (["door", "simulated"] if traffic == "both" else [traffic]):
        for mode, per_message in (("single", 1), ("batch", 100)):
            messages = makers[name](events, per_message)
            decoded = [decode_message(m, now_ms=now_ms, limits=limits, pseudonymize=pseudonymize).events
                       for m in messages]
            n = sum(len(d) for d in decoded)

            def decode_all(messages: list[bytes] = messages) -> None:
                for m in messages:
                    decode_message(m, now_ms=now_ms, limits=limits, pseudonymize=pseudonymize)

            def apply_all(decoded: list[list[Any]] = decoded) -> None:
                pipelines: dict[str, StorePipeline] = {}
                for events_of_message in decoded:
                    touched = set()
                    for event in events_of_message:
                        pipeline = pipelines.get(event.store_id)
                        if pipeline is None:
                            pipeline = pipelines[event.store_id] = StorePipeline(
                                event.store_id, pipeline_params(settings, event.store_id), stages)
                        pipeline.update(event)
                        touched.add(pipeline)
                    for pipeline in touched:
                        pipeline.pop_outputs()

            figures[f"{name} {mode} decode"] = _least_cpu(decode_all, repeat) / n * 1e6
            figures[f"{name} {mode} pipeline"] = _least_cpu(apply_all, repeat) / n * 1e6
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m footfall.scripts.hotpath", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=30_000, help="events per traffic and mode (default 30000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each phase; the least CPU counts (default 5)")
    parser.add_argument("--traffic", choices=("door", "simulated", "both"), default="both")
    args = parser.parse_args(argv)
    figures = measure(args.events, args.repeat, args.traffic)
    print(f"CPU µs per event (least of {args.repeat} runs, {args.events:,} events each):")
    for key, value in figures.items():
        print(f"  {key:<28} {value:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
