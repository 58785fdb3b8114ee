"""What a per-store capability is: a `Stage` of the store's pipeline, and the outputs stages give.

A stage is pure, synchronous and I/O-free. The pipeline (`operators.pipeline.store_pipeline`)
calls it at three moments of a store's event time: each counted event
(`on_event`), each closed bucket (`on_bucket_closed`) and, while a bucket is
open, each time its counts so far are published (`on_partial`). What it returns
are `Output`s: typed values the worker turns into published records
(`stream.records`) and the offline tools read as they are. Its state goes out
through `to_state()` as plain data (or bytes) and comes back through its
factory's `build(context, state)` (a `StageFactory`: the capability's configuration,
kept apart from the state it builds, as Bytewax's `build(resume_state)`).

Every output has a `kind` (the `type` of its published record), a `slot` (a
newer output of the same store and slot replaces an older one not yet
published: the newest count of a bucket is the one that matters) and
`fields()`, the record's body.

Examples
--------
>>> out = BucketOutput(start_ms=0, kpis={"arrivals": 3}, status="open", watermark_ms=60_000, last_event_id="e7")
>>> out.kind, out.slot, out.fields()["arrivals"]
('bucket', 0, 3)
>>> isinstance(out, Output)
True

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from footfall.operators.alerting.alerts import Alert
from footfall.operators.forecasting.store_forecast import PublishedForecast
from footfall.schemas.events import Event

__all__ = [
    "AlertOutput",
    "BucketOutput",
    "ClosedBucket",
    "ForecastOutput",
    "LiveOutput",
    "OpenBucket",
    "Output",
    "Stage",
    "StageError",
    "StageFactory",
    "StoreContext",
    "build_only_sample",
]


@runtime_checkable
class Output(Protocol):
    """One thing a store's pipeline gives: published as a record of type `kind`."""

    kind: ClassVar[str]

    @property
    def slot(self) -> int | str:
        """Outputs of one store with the same slot replace each other until published."""
        ...

    def fields(self) -> dict[str, Any]:
        """The record's own fields (the worker adds store, region, vertical, time zone, emission time)."""
        ...


@dataclass(frozen=True)
class ClosedBucket:
    """A bucket that closed: its start, length and record (counts, KPIs, `compare`).

    `earlier` holds what the stages before this one gave for the bucket (the staffing stage
    reads the forecasts made at this close).
    """

    start_ms: int
    bucket_ms: int
    kpis: Mapping[str, Any]
    earlier: tuple[Any, ...] = ()

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.bucket_ms

    @property
    def graded(self) -> Any | None:
        """The data-quality stage's output for this bucket (its `quality`, `silent_sensors`...), if it gave one."""
        return next((o for o in self.earlier if getattr(o, "kind", None) == "quality"), None)


@dataclass(frozen=True)
class OpenBucket:
    """An open bucket's counts so far, as of the store's watermark `now_ms`."""

    start_ms: int
    bucket_ms: int
    kpis: Mapping[str, Any]
    now_ms: int


@dataclass(frozen=True)
class StoreContext:
    """What a stage may read of its store besides the bucket: who it is and its state at this moment.

    `occupancy` (people inside), `queue_wait_s` (the wait a new arrival can expect) and
    `counters_active` (counters serving in the last hour; None without queues) are the store's at
    the moment of the call (for a closed bucket: after the message that closed it).
    """

    store_id: str
    bucket_ms: int
    tz: str
    region: str | None = None
    vertical: str | None = None
    watermark_ms: int | None = None
    occupancy: float = 0.0
    queue_wait_s: float | None = None
    counters_active: int | None = None


@runtime_checkable
class Stage(Protocol):
    """One store's instance of a capability: pure, synchronous, its state plain data (or bytes).

    `changed` is True from any call that changed the state until the pipeline's
    `mark_stages_saved`: the worker saves a stage's state, before its store's, only then.
    `on_event` sees the store's identity only (`StoreContext` without occupancy or queues).
    A stage may declare `event_kinds` (a class attribute: the event kinds its `on_event` reads);
    the pipeline then calls `on_event` for those kinds only. Without it, every counted event
    reaches it: most stages read one or two kinds, and a call per stage per event is most of
    what a store's stages cost per event.
    """

    changed: bool

    def on_event(self, event: Event, context: StoreContext) -> None: ...

    def on_bucket_closed(self, bucket: ClosedBucket, context: StoreContext) -> Sequence[Output]: ...

    def on_partial(self, bucket: OpenBucket, context: StoreContext) -> Sequence[Output]: ...

    def to_state(self) -> Any: ...


