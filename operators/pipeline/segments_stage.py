"""The segments stage: a store's customers in a few segments, learned online, with their shares per bucket.

Two kinds of segments per store, each its own `segments.OnlineSegments` (River's
`StandardScaler` and `cluster.KMeans`, seeded at the end of a warm-up):

- **till** (`k` = `till_k`, default 4): each till transaction by its items, `log1p` of its
  amount, its local hour of day (sin, cos) and weekend or not;
- **visit** (`visit_k`, default 3): each ended visit (a visit event with action `leave` and a
  dwell time) by `log1p` of its dwell, what was spent in it, the local hour of its start
  (sin, cos) and weekend or not. The spend is that of a till transaction whose
  `customer_id` is the visit's `visitor_id`, paid during the visit (the last
  `MAX_CUSTOMERS` paying customers of the last two hours are kept); 0 otherwise. The simulator's visits
  (telecom: a device's MAC address) and loyalty ids never match, so there the spend is a
  constant 0, which the scaler maps to 0: visits segment on dwell, hour and weekday.

At each closed bucket, once a kind is past its warm-up (`min_events` events over at least
`min_days` days), its centres
are published with stable ids (matched to the previous ones: `segments.matching`), a
description in words from each centre, and its shares: the events of the closed bucket
(by their own time) given each segment as they were learned, and the same summed over the
store's local day so far (the day's closed buckets). A store with neither kind past its
warm-up gets no record.

State: per kind the model's plain data (`OnlineSegments.to_state`: about 1 kB, and its kept
sample, about 13 kB at the default `min_events`), the counts of
at most `MAX_OPEN_BUCKETS` buckets not yet closed and the day's counts, the paying customers.

Examples
--------
>>> from footfall.operators.pipeline.stage import ClosedBucket, StoreContext
>>> from footfall.schemas.events import PosEvent
>>> ctx = StoreContext("shop-1", bucket_ms=3_600_000, tz="Europe/London", vertical="retail")
>>> config = CustomerSegments(till_k=2, min_events=6, min_days=0)
>>> stage = config.build(ctx, None)
>>> t0 = 1_790_150_400_000  # 2026-09-23T08:00:00Z, 09:00 in London, a Wednesday
>>> def sale(i, items, amount):
...     return PosEvent(event_id=f"p{i}", store_id="shop-1", ts_ms=t0 + i * 60_000, region=None, zone=None,
...                     vertical="retail", transaction_id=f"t{i}", amount=amount, items=items, currency="GBP",
...                     till_id="1", customer_id=None)
>>> for i in range(8):
...     stage.on_event(sale(i, 1 + 5 * (i % 2), 3.0 + 60 * (i % 2)), ctx)
>>> [record] = stage.on_bucket_closed(ClosedBucket(t0, 3_600_000, {}), ctx)
>>> for s in record.kinds[0]["segments"]:  # the warm-up's last event (i = 5) is the first given a segment
...     print(s["segment_id"], s["description"], s["bucket_count"], s["bucket_share"])
0 single item, spends about 3.19, weekday morning 1 0.3333
1 large basket (6.0 items), spends about 63.00, weekday morning 2 0.6667

"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from footfall.operators.pipeline.stage import ClosedBucket, OpenBucket, StoreContext, build_only_sample
from footfall.operators.segments.features import KINDS, centre_of, describe, till_features, visit_features
from footfall.operators.segments.online import OnlineSegments
from footfall.operators.windows.localtime import local_day
from footfall.schemas.events import Event, PosEvent, VisitEvent

__all__ = ["CustomerSegments", "SegmentsOutput", "StoreSegments"]

#: Buckets counted into and not yet closed, per kind (events far ahead of the close are bad clocks).
MAX_OPEN_BUCKETS = 8
#: Paying customers remembered to link a visit to its spend (customer id -> [paid_ms, amount]): at most this
#: many, paid within the last `MAX_VISIT_MS` (a payment older than the longest visit cannot be in a visit ending now).
MAX_CUSTOMERS = 200
MAX_VISIT_MS = 2 * 3_600_000
#: The visit action that ends a visit (`schemas.events.VisitEvent`, as the simulator sends it).
VISIT_END = "leave"


@dataclass(frozen=True)
class SegmentsOutput:
    """A store's segments at a closed bucket: for each kind past its warm-up, centres, words and shares."""

    kind: ClassVar[str] = "segments"
    made_at_ms: int
    bucket_ms: int
    day: str
    kinds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def slot(self) -> str:
        return f"segments:{self.made_at_ms}"

    def fields(self) -> dict[str, Any]:
        return {"made_at_ms": self.made_at_ms, "bucket_ms": self.bucket_ms, "day": self.day,
                "kinds": [dict(k) for k in self.kinds]}


