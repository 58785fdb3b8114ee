"""Forecasters resting as bytes between closes learn, forecast and alert exactly as ones always awake.

The reference is the same `StoreModels` with `rest` made a no-op (its forecasters never leave
memory), fed the same buckets, with early-warning checks in between; and a model saved before
the forecasters rested (its pickle holds `forecasts`) continues exactly as one saved now.
"""

from __future__ import annotations

import math
import random

import pytest

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


@pytest.mark.parametrize("rest_watches", [True, False])
def test_resting_models_match_models_always_awake(rest_watches: bool) -> None:
    rng = random.Random(11)
    resting = StoreModels("s", QUARTER, horizon=12, vertical="retail", rest_watches=rest_watches)
    awake = AlwaysAwake("s", QUARTER, horizon=12, vertical="retail")
    for i in range(6 * 96):
        start, kpis = MONDAY + i * QUARTER, counts(i, rng)
        partial = {"arrivals": kpis["arrivals"] * 3}
        assert resting.check_partial(start + QUARTER // 2, start, partial) == \
            awake.check_partial(start + QUARTER // 2, start, partial)
        assert outcome(resting.learn_bucket(start, kpis, occupancy=2.0)) == \
            outcome(awake.learn_bucket(start, kpis, occupancy=2.0)), i
        assert resting._forecasts is None and resting._asleep is not None
        assert (resting._watches is None) is rest_watches
        if i % 97 == 40:
            resting = StoreModels.from_bytes(resting.to_bytes())


@pytest.mark.parametrize("rest_watches", [True, False])
def test_resting_models_warn_early_as_models_always_awake(rest_watches: bool) -> None:
    """Past the watches' two weeks of warm-up, early-warning checks of the next buckets agree.

    The resting models answer the first three buckets after the last closed one from their views
    and wake for later ones; the checks come early and late in a bucket, with counts from its
    forecast's to a surge's. Hourly buckets, so the warm-up passes quickly.
    """
    rng = random.Random(7)
    hour = 4 * QUARTER
    resting = StoreModels("s", hour, horizon=8, vertical="retail", rest_watches=rest_watches)
    awake = AlwaysAwake("s", hour, horizon=8, vertical="retail")
    warnings = 0
    for i in range(18 * 24):
        start, kpis = MONDAY + i * hour, counts(4 * i, rng)
        for ahead, elapsed, factor in ((0, 0.5, 2), (0, 0.1, 6), (0, 0.9, 1), (1, 0.3, 3), (2, 0.6, 4), (4, 0.5, 9)):
            if i > 14 * 24 and rng.random() < 0.5:
                bucket = start + ahead * hour
                partial = {"arrivals": kpis["arrivals"] * factor, "transactions": kpis["transactions"] * factor}
                now = bucket + int(elapsed * hour)
                said = resting.check_partial(now, bucket, partial)
                assert said == awake.check_partial(now, bucket, partial), (i, ahead)
                warnings += len(said)
        assert outcome(resting.learn_bucket(start, kpis, occupancy=2.0)) == \
            outcome(awake.learn_bucket(start, kpis, occupancy=2.0)), i
        if i % 50 == 20:
            resting = StoreModels.from_bytes(resting.to_bytes())
    assert warnings >= 20  # the checks did warn, so the views' "no" was tested against real "yes"


SETTINGS = ("store_id", "bucket_ms", "tz", "capacity", "queue_target_s", "lead_ms", "primary", "folded")


def saved_by_an_older_version(awake: StoreModels, version: str) -> bytes:
    """`awake`'s models as an older version saved them (the attribute names and layouts of then)."""
    old = StoreModels.__new__(StoreModels)
    state: dict = {name: getattr(awake, name) for name in SETTINGS}
    state["watches"] = awake._watches
    if version == "nothing at rest":
        state["forecasts"] = awake._forecasts
    else:  # the forecasters rested alone, the watches stayed
        state["_forecasts"], state["_forecasts_at_rest"] = None, pickled.dump(awake._forecasts, level=1)
    old.__dict__.update(state)
    if version != "forecasters apart":
        return pickled.dump(old)
    resting, old._forecasts_at_rest = old._forecasts_at_rest, None
    head = pickled.dump(old, level=1)
    return b"FFm2" + len(head).to_bytes(4, "big") + head + resting


@pytest.mark.parametrize("version", ["nothing at rest", "forecasters at rest", "forecasters apart"])
def test_models_saved_by_an_older_version_continue_exactly(version: str) -> None:
    rng = random.Random(3)
    awake = AlwaysAwake("s", QUARTER, horizon=8, vertical="retail")
    for i in range(3 * 96):
        awake.learn_bucket(MONDAY + i * QUARTER, counts(i, rng), occupancy=1.0)
    restored = StoreModels.from_bytes(saved_by_an_older_version(awake, version))
    assert restored._asleep is not None and restored._forecasts is None
    reference = AlwaysAwake.from_bytes(pickled.dump(awake))
    for i in range(3 * 96, 4 * 96):
        start, kpis = MONDAY + i * QUARTER, counts(i, rng)
        assert outcome(restored.learn_bucket(start, kpis, occupancy=1.0)) == \
            outcome(reference.learn_bucket(start, kpis, occupancy=1.0)), i


def test_the_watches_rest_by_default_only_with_buckets_shorter_than_15_minutes() -> None:
    assert [StoreModels("s", minutes * 60_000, horizon=4).rest_watches for minutes in (1, 5, 14, 15, 30, 60)] == \
        [True, True, True, False, False, False]
