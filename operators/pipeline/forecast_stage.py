"""The forecasts-and-alerts stage: a store's `StoreModels` as a stage of its pipeline.

At each closed bucket the store's watches judge it and its forecasters learn it
(`operators.pipeline.store_models.StoreModels.learn_bucket`); the alert changes and the new
forecasts come out, in that order. While a bucket is open its counts so far may
raise an early warning (`check_partial`). The models are made at the store's first
closed bucket (with the vertical known by then) and learn the vertical when it
becomes known later.

Forecasting and alerting live in one stage because they feed each other: a flagged
bucket is learned clipped into its interval, and a watch judges a bucket against
the forecast made for it.

Examples
--------
>>> from footfall.operators.pipeline.stage import ClosedBucket, StoreContext
>>> stage = ForecastsAndAlerts(horizon=3)
>>> ctx = StoreContext("retail-001", bucket_ms=3_600_000, tz="UTC", vertical="retail")
>>> models = stage.build(ctx, None)
>>> outputs = models.on_bucket_closed(ClosedBucket(1_763_974_800_000, 3_600_000, {"arrivals": 40}), ctx)
>>> [(o.kind, o.published.series) for o in outputs]
[('forecast', 'arrivals'), ('forecast', 'transactions')]
>>> again = stage.build(ctx, models.to_state())  # restored: the same bucket again changes nothing
>>> again.on_bucket_closed(ClosedBucket(1_763_974_800_000, 3_600_000, {"arrivals": 40}), ctx)
[]

"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from footfall.operators.pipeline.stage import (
    AlertOutput,
    ClosedBucket,
    ForecastOutput,
    OpenBucket,
    Output,
    StoreContext,
)
from footfall.operators.pipeline.store_models import StoreModels
from footfall.schemas.events import Event

__all__ = ["ForecastsAndAlerts", "StoreModelsStage"]


@dataclass(frozen=True)
class ForecastsAndAlerts:
    """Configuration of the forecasts-and-alerts stage; `build` makes one store's (see the module docstring).

    Parameters
    ----------
    horizon
        Buckets forecast ahead (0: no forecasts, no alerts).
    holidays
        Public holidays, for the calendar model.
    capacities
        Capacity (people inside) per store id, for the capacity rule.
    queue_target_s
        Queue service-level target, for the queue-wait rule.

    """

    name: ClassVar[str] = "forecast"
    horizon: int = 96
    holidays: tuple[dt.date, ...] = ()
    capacities: Mapping[str, float] = field(default_factory=dict)
    queue_target_s: float | None = 600.0

    @classmethod
    def from_settings(cls, settings: Any) -> ForecastsAndAlerts:
        """From the worker's settings (`forecast_horizon`, `holiday_dates`, `capacity_of_store`, `target_wait_s`)."""
        return cls(horizon=settings.forecast_horizon, holidays=tuple(settings.holiday_dates),
                   capacities=dict(settings.capacity_of_store), queue_target_s=settings.target_wait_s)

    @classmethod
    def _unit_test_params(cls):
        yield {"horizon": 4}
        yield {"horizon": 0}

    def build(self, context: StoreContext, state: Any | None) -> StoreModelsStage:
        # Loaded whatever the horizon: with forecasts off for a while, the models wait, unchanged.
        return StoreModelsStage(self, StoreModels.from_bytes(state) if state else None)


class StoreModelsStage:
    """One store's forecasts and watches, made at its first closed bucket."""

    event_kinds: ClassVar[frozenset[str]] = frozenset()  # buckets carry every count it reads

    def __init__(self, config: ForecastsAndAlerts, models: StoreModels | None = None) -> None:
        self.config = config
        self.models = models
        self.changed = False

    def on_event(self, event: Event, context: StoreContext) -> None:
        return None

    def on_bucket_closed(self, bucket: ClosedBucket, context: StoreContext) -> list[Output]:
        c = self.config
        if c.horizon <= 0:
            return []
        if self.models is None:
            self.models = StoreModels(context.store_id, context.bucket_ms, c.horizon, context.tz, context.vertical,
                                      c.holidays, capacity=c.capacities.get(context.store_id),
                                      queue_target_s=c.queue_target_s)
        self.models.set_vertical(context.vertical)
        self.changed = True
        graded = bucket.graded
        outcome = self.models.learn_bucket(bucket.start_ms, bucket.kpis, occupancy=context.occupancy,
                                           queue_wait_s=context.queue_wait_s,
                                           quality=None if graded is None else graded.quality,
                                           silent_sensors=() if graded is None else graded.silent_sensors)
        return [*(AlertOutput(a) for a in outcome.alerts), *(ForecastOutput(p) for p in outcome.forecasts)]

    def on_partial(self, bucket: OpenBucket, context: StoreContext) -> list[Output]:
        if self.models is None:
            return []
        alerts = self.models.check_partial(bucket.now_ms, bucket.start_ms, bucket.kpis)
        self.changed = self.changed or bool(alerts)
        return [AlertOutput(a) for a in alerts]

    def to_state(self) -> bytes | None:
        """The models, compressed (`StoreModels.to_bytes`); None before the first closed bucket."""
        return self.models.to_bytes() if self.models is not None else None
