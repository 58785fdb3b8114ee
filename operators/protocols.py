"""The shapes of footfall's operators, declared as `typing.Protocol`s rather than base classes.

River declares its shapes the same way (`river.utils.rolling.Rollable`): a wrapper takes any
class that has the methods, so nothing inherits. Each protocol is `runtime_checkable`, so
`isinstance(op, Statistic)` says whether `op` has the methods (not whether it returns the
right types: the shared checks in `tests/unit/test_operator_contract.py` drive them).

- `Statistic`: `update(...)` takes one input in, `get(...)` reads.
- `WindowAggregation`: `initialize()`, `agg(state, event)` returning a new state, `result(state)`.
  `TumblingBuckets` runs one per bucket.
- `Forecaster`: `learn_one(y, ts_ms)`, `forecast(horizon, start_ms)`.
- `Detector`: `learn_one(...)`, `score_one(...)`, where a high score means anomalous and 1 is the alert level.
- `Stateful`: `to_state()` gives plain data and `from_state(state, ...)` rebuilds the operator from it.

One operator often has two shapes, a `Statistic` that is also `Stateful` for example. Reading
(`get`, `result`, `score_one`, `forecast`) never changes an operator. Operators raise
`ValueError` on impossible input. Before any input, the read methods return the operator's
documented empty value (0, None, zeros, an empty list) and do not raise.

Examples
--------
>>> from footfall.operators.alerting.detectors import ResidualDetector
>>> from footfall.operators.kpis.flow import FlowCounts
>>> from footfall.operators.forecasting.forecasters import SeasonalNaive
>>> from footfall.operators.forecasting.forecast_select import OnlineSelector
>>> from footfall.operators.kpis.occupancy import Occupancy
>>> from footfall.operators.kpis.quantiles import QuantileSketch
>>> isinstance(QuantileSketch(), Statistic), isinstance(QuantileSketch(), Stateful)
(True, True)
>>> isinstance(FlowCounts(), WindowAggregation), isinstance(Occupancy(), WindowAggregation)
(True, False)
>>> isinstance(ResidualDetector(), Detector), isinstance(ResidualDetector(), Stateful)
(True, True)
>>> selector = OnlineSelector([SeasonalNaive(4, 900_000)], horizon=2, bucket_ms=900_000)
>>> isinstance(SeasonalNaive(4, 900_000), Forecaster), isinstance(selector, Forecaster)
(True, False)

"""

from __future__ import annotations

from typing import Any, Protocol, Self, TypeAlias, TypeVar, runtime_checkable

from footfall.schemas.events import Event

__all__ = ["Detector", "Forecaster", "PlainData", "Stateful", "Statistic", "WindowAggregation"]

#: What `Stateful.to_state` returns: JSON's types only (object keys are strings, no tuples), so a
#: Faust table, Redis or a file holds it as it is and it comes back unchanged.
PlainData: TypeAlias = "bool | int | float | str | list[PlainData] | dict[str, PlainData] | None"

StateT = TypeVar("StateT")