@runtime_checkable
class StageFactory(Protocol):
    """A capability's configuration: builds its `Stage` for each store (Bytewax's `build(resume_state)`).

    `state` is None for a store new to the stage, else what its `to_state()` gave. A stage that
    raises is built again from None by the pipeline, which says so in a `StageError` output.
    """

    name: ClassVar[str]

    def build(self, context: StoreContext, state: Any | None) -> Stage: ...


# -- the built-in outputs ---------------------------------------------------------------------


@dataclass(frozen=True)
class BucketOutput:
    """A bucket's counts and KPIs, `closed` or `open` (so far).

    `revision`: 0 while open, 1 at its close, 2, 3, ... each time late data within the
    restate horizon restates it (`restated`); a newer revision replaces the older.
    `quality`: the data-quality stage's grade of a closed bucket (`ok`, `partial`, `missing`,
    `no_sensors`; None: open, restated, or a store without door sensors); `held_back`: the KPIs
    not given (null) because the bucket's door counts are incomplete.
    """

    kind: ClassVar[str] = "bucket"
    start_ms: int
    kpis: Mapping[str, Any]
    status: str
    watermark_ms: int | None
    last_event_id: str | None = None
    revision: int | None = None  # None: 1 when closed, 0 when open
    restated: bool = False
    quality: str | None = None
    held_back: tuple[str, ...] = ()

    @property
    def slot(self) -> int:
        return self.start_ms

    def fields(self) -> dict[str, Any]:
        return dict(self.kpis)


@dataclass(frozen=True)
class LiveOutput:
    """The store now: sliding windows, occupancy, today against last week, queues."""

    kind: ClassVar[str] = "live"
    live: Mapping[str, Any]

    @property
    def slot(self) -> str:
        return "live"

    def fields(self) -> dict[str, Any]:
        return dict(self.live)


@dataclass(frozen=True)
class ForecastOutput:
    """One series' new forecast."""

    kind: ClassVar[str] = "forecast"
    published: PublishedForecast

    @property
    def slot(self) -> str:
        return f"forecast:{self.published.series}:{self.published.forecast.made_at_ms}"

    def fields(self) -> dict[str, Any]:
        f = self.published.forecast
        return {"series": self.published.series, "made_at_ms": f.made_at_ms, "model": f.model,
                "cold": self.published.cold}


@dataclass(frozen=True)
class AlertOutput:
    """An alert change: opened, updated or resolved."""

    kind: ClassVar[str] = "alert"
    alert: Alert

    @property
    def slot(self) -> str:
        return f"alert:{self.alert.alert_id}:{self.alert.updated_ms}:{self.alert.state}"

    def fields(self) -> dict[str, Any]:
        return self.alert.to_dict()


@dataclass(frozen=True)
class StageError:
    """A stage raised: it was started over (`restarted`) or its call skipped; never a record.

    The worker logs it and counts `<stage>_errors`; the counts of the bucket stand.
    """

    kind: ClassVar[str] = "stage_error"
    stage: str
    moment: str  # "restore" (its saved state), "event", "bucket_closed" or "partial"
    bucket_start_ms: int | None
    error: str
    restarted: bool
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def slot(self) -> str:
        return f"error:{self.stage}:{self.moment}:{self.bucket_start_ms}"

    def fields(self) -> dict[str, Any]:
        return {"stage": self.stage, "moment": self.moment, "bucket_start_ms": self.bucket_start_ms,
                "error": self.error, "restarted": self.restarted}


def build_only_sample(context: StoreContext) -> dict[str, Any]:
    """Sample inputs (`_unit_test_inputs`) of a stage factory that is configuration only.

    Such a factory keeps no state of its own: the shared operator checks build a store's stage
    from it three times, and each build starts from the state given (none here).

    >>> build_only_sample(StoreContext("s1", 900_000, "UTC"))["stateless"]
    True

    """
    return {"steps": [("build", (context, None), {})] * 3, "reads": [], "empty": [], "stateless": True}
