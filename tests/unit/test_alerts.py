"""Alert lifecycle (AlertBook) and the composed StoreWatch, on hand-drawn timelines."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import pickle

import pytest

from footfall.operators.alerting.alerts import AlertBook, alert_id
from footfall.operators.alerting.detectors import Expected
from footfall.operators.alerting.watch import StoreWatch
from footfall.operators.forecasting.forecast_select import Forecast

MIN = 60_000
BUCKET = 30 * MIN


def raise_(book, i, kind="arrivals_high", severity="warning", score=1.5):
    return book.raise_alert(kind, severity, bucket_start_ms=i * BUCKET, bucket_end_ms=(i + 1) * BUCKET,
                            now_ms=(i + 1) * BUCKET, observed=10.0 * i, expected=5.0, expected_lo=1.0,
                            expected_hi=9.0, score=score, explanation=f"bucket {i}")


def test_alert_id_is_a_hash_of_store_kind_and_start():
    want = hashlib.blake2b(b"s1|arrivals_high|1800000", digest_size=8).hexdigest()
    assert alert_id("s1", "arrivals_high", 1_800_000) == want
    assert alert_id("s1", "arrivals_low", 1_800_000) != want


def test_lifecycle_one_incident_one_alert():
    # buckets:  0    1    2    3    4    5    6    7 ...   15   16
    # flagged:  W    W    C    -    -    -    W    -        -    W
    #           open upd  esc       resolved     reopen (cool-down)  new alert (cool-down over)
    book = AlertBook("s1", cooldown_ms=3 * BUCKET, resolve_after_ms=2 * BUCKET)
    opened = raise_(book, 0)
    assert [(a.state, a.severity, a.started_ms) for a in opened] == [("opened", "warning", 0)]
    assert raise_(book, 0) == []  # the same bucket again: nothing new
    assert [a.state for a in raise_(book, 1)] == ["updated"]
    escalated = raise_(book, 2, severity="critical")
    assert [(a.state, a.severity, a.bucket_start_ms) for a in escalated] == [("updated", "critical", 2 * BUCKET)]
    assert [a.severity for a in raise_(book, 2, severity="warning")] == []  # a lower severity, same bucket
    assert book.clear("arrivals_high", 4 * BUCKET) == []  # quiet for one bucket only
    resolved = book.clear("arrivals_high", 5 * BUCKET)
    assert [(a.state, a.resolved_ms) for a in resolved] == [("resolved", 5 * BUCKET)]
    reopened = raise_(book, 6)
    assert [(a.state, a.alert_id, a.started_ms) for a in reopened] == [("updated", opened[0].alert_id, 0)]
    book.clear("arrivals_high", 9 * BUCKET)
    fresh = raise_(book, 16)
    assert fresh[0].state == "opened" and fresh[0].alert_id == alert_id("s1", "arrivals_high", 16 * BUCKET)
    # Kinds are independent.
    assert raise_(book, 16, kind="queue_wait")[0].state == "opened"
    assert {a.kind for a in book.open_alerts()} == {"arrivals_high", "queue_wait"}


def test_replay_gives_the_same_alerts_and_state_round_trips():
    def play(book, steps):
        out = []
        for i, flagged in steps:
            out += raise_(book, i) if flagged else book.clear("arrivals_high", (i + 1) * BUCKET)
        return out

    steps = [(i, i % 12 in (0, 1)) for i in range(40)]
    a = play(AlertBook("s1"), steps)
    b = play(AlertBook("s1"), steps)
    assert a == b and len({x.alert_id for x in a}) > 1
    # Interrupt halfway: plain-data state, restored, continues exactly as the uninterrupted book.
    book = AlertBook("s1")
    first = play(book, steps[:20])
    restored = AlertBook.from_state(json.loads(json.dumps(book.to_state())))
    assert first + play(restored, steps[20:]) == a
    with pytest.raises(ValueError):
        raise_(AlertBook("s1"), 0, severity="fatal")


def forecast_for(start, mean=100.0, lo95=80.0, hi95=120.0):
    return Forecast(start - BUCKET, start, BUCKET, "m", [mean], [mean - 13], [mean + 13], [lo95], [hi95])


T0 = 1_795_600_800_000  # 2026-11-24T10:00:00Z, 10:00 in London (GMT)


def feed(watch, counts, t0=T0, **kw):
    outcomes = []
    for i, count in enumerate(counts):
        start = t0 + i * BUCKET
        watch.note_forecast(forecast_for(start))
        outcomes.append(watch.learn_bucket(start, start + BUCKET, count, **kw))
    return outcomes


def test_a_burst_opens_a_critical_alert_with_local_times_and_is_learned_clipped():
    watch = StoreWatch("retail-001", bucket_ms=BUCKET, tz="Europe/London", lead_ms=BUCKET, warmup_ms=0)
    out = feed(watch, [99, 101, 100, 98, 420, 100, 101, 99])
    assert [o.flagged for o in out] == [False] * 4 + [True] + [False] * 3
    assert out[4].learn_value == 120.0 and out[3].learn_value == 98
    alert = out[4].changes[0]
    assert (alert.state, alert.kind, alert.severity) == ("opened", "arrivals_high", "critical")
    assert alert.explanation == "arrivals 420 in 12:00-12:30, expected 80-120"
    assert alert.alert_id == alert_id("retail-001", "arrivals_high", T0 + 4 * BUCKET)
    assert [c.state for o in out[5:] for c in o.changes] == ["resolved"]


def test_summer_time_in_explanations():
    summer = int(dt.datetime(2026, 7, 8, 8, tzinfo=dt.UTC).timestamp() * 1000)  # London is UTC+1
    watch = StoreWatch("retail-001", bucket_ms=BUCKET, tz="Europe/London", lead_ms=BUCKET, warmup_ms=0)
    out = feed(watch, [100, 100, 500], t0=summer)
    assert "in 10:00-10:30" in out[2].changes[0].explanation  # 09:00-09:30 UTC


def test_a_sustained_drop_is_caught_by_the_cusum_not_by_any_single_bucket():
    # Counts scatter by about 12 around the forecast of 100, so one unit is about 12 counts. Then each bucket is
    # 30 below it (10 under the 95 % bound): no bucket alone is 8 units out, but the deficit accumulates by
    # min(2.5, winsor 2) - k 1 = 1 unit a bucket, to h = 8.
    watch = StoreWatch("retail-001", bucket_ms=BUCKET, lead_ms=BUCKET, warmup_ms=0, point=8.0, cusum_k=1.0,
                       cusum_h=8.0)
    out = feed(watch, [100, 88, 112, 90, 110, 100] * 6 + [70] * 16)
    flagged = [i for i, o in enumerate(out) if o.flagged]
    assert all(o.score < 1 for o in out[:36])
    assert flagged and 36 + 5 <= flagged[0] <= 36 + 10
    opened = [c for o in out for c in o.changes if c.state == "opened"]
    assert [c.kind for c in opened] == ["arrivals_low"]
    assert "below the forecast for several buckets" in opened[0].explanation


def test_a_lasting_change_is_learned_after_accept_after():
    watch = StoreWatch("retail-001", bucket_ms=BUCKET, lead_ms=BUCKET, warmup_ms=0, accept_after_ms=3 * BUCKET)
    out = feed(watch, [100, 101, 99, 100] + [500] * 6)
    assert [o.learn_value for o in out[4:]] == [120.0, 120.0, 120.0, 500, 500, 500]


def test_warm_up_repeats_and_gaps():
    watch = StoreWatch("retail-001", bucket_ms=BUCKET, lead_ms=BUCKET, warmup_ms=4 * BUCKET)
    out = feed(watch, [100, 900, 100, 100, 100, 900])
    assert not out[1].flagged and out[5].flagged  # bucket 1 is in the warm-up
    again = watch.learn_bucket(T0 + 5 * BUCKET, T0 + 6 * BUCKET, 900)
    assert again.changes == [] and again.expected is None  # a repeat is judged once
    gap = watch.learn_bucket(T0 + 6 * BUCKET, T0 + 7 * BUCKET, None, forecast=Expected(100, 90, 110, 80, 120))
    assert gap.learn_value is None and not gap.flagged


def test_the_forecast_made_lead_buckets_before_is_the_one_used():
    watch = StoreWatch("s", bucket_ms=BUCKET, lead_ms=3 * BUCKET, warmup_ms=0)
    # Made at bucket 0 for buckets 1..4: the one for bucket 3 (3 ahead) is kept, and the next bucket's as a fallback.
    watch.note_forecast(Forecast(0, BUCKET, BUCKET, "m", [10.0, 20.0, 30.0, 40.0], [9.0, 19, 29, 39],
                                 [11.0, 21, 31, 41], [8.0, 18, 28, 38], [12.0, 22, 32, 42]))
    assert watch.expected_for(3 * BUCKET) == Expected(30.0, 29.0, 31.0, 28.0, 32.0)
    assert watch.expected_for(BUCKET) == Expected(10.0, 9.0, 11.0, 8.0, 12.0)
    # A later forecast's one-bucket-ahead value does not replace the lead forecast kept for bucket 3.
    watch.note_forecast(Forecast(2 * BUCKET, 3 * BUCKET, BUCKET, "m", [99.0], [98.0], [100.0], [97.0], [101.0]))
    assert watch.expected_for(3 * BUCKET).mean == 30.0


def test_early_warning_from_check_partial():
    watch = StoreWatch("retail-001", bucket_ms=BUCKET, tz="Europe/London", lead_ms=BUCKET, warmup_ms=0)
    start = T0
    watch.note_forecast(forecast_for(start))
    # The bound is where the closed bucket would alert: 8 units (1.0 * sqrt(100 + 1) each, no scale
    # learned yet) beyond the 95 % bound of 120, so 200.4.
    assert watch.check_partial(start + 5 * MIN, start, start + BUCKET, 60) == []  # too early to call
    # "Likely": half the bucket left, and even at the lower 80 % bound (87) it brings 43.5 more.
    assert watch.check_partial(start + 15 * MIN, start, start + BUCKET, 150) == []  # 150 + 43.5 = 193.5 < 200.4
    likely = watch.check_partial(start + 15 * MIN, start, start + BUCKET, 160)  # 160 + 43.5 = 203.5 > 200.4
    assert [(a.state, a.severity) for a in likely] == [("opened", "info")]
    certain = watch.check_partial(start + 20 * MIN, start, start + BUCKET, 210)
    assert [(a.state, a.severity) for a in certain] == [("updated", "warning")]
    assert "210 so far in 10:00-10:30" in certain[0].explanation
    closed = watch.learn_bucket(start, start + BUCKET, 400)  # closes well above: the alert turns critical
    assert [(a.state, a.alert_id, a.severity) for a in closed.changes] == [
        ("updated", likely[0].alert_id, "critical")]


def test_rules_through_signals():
    watch = StoreWatch("bank-002", bucket_ms=BUCKET, lead_ms=BUCKET, warmup_ms=0, capacity=50, queue_target_s=300,
                       drift_window_ms=2 * BUCKET, drift_min_gap=10, signals_threshold=None)
    out = feed(watch, [100, 100, 100], signals={"occupancy": 70, "queue_wait_s": 200, "departures": 95})
    kinds = {c.kind for o in out for c in o.changes if c.state == "opened"}
    assert kinds == {"over_capacity"}
    assert out[0].changes[0].severity == "critical"  # 70 > 1.2 * 50
    more = feed(watch, [100, 100], t0=T0 + 3 * BUCKET, signals={"occupancy": 10, "queue_wait_s": 900,
                                                                 "departures": 20})
    kinds = [c.kind for o in more for c in o.changes if c.state == "opened"]
    assert "queue_wait" in kinds and "entry_exit_drift" in kinds
    assert "160 entries against" not in str(more)  # 200 entries in the window, 40 exits
    assert any("200 entries against 40 exits" in c.explanation for o in more for c in o.changes)


def test_silent_sensor_through_the_watch():
    watch = StoreWatch("retail-001", bucket_ms=BUCKET, lead_ms=BUCKET, warmup_ms=0, silent_after_ms=2 * BUCKET,
                       point=1e6, cusum_h=1e6)
    out = feed(watch, [100, 0, 0, 0])
    opened = [(i, c.kind) for i, o in enumerate(out) for c in o.changes if c.state == "opened"]
    assert opened == [(2, "sensor_silent")]


def test_watch_state_round_trip_is_plain_and_lossless():
    counts = [100, 97, 103, 99, 380, 101, 60, 58, 55, 57, 100, 99, 102] * 3
    whole = StoreWatch("retail-001", bucket_ms=BUCKET, lead_ms=BUCKET, warmup_ms=2 * BUCKET, cusum_k=1.0,
                       cusum_h=6.0)
    expected = feed(whole, counts)
    half = StoreWatch("retail-001", bucket_ms=BUCKET, lead_ms=BUCKET, warmup_ms=2 * BUCKET, cusum_k=1.0,
                      cusum_h=6.0)
    first = feed(half, counts[:17])
    state = json.loads(json.dumps(half.to_state()))
    restored = StoreWatch.from_state(state)
    rest = feed(restored, counts[17:], t0=T0 + 17 * BUCKET)
    assert [(o.changes, o.learn_value, o.score) for o in first + rest] == [
        (o.changes, o.learn_value, o.score) for o in expected]
    assert pickle.loads(pickle.dumps(restored)).to_state() == restored.to_state()


def test_unit_test_params_build():
    for params in StoreWatch._unit_test_params():
        watch = StoreWatch(**params)
        assert StoreWatch.from_state(json.loads(json.dumps(watch.to_state()))).to_state() == watch.to_state()
    for params in AlertBook._unit_test_params():
        book = AlertBook(**params)
        assert AlertBook.from_state(book.to_state()).to_state() == book.to_state()
