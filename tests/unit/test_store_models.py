"""StoreModels: one incident one alert across series, repeats ignored, and saved state that continues exactly."""

from __future__ import annotations

import math
import random

from footfall.operators.alerting.alerts import Alert
from footfall.operators.pipeline.store_models import StoreModels

QUARTER = 900_000
MONDAY = 1_767_571_200_000  # 2026-01-05 00:00 UTC


def _alert(alert_id: str, kind: str, state: str) -> Alert:
    return Alert(alert_id, "s", kind, "warning", state, 0, 0, 0, QUARTER, 1.0, 2.0, 1.0, 3.0, 1.5, "words")


def test_one_incident_one_alert_across_series():
    models = StoreModels("s", QUARTER, horizon=4)
    fold = models._fold
    assert [a.alert_id for a in fold([_alert("a", "arrivals_low", "opened"),
                                      _alert("b", "sensor_silent", "opened"),  # the same incident: folded
                                      _alert("c", "queue_wait", "opened")])] == ["a", "c"]  # another family
    assert fold([_alert("b", "sensor_silent", "updated")]) == []  # a folded alert stays silent
    assert [a.state for a in fold([_alert("a", "arrivals_low", "resolved")])] == ["resolved"]
    assert fold([_alert("b", "sensor_silent", "resolved")]) == []  # ... until it resolves, silently
    # The family is free again: the next low alert speaks.
    assert [a.alert_id for a in fold([_alert("d", "tickets_issued_low", "opened")])] == ["d"]
    # A high alert was never blocked by the low ones.
    assert [a.alert_id for a in fold([_alert("e", "arrivals_high", "opened")])] == ["e"]


def test_the_same_alert_from_two_series_is_published_once():
    # Two series' silent sensors in one bucket: one kind, one bucket, so one alert id.
    fold = StoreModels("s", QUARTER, horizon=4)._fold
    assert [a.state for a in fold([_alert("x", "sensor_silent", "opened"),
                                   _alert("x", "sensor_silent", "opened")])] == ["opened"]
    assert [a.state for a in fold([_alert("x", "sensor_silent", "updated")])] == ["updated"]


def _counts(i: int, rng: random.Random) -> dict[str, int]:
    hour = (i * QUARTER // 3_600_000) % 24
    rate = 12 * math.sin(math.pi * (hour - 8) / 12) if 8 <= hour < 20 else 0.0
    arrivals = sum(1 for _ in range(40) if rng.random() < rate / 40)
    return {"arrivals": arrivals, "departures": arrivals, "transactions": arrivals // 3}


def test_saved_models_continue_exactly_and_ignore_repeats():
    rng = random.Random(5)
    counts = [_counts(i, rng) for i in range(4 * 96)]
    straight = StoreModels("s", QUARTER, horizon=8, vertical="retail")
    resumed = StoreModels("s", QUARTER, horizon=8, vertical="retail")
    for i, kpis in enumerate(counts):
        start = MONDAY + i * QUARTER
        a = straight.learn_bucket(start, kpis, occupancy=3.0)
        b = resumed.learn_bucket(start, kpis, occupancy=3.0)
        assert [(p.series, p.forecast.values, p.forecast.hi95) for p in a.forecasts] == \
            [(p.series, p.forecast.values, p.forecast.hi95) for p in b.forecasts], i
        assert a.alerts == b.alerts
        if i % 50 == 17:
            resumed = StoreModels.from_bytes(resumed.to_bytes())
            # the bucket again, after a crash: nothing learned twice, nothing published
            again = resumed.learn_bucket(start, kpis, occupancy=3.0)
            assert again.forecasts == [] and again.alerts == []