@dataclass(frozen=True)
class CustomerSegments:
    """The segments capability's configuration (a `StageFactory`).

    Parameters
    ----------
    till_k, visit_k
        Segments of till transactions, of visits.
    min_events
        Events of a kind seen before its segments are given (the warm-up).
    min_days
        Days the warm-up lasts at least (7: it has seen a weekend).
    refresh
        Seed again from the kept sample once a local day when that fits it clearly better
        (`OnlineSegments.refresh`); False only to measure what it brings.
    min_rate
        The least a segment's centre moves towards each of its events (`OnlineSegments.min_rate`).
    seed
        Seed of the seeding k-means and of River's `KMeans`.

    """

    name: ClassVar[str] = "segments"
    till_k: int = 4
    visit_k: int = 3
    min_events: int = 400
    min_days: float = 7.0
    refresh: bool = True
    min_rate: float = 0.001
    seed: int = 0

    def __post_init__(self) -> None:
        for kind in KINDS:
            self.model(kind)  # validates k, min_events and min_rate

    @classmethod
    def from_settings(cls, settings: Any) -> CustomerSegments:
        """The defaults: the worker has no setting of its own for segments."""
        return cls()

    @classmethod
    def _unit_test_params(cls):
        yield {}

    @classmethod
    def _unit_test_inputs(cls, params: dict[str, Any]) -> dict[str, Any]:
        return build_only_sample(StoreContext("s1", 900_000, "Europe/London", "north", "retail", 1_790_164_800_000))

    def model(self, kind: str, state: Mapping[str, Any] | None = None) -> OnlineSegments:
        """A kind's segments model, from its saved state or new."""
        k = self.till_k if kind == "till" else self.visit_k
        return OnlineSegments.from_state(state, kind=kind, k=k, min_events=self.min_events,
                                         min_rate=self.min_rate, seed=self.seed, min_days=self.min_days)

    def build(self, context: StoreContext, state: Any | None) -> StoreSegments:
        stage = StoreSegments(self)
        if state:
            stage.models = {kind: self.model(kind, s) for kind, s in state["models"].items()}
            stage.open = {kind: {int(b): list(c) for b, c in by.items()} for kind, by in state["open"].items()}
            stage.day = {kind: (d[0], list(d[1])) for kind, d in state["day"].items()}
            stage.customers = {c: list(v) for c, v in state["customers"].items()}
        return stage


