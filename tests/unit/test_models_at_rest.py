"""Forecasters resting as bytes between closes learn, forecast and alert exactly as ones always awake.

The reference is the same `StoreModels` with `rest` made a no-op (its forecasters never leave
memory), fed the same buckets, with early-warning checks in between; and a model saved before
the forecasters rested (its pickle holds `forecasts`) continues exactly as one saved now.
"""

from __future__ import annotations

import math
import random

from footfall.operators import pickled
from footfall.operators.pipeline.store_models import StoreModels

QUARTER = 900_000
MONDAY = 1_767_571_200_000  # 2026-01-05 00:00 UTC


class AlwaysAwake(StoreModels):
    def rest(self) -> None:
        return None


def counts(i: int, rng: random.Random) -> dict[str, int]:
    hour = (i * QUARTER // 3_600_000) % 24
    rate = 14 * math.sin(math.pi * (hour - 8) / 12) if 8 <= hour < 20 else 0.0
    arrivals = sum(1 for _ in range(40) if rng.random() < rate / 40)
    if i % 170 == 90:
        arrivals *= 6  # a surge now and then, for the alerts
    return {"arrivals": arrivals, "departures": arrivals, "transactions": arrivals // 3}


def outcome(result) -> tuple:
    return ([(p.series, p.forecast.values, p.forecast.lo95, p.forecast.hi95, p.forecast.model)
             for p in result.forecasts], result.alerts)


def test_resting_models_match_models_always_awake() -> None:
    rng = random.Random(11)
    resting = StoreModels("s", QUARTER, horizon=12, vertical="retail")
    awake = AlwaysAwake("s", QUARTER, horizon=12, vertical="retail")
    for i in range(6 * 96):
        start, kpis = MONDAY + i * QUARTER, counts(i, rng)
        partial = {"arrivals": kpis["arrivals"] * 3}
        assert resting.check_partial(start + QUARTER // 2, start, partial) == \
            awake.check_partial(start + QUARTER // 2, start, partial)
        assert outcome(resting.learn_bucket(start, kpis, occupancy=2.0)) == \
            outcome(awake.learn_bucket(start, kpis, occupancy=2.0)), i
        assert resting._forecasts is None and resting._forecasts_at_rest is not None
        if i % 97 == 40:
            resting = StoreModels.from_bytes(resting.to_bytes())


def test_a_model_saved_before_resting_continues_exactly() -> None:
    rng = random.Random(3)
    awake = AlwaysAwake("s", QUARTER, horizon=8, vertical="retail")
    for i in range(3 * 96):
        awake.learn_bucket(MONDAY + i * QUARTER, counts(i, rng), occupancy=1.0)
    # As the previous version pickled it: the forecasters under `forecasts`, nothing at rest.
    old = StoreModels.__new__(StoreModels)
    old.__dict__.update({k: v for k, v in vars(awake).items() if not k.startswith("_forecasts")},
                        forecasts=awake._forecasts)
    restored = StoreModels.from_bytes(pickled.dump(old))
    assert_continue_alike(restored, AlwaysAwake.from_bytes(pickled.dump(awake)), rng, 3 * 96)


def assert_continue_alike(restored: StoreModels, reference: StoreModels, rng: random.Random, first: int) -> None:
    """A day of buckets from bucket `first` on gives both the same forecasts and alerts."""
    for i in range(first, first + 96):
        start, kpis = MONDAY + i * QUARTER, counts(i, rng)
        assert outcome(restored.learn_bucket(start, kpis, occupancy=1.0)) == \
            outcome(reference.learn_bucket(start, kpis, occupancy=1.0)), i


def test_models_saved_as_one_pickle_with_forecasters_at_rest_continue_exactly() -> None:
    """The save before the forecasters' bytes were kept apart: one compressed pickle of everything."""
    rng = random.Random(5)
    awake = AlwaysAwake("s", QUARTER, horizon=8, vertical="retail")
    resting = StoreModels("s", QUARTER, horizon=8, vertical="retail")
    for i in range(3 * 96):
        start, kpis = MONDAY + i * QUARTER, counts(i, rng)
        awake.learn_bucket(start, kpis, occupancy=1.0)
        resting.learn_bucket(start, kpis, occupancy=1.0)
    assert resting._forecasts_at_rest is not None
    old_format = pickled.dump(resting)
    assert not old_format.startswith(b"FFm2")
    assert_continue_alike(StoreModels.from_bytes(old_format), awake, rng, 3 * 96)
