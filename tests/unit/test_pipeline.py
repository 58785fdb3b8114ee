"""StorePipeline: the same outputs as the flow and models assembled by hand, through restarts and failing stages.

The reference is the sequence every caller used to assemble itself: `StoreFlow.update` per
event, then per closed bucket `StoreModels.learn_bucket` with the store's occupancy and queue
wait, then per open bucket touched `check_partial`. The pipeline must give exactly what that
gives, in the same order, also when its state is saved and restored mid-stream.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest

from footfall.operators.pipeline.forecast_stage import ForecastsAndAlerts
from footfall.operators.pipeline.persistence import read_stage_value, read_store_value, stage_value, store_value
from footfall.operators.pipeline.staffing_stage import StaffingAdvice
from footfall.operators.pipeline.stage import AlertOutput, BucketOutput, ForecastOutput, LiveOutput, StageError
from footfall.operators.pipeline.store import StoreFlow, StoreParams
from footfall.operators.pipeline.store_models import StoreModels
from footfall.operators.pipeline.store_pipeline import StorePipeline
from footfall.schemas.events import Limits, QueueEvent
from footfall.schemas.messages import decode_message
from footfall.schemas.privacy import Pseudonymizer
from footfall.scripts.simulation import generate, make_stores, rostered

DAY_MS = 86_400_000
MONDAY = 1_767_571_200_000  # 2026-01-05 00:00 UTC
HORIZON = 8


def simulated_messages(days: int = 3, seed: int = 4) -> tuple[list, list]:
    stores = [rostered(dataclasses.replace(p, base_rate_per_h=p.base_rate_per_h * 2), seed)
              for p in make_stores(3, seed=seed)]
    pseudonymize = Pseudonymizer(b"pipeline-test-key-0123456789")
    limits = Limits(max_future_ms=10 * 365 * DAY_MS)
    messages = []
    for message in generate(stores, start_ms=MONDAY, end_ms=MONDAY + days * DAY_MS, seed=seed, batch_size=5):
        messages.append(decode_message(message.payload, now_ms=message.ts_ms, limits=limits,
                                       pseudonymize=pseudonymize).events)
    return stores, messages


def by_hand(stores: list, messages: list) -> dict[str, list[tuple[Any, ...]]]:
    """The reference: flow and models assembled by hand, as the worker did before the pipeline."""
    flows = {s.store_id: StoreFlow(StoreParams(tz=s.timezone)) for s in stores}
    models: dict[str, StoreModels] = {}
    vertical: dict[str, str | None] = {s.store_id: None for s in stores}
    out: dict[str, list[tuple[Any, ...]]] = {s.store_id: [] for s in stores}
    for events in messages:
        touched = []
        for event in events:
            if flows[event.store_id].update(event) == "counted" and event.vertical:
                vertical[event.store_id] = event.vertical
            touched.append(event.store_id)
        for store_id in dict.fromkeys(touched):
            flow = flows[store_id]
            for start, kpis in flow.pop_closed():
                out[store_id].append(("bucket", start, orjson.dumps(kpis)))
                m = models.get(store_id)
                if m is None:
                    m = models[store_id] = StoreModels(store_id, flow.params.bucket_ms, HORIZON, flow.params.tz,
                                                       vertical[store_id], queue_target_s=600.0)
                m.set_vertical(vertical[store_id])
                queue_wait_s = flow.queues.get()["total"].get("est_wait_s") if flow.queues is not None else None
                outcome = m.learn_bucket(start, kpis, occupancy=float(flow.occupancy.get()), queue_wait_s=queue_wait_s)
                out[store_id] += [("alert", a.alert_id, a.state, a.updated_ms) for a in outcome.alerts]
                out[store_id] += [("forecast", p.series, p.forecast.made_at_ms, tuple(p.forecast.values))
                                  for p in outcome.forecasts]
            for start, kpis, _ in flow.pop_touched():
                out[store_id].append(("open", start, orjson.dumps(kpis)))
                if store_id in models:
                    out[store_id] += [("alert", a.alert_id, a.state, a.updated_ms)
                                      for a in models[store_id].check_partial(flow.watermark_ms, start, kpis)]
    return out


def as_tuple(output: Any) -> tuple[Any, ...]:
    if isinstance(output, BucketOutput):
        return ("bucket" if output.status == "closed" else "open", output.start_ms, orjson.dumps(dict(output.kpis)))
    if isinstance(output, AlertOutput):
        return ("alert", output.alert.alert_id, output.alert.state, output.alert.updated_ms)
    if isinstance(output, ForecastOutput):
        f = output.published.forecast
        return ("forecast", output.published.series, f.made_at_ms, tuple(f.values))
    raise AssertionError(f"unexpected output {output!r}")


def through_pipeline(stores: list, messages: list, restart_every: int = 0) -> dict[str, list[tuple[Any, ...]]]:
    stages = [ForecastsAndAlerts(horizon=HORIZON, queue_target_s=600.0)]
    params = {s.store_id: StoreParams(tz=s.timezone) for s in stores}
    pipelines = {s.store_id: StorePipeline(s.store_id, params[s.store_id], stages) for s in stores}
    out: dict[str, list[tuple[Any, ...]]] = {s.store_id: [] for s in stores}
    for i, events in enumerate(messages):
        touched = []
        for event in events:
            pipelines[event.store_id].update(event)
            touched.append(event.store_id)
        for store_id in dict.fromkeys(touched):
            for output in pipelines[store_id].pop_outputs(live=True):
                if not isinstance(output, LiveOutput):
                    out[store_id].append(as_tuple(output))
        if restart_every and i % restart_every == restart_every - 1:
            # Saved and read back as the worker does (JSON through the changelog), then rebuilt.
            for store_id, p in pipelines.items():
                saved = read_store_value(store_id, orjson.loads(orjson.dumps(
                    store_value(store_id, p.to_state(), 0, i, {}))))
                stage_states = {name: read_stage_value(store_id, name, orjson.loads(orjson.dumps(
                    stage_value(name, state)))).state for name, state in p.stage_states().items()}
                pipelines[store_id] = StorePipeline.from_state(store_id, params[store_id], stages, saved.state,
                                                               stage_states)
    return out


@pytest.fixture(scope="module")
def simulated() -> tuple[list, list]:
    return simulated_messages()


def test_pipeline_gives_what_the_hand_assembled_sequence_gives(simulated):
    stores, messages = simulated
    want = by_hand(stores, messages)
    got = through_pipeline(stores, messages)
    for store in stores:
        assert sum(1 for o in want[store.store_id] if o[0] == "forecast") > 100, "the run must reach the models"
        assert got[store.store_id] == want[store.store_id], store.store_id


def test_a_pipeline_saved_and_restored_mid_stream_gives_the_same(simulated):
    stores, messages = simulated
    assert through_pipeline(stores, messages, restart_every=97) == by_hand(stores, messages)


@dataclasses.dataclass(frozen=True)
class _Failing:
    """A stage that counts closed buckets and raises at the one starting at `fail_at_ms`."""

    name: ClassVar[str] = "failing"
    fail_at_ms: int

    def build(self, context: Any, state: Any) -> Any:
        return _FailingStage(self.fail_at_ms, state or 0)


class _FailingStage:
    def __init__(self, fail_at_ms: int, seen: int) -> None:
        self.fail_at_ms = fail_at_ms
        self.seen = seen

    def on_event(self, event: Any, context: Any) -> None:
        return None

    def on_bucket_closed(self, bucket: Any, context: Any) -> list:
        self.seen += 1
        if bucket.start_ms == self.fail_at_ms:
            raise ZeroDivisionError("boom")
        return []

    def on_partial(self, bucket: Any, context: Any) -> list:
        return []

    def to_state(self) -> int:
        return self.seen


def test_a_failing_stage_starts_over_and_the_counts_stand(simulated):
    stores, messages = simulated
    store = stores[0]
    ours = [[e for e in events if e.store_id == store.store_id] for events in messages[:400]]
    plain = StorePipeline(store.store_id, StoreParams(tz=store.timezone))
    plain_out = []
    for events in ours:
        for event in events:
            plain.update(event)
        plain_out += plain.pop_outputs()
    failing = StorePipeline(store.store_id, StoreParams(tz=store.timezone), [_Failing(plain_out[1].start_ms)])
    failing_out = []
    for events in ours:
        for event in events:
            failing.update(event)
        failing_out += failing.pop_outputs()
    errors = [o for o in failing_out if isinstance(o, StageError)]
    assert len(errors) == 1 and errors[0].restarted and "ZeroDivisionError: boom" in errors[0].error
    assert [o for o in failing_out if not isinstance(o, StageError)] == plain_out
    assert len(plain_out) >= 3
    assert failing.stage_states()["failing"] == len(plain_out) - 2  # built again from nothing after the failure


def test_a_stage_state_that_cannot_be_read_starts_the_stage_over_and_says_so(simulated):
    stores, messages = simulated
    store = stores[0]
    stages = [ForecastsAndAlerts(horizon=HORIZON)]
    pipeline = StorePipeline(store.store_id, StoreParams(tz=store.timezone), stages,
                             stage_states={"forecast": b"not a saved model"})
    fresh = StorePipeline(store.store_id, StoreParams(tz=store.timezone), stages)
    got, want = [], []
    for events in messages[:300]:
        for event in events:
            if event.store_id == store.store_id:
                pipeline.update(event)
                fresh.update(event)
        got += pipeline.pop_outputs()
        want += fresh.pop_outputs()
    error, *rest = got
    assert isinstance(error, StageError) and error.moment == "restore" and error.restarted
    assert [as_tuple(o) for o in rest] == [as_tuple(o) for o in want]
    assert any(isinstance(o, ForecastOutput) for o in rest)


def test_a_store_saved_by_the_previous_version_continues_exactly():
    # tests/data/legacy_v1_store.json: a store's value and its models as the previous version saved them
    # (state version 1: two-letter keys, models pickled under ~fc: with the modules' old paths), after
    # two simulated days. Read back, the pipeline must continue exactly as one that never stopped.
    legacy = orjson.loads((Path(__file__).parent.parent / "data" / "legacy_v1_store.json").read_bytes())
    store_id, tz = legacy["store_id"], legacy["tz"]
    saved = read_store_value(store_id, legacy["store"])
    assert (saved.partition, saved.offset, saved.rerouted) == (1, 99, {"0": 5})
    models = read_stage_value(store_id, "forecast", legacy["fc"]).state
    stages = [ForecastsAndAlerts(horizon=HORIZON, queue_target_s=600.0)]
    restored = StorePipeline.from_state(store_id, StoreParams(tz=tz), stages, saved.state, {"forecast": models})
    reference = StorePipeline(store_id, StoreParams(tz=tz), stages)
    _, first_two_days = simulated_messages(days=2)  # what the previous version's run was fed
    for events in first_two_days:
        for event in events:
            if event.store_id == store_id:
                reference.update(event)
        reference.pop_outputs()
    # The previous version kept no closed buckets (for restating) nor their references: the rest is equal.
    def without_restating(state: dict) -> dict:
        buckets = {k: v for k, v in state["buckets"].items() if k not in ("closed", "ahead", "restated")}
        return {**{k: v for k, v in state.items() if k not in ("refs", "restated")}, "buckets": buckets}

    assert without_restating(restored.flow.to_state()) == without_restating(reference.flow.to_state())
    assert reference.flow.last_closed == legacy["last_closed"]
    _, three_days = simulated_messages(days=3)
    got, want = [], []
    for events in three_days:
        ours = [e for e in events if e.store_id == store_id and e.ts_ms >= MONDAY + 2 * DAY_MS]
        for event in ours:
            assert restored.update(event) == reference.update(event)
        got += [as_tuple(o) for o in restored.pop_outputs()]
        want += [as_tuple(o) for o in reference.pop_outputs()]
    assert sum(1 for o in want if o[0] == "forecast") > 50
    assert got == want


def test_only_stages_that_changed_are_saved_and_forecasts_off_keep_the_models(simulated):
    stores, messages = simulated
    bank = next(s for s in stores if s.vertical == "bank")
    stages = [ForecastsAndAlerts(horizon=HORIZON), StaffingAdvice()]
    pipeline = StorePipeline(bank.store_id, StoreParams(tz=bank.timezone), stages)
    queue_seen = False
    half = len(messages) // 2
    for events in messages[:half]:
        for event in events:
            if event.store_id == bank.store_id:
                pipeline.update(event)
                queue_seen = queue_seen or isinstance(event, QueueEvent)
        pipeline.pop_outputs()
    assert queue_seen
    assert set(pipeline.stage_states(changed_only=True)) == {"forecast", "staffing"}
    pipeline.mark_stages_saved()
    assert pipeline.stage_states(changed_only=True) == {}
    models = pipeline.stage_states()["forecast"]
    # Forecasts turned off: the saved models are loaded, never learn, and are never written over.
    off = StorePipeline.from_state(bank.store_id, StoreParams(tz=bank.timezone),
                                   [ForecastsAndAlerts(horizon=0), StaffingAdvice()], pipeline.to_state(),
                                   pipeline.stage_states())
    for events in messages[half:]:
        for event in events:
            if event.store_id == bank.store_id and not isinstance(event, QueueEvent):
                off.update(event)
        assert not any(isinstance(o, StageError) for o in off.pop_outputs())
    assert "forecast" not in off.stage_states(changed_only=True)
    # Unchanged: pickled again, the models kept give the same bytes as the saved ones loaded and pickled again.
    assert off.stage_states()["forecast"] == StoreModels.from_bytes(models).to_bytes()