@runtime_checkable
class Statistic(Protocol):
    """A running statistic: `update` takes one input in, `get` reads it.

    The input depends on the statistic: `QuantileSketch.update(x)`,
    `Occupancy.update(ts_ms, entries, exits)`, `SlidingCounts.update(ts_ms, counts)`,
    `BucketBaseline.update(bucket_start_ms, values)`, `QueueKpis.update(event)`. So do
    `get`'s arguments: none for most, `QuantileSketch.get(q)` and `SlidingCounts.get(window_ms)`
    take one. `get` never changes the statistic. Before any input it returns the documented
    empty value (0, None, zeros) and does not raise.

    `update` returns None. The exception is an operator that refuses an input older than
    what it keeps: there `update` says whether the input was taken in, and a caller may
    ignore the answer. `SlidingCounts` and `BucketBaseline` return a bool, and
    `TumblingBuckets` returns the bucket's start, or None when the event is late.

    None of footfall's statistics is removable yet. River's `revert(x)` is the verb
    for one that becomes removable.
    """

    def update(self, *args: Any, **kwargs: Any) -> object: ...

    def get(self, *args: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class WindowAggregation(Protocol[StateT]):
    """What one window (bucket, day) computes, as three pure methods kept apart from storage.

    The state is plain data (lists of numbers, nested plain dicts), so a table or
    `TumblingBuckets.to_state()` stores it as it is.

    - `initialize()` returns a fresh empty state each time.
    - `agg(state, event)` returns the state with `event` folded in. It does not change the
      state passed in: a state may be a saved table value or a closed window, held elsewhere.
      An event of a kind the aggregation ignores still gives a valid state.
    - `result(state)` reads a state (a dict of the window's figures). It changes nothing, and
      `result(initialize())` is the empty window's documented result (zeros, None ratios).

    Members: `flow.FlowCounts`, `retail.RetailKpis`, `store.BucketKpis`.
    """

    def initialize(self) -> StateT: ...

    def agg(self, state: StateT, event: Event) -> StateT: ...

    def result(self, state: StateT) -> Any: ...


@runtime_checkable
class Forecaster(Protocol):
    """A forecaster of one series of bucket counts, learned one closed bucket at a time (River's shape).

    - `learn_one(y, ts_ms)` takes the value of the bucket that starts at `ts_ms`. `y` is None
      for a gap, where nothing is known, which is not the same as zero.
    - `forecast(horizon, start_ms)` returns point forecasts for the `horizon` buckets from
      `start_ms` on. It changes nothing. A value is never negative, and it is None where
      the forecaster cannot tell yet, for example everywhere before any data.
    - `name` tells the candidates of an `OnlineSelector` apart, and `bucket_ms` is the
      length of a bucket.

    Members: `forecasters.SeasonalNaive`, `HoltWintersForecaster`, `SnarimaxForecaster`,
    `CalendarRegression` and `cold_start.VerticalProfile`. `forecast_select.OnlineSelector`
    is not one: its `forecast()` publishes the forecast it chose, over its own horizon.
    """

    name: str
    bucket_ms: int

    def learn_one(self, y: float | None, ts_ms: int) -> None: ...

    def forecast(self, horizon: int, start_ms: int) -> list[float | None]: ...


@runtime_checkable
class Detector(Protocol):
    """An anomaly scorer with River's verbs: `learn_one` updates and `score_one` reads.

    A higher score means more anomalous, and 1 is the alert level. A score is never negative,
    and before anything has been learned it is 0 for an observation at its expectation.

    There are two kinds:

    - A point detector scores a new observation before it learns that observation.
      `detectors.ResidualDetector` takes `score_one(observed, expected, slot)` and then
      `learn_one(observed, expected, learned, slot)`. `detectors.MultiSignalDetector` takes
      `score_one(x)` and then `learn_one(x)`, where `x` maps signal names to values.
    - A rule scores the run it has learned so far with `score_one()` and no arguments, and
      `hit()` turns that score into a `rules.RuleHit` or None. The rules are
      `rules.QueueWaitBreach`, `rules.SilentSensor` and `rules.EntryExitDrift`.
    """

    def learn_one(self, *args: Any, **kwargs: Any) -> None: ...

    def score_one(self, *args: Any, **kwargs: Any) -> float: ...


@runtime_checkable
class Stateful(Protocol):
    """An operator whose state goes out as plain data and comes back unchanged.

    - `to_state()` returns `PlainData`, built fresh on each call: later updates to the
      operator do not change a state already returned.
    - `from_state(state, ...)` rebuilds the operator so it behaves exactly like the one that
      was saved, and later updates do not change the `state` passed in. Where the state
      holds the configuration (detectors, rules, alerts, `StoreWatch`) it takes only
      `state`. Elsewhere the configuration comes as the constructor's keyword arguments,
      `from_state(state, tz=..., ...)`, and `state=None` gives an empty operator.

    `pipeline.StorePipeline` is saved in two parts, the flow's `to_state()` and each stage's
    `stage_states()`, and rebuilt from both with its stages' factories:
    `from_state(store_id, params, stages, state, stage_states)`.

    Not `Stateful`: the forecasting side (`OnlineSelector`, `StoreForecasts`, `StoreModels`)
    keeps River models, which persist by pickling, and saves itself as bytes through
    `to_bytes()` / `from_bytes()` (`operators.pickled`).
    """

    def to_state(self) -> PlainData: ...

    @classmethod
    def from_state(cls, state: Any, *args: Any, **kwargs: Any) -> Self: ...
