"""A toy per-store capability, for the test that adding one is a stage module and one registration line.

`PeakArrivals` keeps, per store, the most arrivals any closed bucket had, and at each
closed bucket publishes a `peak` record (its own record kind, on its own topic
`<prefix>.peaks`, in Redis at `<p>:store:<id>:peak`). Its state is plain data.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, TypedDict

from footfall.operators.pipeline.stage import ClosedBucket, OpenBucket, StoreContext
from footfall.schemas.events import Event
from footfall.schemas.records import RecordKind, register_record_kind


class PeakRecord(TypedDict):
    """A store's busiest closed bucket so far, published at each closed bucket."""

    type: Literal["peak"]
    store_id: str
    region: str | None
    vertical: str | None
    tz: str
    bucket_start_ms: int
    arrivals: int
    peak_arrivals: int
    emitted_at_ms: int


PEAK = register_record_kind(RecordKind("peak", PeakRecord, "peaks", "A store's busiest closed bucket so far."))


class PeakOutput:
    kind: ClassVar[str] = "peak"

    def __init__(self, bucket_start_ms: int, arrivals: int, peak_arrivals: int) -> None:
        self.bucket_start_ms, self.arrivals, self.peak_arrivals = bucket_start_ms, arrivals, peak_arrivals

    @property
    def slot(self) -> str:
        return f"peak:{self.bucket_start_ms}"

    def fields(self) -> dict[str, Any]:
        return {"bucket_start_ms": self.bucket_start_ms, "arrivals": self.arrivals,
                "peak_arrivals": self.peak_arrivals}


class PeakStage:
    def __init__(self, peak: int = 0) -> None:
        self.peak = peak

    def on_event(self, event: Event, context: StoreContext) -> None:
        return None

    def on_bucket_closed(self, bucket: ClosedBucket, context: StoreContext) -> list[PeakOutput]:
        arrivals = int(bucket.kpis.get("arrivals") or 0)
        self.peak = max(self.peak, arrivals)
        return [PeakOutput(bucket.start_ms, arrivals, self.peak)]

    def on_partial(self, bucket: OpenBucket, context: StoreContext) -> list[PeakOutput]:
        return []

    def to_state(self) -> dict[str, int]:
        return {"peak": self.peak}


class PeakArrivals:
    """The stage's factory (its configuration: none)."""

    name: ClassVar[str] = "peak"

    def build(self, context: StoreContext, state: Any | None) -> PeakStage:
        return PeakStage(**(state or {}))
