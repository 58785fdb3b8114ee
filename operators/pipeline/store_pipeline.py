"""One store's pipeline: its flow state and every per-store capability, driven by one object.

`StorePipeline` is what the worker, the offline evaluations, the simulations and
the state-size measurements all drive, so what they measure is what runs:

1. `update(event)` counts an event into the store's flow (`operators.pipeline.store.StoreFlow`):
   `"counted"`, `"restated"` (into a bucket already handed out, within the restate horizon),
   `"duplicate"` (dropped) or `"late"` (its bucket closed longer than the horizon ago); each
   counted event also reaches every stage's `on_event` (a restating one does not: the stages
   saw its bucket at its close);
2. `advance(ts_ms)` moves a silent store's event time on (its buckets close, nothing counts);
3. `pop_outputs()` hands out, oldest first, each bucket closed since the last call
   (`BucketOutput`, status `closed`) followed by what every stage gave for it
   (`on_bucket_closed`: forecasts and alert changes, ...); with `live=True` also the open
   buckets counted into since the last such call (`BucketOutput`, status `open`, and
   each stage's `on_partial`, e.g. early warnings) and the store's `LiveOutput`. A closed
   bucket restated by late data comes out again, through the same path, as its next revision
   (`BucketOutput`, status `closed`, `revision` 2, 3, ..., `restated`); the stages are not
   called for it (forecasts and alerts learn each bucket once).

The stages are `StageFactory`s (`operators.pipeline.stage`); `STAGES` lists the built-in
ones, in the order they run. Adding a capability is a stage module and one line
there. A stage that raises does not cost the store its counts: it is built again
from nothing and a `StageError` says so among the outputs.

State: `to_state()` is the flow's plain data with the store's region and vertical;
each stage's state is apart (`stage_states()`), since models change once a bucket
while the flow changes with every event and each is saved when it changed.

Examples
--------
>>> from footfall.operators.pipeline.forecast_stage import ForecastsAndAlerts
>>> from footfall.operators.pipeline.store import StoreParams
>>> from footfall.schemas.events import DoorEvent
>>> def door(i, ts_ms):
...     return DoorEvent(event_id=f"d{i}", store_id="s1", ts_ms=ts_ms, region="north", zone=None,
...                      vertical="retail", door_id="main", sensor_id="c1", count_in=1, count_out=0, interval_s=0)
>>> hour = 3_600_000
>>> pipeline = StorePipeline("s1", StoreParams(bucket_ms=hour, grace_ms=0), [ForecastsAndAlerts(horizon=2)])
>>> t0 = 1_763_974_800_000  # 2025-11-24T09:00:00Z
>>> [pipeline.update(door(i, t0 + i * 1_200_000)) for i in range(4)]
['counted', 'counted', 'counted', 'counted']
>>> [(o.kind, getattr(o, "status", None)) for o in pipeline.pop_outputs()]
[('bucket', 'closed'), ('forecast', None), ('forecast', None)]
>>> [(o.kind, getattr(o, "status", None)) for o in pipeline.pop_outputs(live=True)]
[('bucket', 'open'), ('live', None)]
>>> restored = StorePipeline.from_state("s1", StoreParams(bucket_ms=hour, grace_ms=0),
...                                     [ForecastsAndAlerts(horizon=2)], pipeline.to_state(),
...                                     pipeline.stage_states())
>>> restored.flow.bucket(t0 + hour)["arrivals"], restored.vertical
(1, 'retail')

"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from footfall.operators.pipeline.forecast_stage import ForecastsAndAlerts
from footfall.operators.pipeline.insights_stage import Insights
from footfall.operators.pipeline.quality_stage import DataQuality
from footfall.operators.pipeline.segments_stage import CustomerSegments
from footfall.operators.pipeline.staffing_stage import StaffingAdvice
from footfall.operators.pipeline.stage import (
    BucketOutput,
    ClosedBucket,
    LiveOutput,
    OpenBucket,
    Output,
    Stage,
    StageError,
    StageFactory,
    StoreContext,
)
from footfall.operators.pipeline.store import StoreFlow, StoreParams
from footfall.operators.quality.grade import INCOMPLETE
from footfall.schemas.events import Event

__all__ = ["HELD_BACK", "STAGES", "Fate", "StorePipeline"]

#: The KPIs held back on incomplete door counts (`quality.grade.INCOMPLETE`): those divided by visitors.
HELD_BACK = ("conversion_rate", "sales_per_visitor")

Fate = Literal["counted", "restated", "duplicate", "late"]

#: The built-in stages, in the order they run: each a `StageFactory` class with `from_settings`. Data quality
#: comes first: the forecasts-and-alerts stage reads its grade of the bucket (`ClosedBucket.earlier`).
STAGES: tuple[type[Any], ...] = (
    DataQuality,
    ForecastsAndAlerts,
    StaffingAdvice,
    CustomerSegments,
    Insights,
)


class StorePipeline:
    """One store's flow and stages (see the module docstring).

    Parameters
    ----------
    store_id
        The store.
    params
        How its events are counted (`StoreParams`).
    stages
        Its capabilities, in the order they run.
    region, vertical
        What is known of the store already (events that name them update them).

    """

    __slots__ = ("_changed", "_factories", "_outputs", "_readers", "flow", "quality", "region", "stages", "store_id",
                 "vertical")

    def __init__(self, store_id: str, params: StoreParams | None = None, stages: Sequence[StageFactory] = (),
                 region: str | None = None, vertical: str | None = None, flow: StoreFlow | None = None,
                 stage_states: Mapping[str, Any] | None = None) -> None:
        self.store_id = store_id
        self.flow = flow if flow is not None else StoreFlow(params)
        self.region = region
        self.vertical = vertical
        self._factories = {factory.name: factory for factory in stages}
        if len(self._factories) != len(stages):
            raise ValueError(f"stage names must be unique: {[f.name for f in stages]}")
        self._changed: set[str] = set()
        self._outputs: list[Output] = []
        self._readers: dict[str, tuple[str, ...]] = {}  # event kind -> the stages whose on_event reads it
        self.quality: str | None = None  # the newest closed bucket's grade (not saved: graded again at the next)
        context = self.context(identity_only=True)
        saved = stage_states or {}
        self.stages: dict[str, Stage] = {}
        for name, factory in self._factories.items():
            try:
                self.stages[name] = factory.build(context, saved.get(name))
            except Exception as exc:  # a saved state this code cannot read: the stage starts over, and says so
                self.stages[name] = factory.build(context, None)
                self._changed.add(name)
                self._outputs.append(StageError(name, "restore", None, f"{type(exc).__name__}: {exc}", True,
                                                {"traceback": traceback.format_exc()}))

    @classmethod
    def _unit_test_params(cls):
        yield {"store_id": "s1"}

    @property
    def params(self) -> StoreParams:
        return self.flow.params

    @property
    def watermark_ms(self) -> int | None:
        return self.flow.watermark_ms

    def context(self, identity_only: bool = False, queues: dict[str, Any] | None = None) -> StoreContext:
        """The store as a stage sees it now; `identity_only`: without occupancy and queues (cheap, per event).

        `queues`: the queue KPIs as just read (`flow.queues.get()`, in `flow.live()`), not read again.
        """
        flow = self.flow
        if identity_only:
            return StoreContext(self.store_id, flow.params.bucket_ms, flow.params.tz, self.region, self.vertical,
                                flow.watermark_ms)
        if queues is None and flow.queues is not None:
            queues = flow.queues.get()
        queue = queues["total"] if queues is not None else {}
        return StoreContext(self.store_id, flow.params.bucket_ms, flow.params.tz, self.region, self.vertical,
                            flow.watermark_ms, float(flow.occupancy.get()), queue.get("est_wait_s"),
                            queue.get("counters_active"))

    # -- events -----------------------------------------------------------------------------------

    def update(self, event: Event) -> Fate:
        """Count one event; counted ones also reach every stage."""
        fate: Fate = self.flow.update(event)  # type: ignore[assignment]
        if fate != "counted":
            return fate  # a restating event too: its bucket's stages ran at its close
        if event.region:
            self.region = event.region
        if event.vertical:
            self.vertical = event.vertical
        readers = self._readers.get(event.kind)
        if readers is None:
            readers = self._readers[event.kind] = self._readers_of(event.kind)
        if readers:
            # Occupancy and queues are not read per event (a queue's KPIs cost tens of µs): a stage
            # reads them at a bucket's close.
            context = self.context(identity_only=True)
            for name in readers:
                self._call(name, "event", None, self.stages[name].on_event, event, context)
        return fate

    def _readers_of(self, kind: str) -> tuple[str, ...]:
        """The stages, in order, whose `on_event` reads events of `kind` (`Stage.event_kinds`; none: all)."""
        return tuple(name for name, stage in self.stages.items()
                     if getattr(stage, "event_kinds", None) is None or kind in stage.event_kinds)

    def late_by_ms(self, ts_ms: int) -> int:
        """How far past its bucket's close an event at `ts_ms` is (for a `late` event's reason)."""
        return self.flow.buckets.late_by_ms(ts_ms)

    def advance(self, ts_ms: int) -> None:
        """Let event time reach `ts_ms` with no events (an idle store): buckets close, nothing counts."""
        self.flow.advance(ts_ms)

    def next_close_ms(self) -> int | None:
        """Watermark at which the oldest bucket not handed out yet closes (None before any event)."""
        return self.flow.next_close_ms()

    # -- outputs ----------------------------------------------------------------------------------

    def pop_outputs(self, live: bool = False) -> list[Output]:
        """Closed buckets and what the stages gave for them; with `live`, open buckets and the store now."""
        flow = self.flow
        for start_ms, kpis, revision in flow.pop_restated():
            self._outputs.append(BucketOutput(start_ms, kpis, "closed", flow.watermark_ms, None, revision, True))
        for start_ms, kpis in flow.pop_closed():
            self._outputs.append(BucketOutput(start_ms, kpis, "closed", flow.watermark_ms, None, 1))
            if self.stages:
                first, context = len(self._outputs), self._context_or_error(start_ms)
                for name, stage in self.stages.items():
                    # Each stage sees what the stages before it gave for this bucket (its grade, forecasts, ...).
                    bucket = ClosedBucket(start_ms, flow.params.bucket_ms, kpis, tuple(self._outputs[first:]))
                    self._call(name, "bucket_closed", start_ms, stage.on_bucket_closed, bucket, context)
                self._grade(first - 1)
        if live:
            # The store now first: its queue KPIs (tens of µs) serve the stages' context too.
            now = flow.live()
            context = self._context_or_error(None, now["queue"]) if self.stages else None
            for start_ms, kpis, event_id in flow.pop_touched():
                self._outputs.append(BucketOutput(start_ms, kpis, "open", flow.watermark_ms, event_id))
                if context is not None and flow.watermark_ms is not None:
                    partial = OpenBucket(start_ms, flow.params.bucket_ms, kpis, flow.watermark_ms)
                    for name, stage in self.stages.items():
                        self._call(name, "partial", start_ms, stage.on_partial, partial, context)
            self._outputs.append(LiveOutput({**now, "quality": self.quality}))
        out, self._outputs = self._outputs, []
        return out

    def _grade(self, at: int) -> None:
        """Put the data-quality stage's grade on the closed bucket at `self._outputs[at]`; hold back what it spoils.

        With the door counts incomplete (`partial`, `missing`), visitors are undercounted: the KPIs
        divided by them (`HELD_BACK`) would be too high, so they are given as null and named in
        `held_back`; the forecasts-and-alerts stage does not judge such a bucket either.
        """
        bucket = self._outputs[at]
        assert isinstance(bucket, BucketOutput)
        grade = next((o.quality for o in self._outputs[at + 1:] if getattr(o, "kind", None) == "quality"), None)
        if grade is None:
            return
        self.quality = grade
        held = tuple(k for k in HELD_BACK if k in bucket.kpis) if grade in INCOMPLETE else ()
        kpis = {**bucket.kpis, **dict.fromkeys(held)} if held else bucket.kpis
        self._outputs[at] = dataclasses.replace(bucket, kpis=kpis, quality=grade, held_back=held)

    def _context_or_error(self, bucket_start_ms: int | None, queues: dict[str, Any] | None = None) -> StoreContext:
        """The store's context; if reading its occupancy or queues fails, the identity alone, and a StageError."""
        try:
            return self.context(queues=queues)
        except Exception as exc:
            self._outputs.append(StageError("context", "bucket_closed" if bucket_start_ms is not None else "partial",
                                            bucket_start_ms, f"{type(exc).__name__}: {exc}", False,
                                            {"traceback": traceback.format_exc()}))
            return self.context(identity_only=True)

    def _call(self, name: str, moment: str, bucket_start_ms: int | None, method: Any, *args: Any) -> bool:
        """Run one stage call; keep its outputs. A failure starts the stage over (or, partial, skips the call)."""
        try:
            outputs = method(*args)
        except Exception as exc:
            restart = moment != "partial"  # an early warning is a courtesy: never worth the stage's state
            if restart:
                self.stages[name] = self._factories[name].build(self.context(), None)
                self._changed.add(name)
                self._readers.clear()  # the new stage may read other kinds
            self._outputs.append(StageError(name, moment, bucket_start_ms, f"{type(exc).__name__}: {exc}",
                                            restart, {"traceback": traceback.format_exc()}))
            return False
        if outputs:
            self._outputs.extend(outputs)
            return True
        return False

    # -- state ------------------------------------------------------------------------------------

    def to_state(self, embed: bool = False) -> dict[str, Any]:
        """The flow's plain-data state with the store's region and vertical (stages are apart).

        `embed`: for `orjson.dumps` at once (`StoreFlow.to_state`).
        """
        return {"region": self.region, "vertical": self.vertical, "flow": self.flow.to_state(embed)}

    def stage_states(self, changed_only: bool = False) -> dict[str, Any]:
        """Each stage's state by name; with `changed_only`, those changed since `mark_stages_saved`.

        A stage says it changed with its `changed` attribute (one without it counts as changed); a
        stage started over counts as changed until saved.
        """
        names = [n for n, stage in self.stages.items()
                 if not changed_only or n in self._changed or getattr(stage, "changed", True)]
        return {name: self.stages[name].to_state() for name in names}

    def mark_stages_saved(self, names: Sequence[str] | None = None) -> None:
        """The stages' states (all, or `names`) are saved: no longer `changed`."""
        for name in list(self.stages) if names is None else names:
            self._changed.discard(name)
            if hasattr(self.stages[name], "changed"):
                self.stages[name].changed = False  # type: ignore[attr-defined]

    @classmethod
    def from_state(cls, store_id: str, params: StoreParams | None, stages: Sequence[StageFactory],
                   state: Mapping[str, Any] | None, stage_states: Mapping[str, Any] | None = None) -> StorePipeline:
        """A pipeline from `to_state()` and `stage_states()` output (None: a new store)."""
        state = state or {}
        flow = StoreFlow.from_state(state.get("flow"), params)
        return cls(store_id, flow.params, stages, state.get("region"), state.get("vertical"), flow=flow,
                   stage_states=stage_states)
