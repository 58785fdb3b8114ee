"""A store's state saved with its JSON-bytes parts embedded is the same bytes as saved from the parsed state.

The reference is the plain `to_state()` serialised by orjson; the embedded one (`to_state(embed=True)`,
what the worker saves) must give the same bytes at every point of a simulated day of six stores, with
late events that restate closed buckets and a store whose saved value is loaded again midway.
"""

from __future__ import annotations

import datetime as dt
import random

import orjson

from footfall.operators.pipeline.persistence import store_value
from footfall.operators.pipeline.store import StoreParams
from footfall.operators.pipeline.store_pipeline import StorePipeline
from footfall.schemas.events import Limits
from footfall.schemas.messages import decode_message
from footfall.schemas.privacy import Pseudonymizer
from footfall.scripts.simulation import generate, make_stores

HOUR_MS = 3_600_000


def saved(pipeline: StorePipeline, embed: bool) -> bytes:
    return orjson.dumps(store_value(pipeline.store_id, pipeline.to_state(embed=embed), 0, 7, {"x": 1}))


def test_embedded_state_saves_the_same_bytes_as_the_parsed_state() -> None:
    start_ms = int(dt.datetime(2026, 3, 2, tzinfo=dt.UTC).timestamp() * 1000)
    profiles = make_stores(6, seed=5)
    pipelines = {p.store_id: StorePipeline(p.store_id, StoreParams(tz=p.timezone), vertical=p.vertical)
                 for p in profiles}
    pseudonymize = Pseudonymizer(b"embedded-state-test-key")
    limits = Limits(max_future_ms=10 * 365 * 24 * HOUR_MS)
    rng = random.Random(5)
    held_back = []
    compared = restated = 0
    messages = generate(profiles, start_ms=start_ms, end_ms=start_ms + 26 * HOUR_MS, seed=5)
    for i, message in enumerate(messages):
        for event in decode_message(message.payload, now_ms=message.ts_ms, limits=limits,
                                    pseudonymize=pseudonymize).events:
            if rng.random() < 0.01:
                held_back.append(event)  # sent again later, to restate its bucket once closed
                continue
            pipelines[event.store_id].update(event)
        if held_back and rng.random() < 0.005:
            for event in held_back:
                restated += pipelines[event.store_id].update(event) == "restated"
            held_back.clear()
            # Saved before the restated buckets are handed out: the kept buckets are parsed then.
            for store_id, pipeline in pipelines.items():
                assert saved(pipeline, embed=True) == saved(pipeline, embed=False), (i, store_id)
        for pipeline in pipelines.values():
            pipeline.pop_outputs(live=rng.random() < 0.1)
        if i % 397 == 0:
            for store_id, pipeline in pipelines.items():
                assert saved(pipeline, embed=True) == saved(pipeline, embed=False), (i, store_id)
                compared += 1
            if i % (397 * 8) == 0:
                store_id = rng.choice(sorted(pipelines))
                p = pipelines[store_id]
                pipelines[store_id] = StorePipeline.from_state(store_id, p.params, [],
                                                               orjson.loads(saved(p, embed=True)))
    assert compared > 100 and restated > 10