class StoreSegments:
    """One store's till and visit segments, and the counts of each segment per open bucket and per day."""

    event_kinds: ClassVar[frozenset[str]] = frozenset({"pos", "visit"})

    def __init__(self, config: CustomerSegments) -> None:
        self.config = config
        self.models: dict[str, OnlineSegments] = {}  # a kind appears with its first event
        self.open: dict[str, dict[int, list[int]]] = {}  # kind -> bucket start -> events per segment id
        self.day: dict[str, tuple[str, list[int]]] = {}  # kind -> (local day, events per segment id that day)
        self.customers: dict[str, list[float]] = {}  # customer id -> [paid_ms, amount], oldest first
        #: The kind, features and segment (None in warm-up) of the last event learned: offline tools read it.
        self.last: tuple[str, dict[str, float], int | None] | None = None
        self.changed = False

    def on_event(self, event: Event, context: StoreContext) -> None:
        if isinstance(event, PosEvent):
            if event.customer_id and "visit" in self.models:  # a store without visits has no spend to link
                self.customers.pop(event.customer_id, None)  # re-inserted last: the dict stays oldest first
                self.customers[event.customer_id] = [event.ts_ms, event.amount]
                while True:  # the oldest go: past the bound, or paid longer than a visit ago
                    oldest = next(iter(self.customers))
                    if len(self.customers) <= MAX_CUSTOMERS and self.customers[oldest][0] >= event.ts_ms - MAX_VISIT_MS:
                        break
                    del self.customers[oldest]
            self._learn("till", till_features(event.items, event.amount, event.ts_ms, context.tz), event.ts_ms,
                        context)
        elif isinstance(event, VisitEvent) and event.action == VISIT_END and event.dwell_s is not None:
            self._learn("visit", visit_features(event.dwell_s, event.ts_ms, context.tz, self._spend(event)),
                        event.ts_ms, context)

    def _spend(self, visit: VisitEvent) -> float:
        paid = self.customers.get(visit.visitor_id) if visit.visitor_id else None
        if paid is None or not visit.ts_ms - 1000 * (visit.dwell_s or 0.0) <= paid[0] <= visit.ts_ms:
            return 0.0
        return float(paid[1])

    def _learn(self, kind: str, x: dict[str, float], ts_ms: int, context: StoreContext) -> None:
        self.changed = True
        model = self.models.get(kind)
        if model is None:
            model = self.models[kind] = self.config.model(kind)
        segment = model.learn_predict(x, ts_ms)
        self.last = (kind, x, segment)
        if segment is None:
            return
        start = ts_ms - ts_ms % context.bucket_ms
        by_bucket = self.open.setdefault(kind, {})
        by_bucket.setdefault(start, [0] * model.k)[segment] += 1
        while len(by_bucket) > MAX_OPEN_BUCKETS:
            del by_bucket[min(by_bucket)]  # the oldest: its close was missed

    def on_bucket_closed(self, bucket: ClosedBucket, context: StoreContext) -> list[SegmentsOutput]:
        day = local_day(bucket.start_ms, context.tz).isoformat()
        kinds = []
        for kind in KINDS:
            model = self.models.get(kind)
            if model is None or not model.warm:
                continue
            self.changed = True
            if self.config.refresh and self.day.get(kind, (day,))[0] != day:
                # Once a local day: leave a poor local optimum if there is one.
                model.refresh()
            # Counts already made stay under the ids they were given: an id names the segment near its
            # published centre, and the centre that takes it over is the one nearest that place.
            published = model.publish()
            by_bucket = self.open.get(kind, {})
            counts = by_bucket.pop(bucket.start_ms, [0] * model.k)
            for start in [s for s in by_bucket if s < bucket.start_ms]:
                del by_bucket[start]  # counted after their bucket closed: the flow calls them late
            seen_day, day_counts = self.day.get(kind, (day, [0] * model.k))
            if seen_day != day:
                day_counts = [0] * model.k
            day_counts = [a + b for a, b in zip(day_counts, counts, strict=True)]
            self.day[kind] = (day, day_counts)
            n_bucket, n_day = sum(counts), sum(day_counts)
            segments = []
            for segment, raw in published:
                centre = centre_of(kind, raw)
                segments.append({"segment_id": segment, "description": describe(kind, centre), "centre": centre,
                                 "bucket_count": counts[segment], "day_count": day_counts[segment],
                                 "bucket_share": round(counts[segment] / n_bucket, 4) if n_bucket else None,
                                 "day_share": round(day_counts[segment] / n_day, 4) if n_day else None})
            kinds.append({"kind": kind, "k": model.k, "events_learned": model.n, "bucket_events": n_bucket,
                          "day_events": n_day, "segments": segments})
        if not kinds:
            return []
        return [SegmentsOutput(bucket.start_ms, bucket.bucket_ms, day, kinds)]

    def on_partial(self, bucket: OpenBucket, context: StoreContext) -> list[SegmentsOutput]:
        return []

    def to_state(self) -> dict[str, Any]:
        return {"models": {kind: m.to_state() for kind, m in self.models.items()},
                "open": {kind: {str(b): list(c) for b, c in by.items()} for kind, by in self.open.items()},
                "day": {kind: [d, list(c)] for kind, (d, c) in self.day.items()},
                "customers": {c: list(v) for c, v in self.customers.items()}}
