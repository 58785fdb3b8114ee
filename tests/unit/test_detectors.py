"""Detectors and rules against hand-worked values and brute-force recomputation."""

from __future__ import annotations

import json
import math
import pickle
import random
import statistics

import pytest

from footfall.operators.alerting.detectors import (
    Expected,
    MultiSignalDetector,
    ResidualDetector,
    early_warning,
    value_to_learn,
)
from footfall.operators.alerting.rules import (
    EntryExitDrift,
    QueueWaitBreach,
    SilentSensor,
    over_capacity,
    queue_wait_over_target,
)

E = Expected(99.0, 90.0, 110.0, 80.0, 120.0)  # sqrt(99 + 1) = 10


def test_value_to_learn_clips_only_flagged_buckets():
    assert value_to_learn(500.0, E, True) == 120.0
    assert value_to_learn(10.0, E, True) == 80.0
    assert value_to_learn(100.0, E, True) == 100.0
    assert value_to_learn(500.0, E, False) == 500.0
    assert value_to_learn(500.0, None, True) == 500.0


def test_point_score_hand_worked():
    # No scale yet: one unit is 1 * sqrt(99 + 1) = 10 counts. 300 lies 180 counts = 18 units beyond 120.
    d = ResidualDetector(point=6.0, cusum_k=2.0, cusum_h=100.0)
    a = d.assess(300.0, E)
    assert a.point == pytest.approx(18.0) and a.residual == pytest.approx(20.1)
    assert a.score == pytest.approx(3.0) and a.direction == 1
    low = d.assess(20.0, E)
    assert low.point == pytest.approx(6.0) and low.score == pytest.approx(1.0) and low.direction == -1
    assert d.score_one(100.0, E) == 0.0


def test_min_scale_keeps_quiet_buckets_calm():
    # A forecast of 0: one unit would be scale * 1; min_scale (3 counts) is the floor.
    d = ResidualDetector(point=2.0, min_scale=3.0)
    night = Expected(0.0, 0.0, 0.5, 0.0, 1.0)
    assert d.assess(4.0, night).point == pytest.approx(1.0)  # (4 - 1) / 3


def brute_force_cusum(residuals, k, h, winsor, cap):
    up = down = 0.0
    out = []
    for r in residuals:
        step = min(max(r, -winsor), winsor)
        up, down = max(0.0, up + step - k), max(0.0, down - step - k)
        out.append((up, down))
        up, down = min(up, cap * h), min(down, cap * h)
    return out


def test_cusum_matches_a_brute_force_recomputation():
    rng = random.Random(3)
    d = ResidualDetector(point=1e9, cusum_k=1.0, cusum_h=10.0, fading=0.05, cap=2.0)
    scale = None
    residuals, seen = [], []
    for i in range(300):
        mean = 50 + 20 * math.sin(i / 7)
        y = mean + rng.gauss(0, 5) + (25 if 150 <= i < 170 else 0)  # a sustained shift in the middle
        e = Expected(mean, mean - 6, mean + 6, mean - 10, mean + 10)
        unit = max((scale if scale is not None else 1.0) * math.sqrt(mean + 1), 1.0)
        residuals.append((y - mean) / unit)
        a = d.assess(y, e)
        seen.append((a.cusum_up, a.cusum_down))
        d.learn_one(y, e)
        z = abs(y - mean) / math.sqrt(mean + 1)
        scale = z if scale is None else 0.95 * scale + 0.05 * z
    expected = brute_force_cusum(residuals, 1.0, 10.0, 10.0 / 4, 2.0)
    for got, want in zip(seen, expected, strict=True):
        assert got == pytest.approx(want)
    alarms = [i for i, (up, _) in enumerate(seen) if up >= 10.0]
    assert alarms and 150 <= alarms[0] < 160  # the shift is caught within ten buckets, not before it


def test_a_confirmed_cusum_alerts_only_on_buckets_at_or_beyond_the_95_band():
    # Same residuals through a plain and a confirming detector: the CUSUMs are equal, and the
    # confirming one's score passes 1 exactly where the plain one's does and the bucket itself is
    # on or beyond the 95 % bound on the CUSUM's side (a zero where that bound is zero included).
    rng = random.Random(8)
    plain = ResidualDetector(point=1e9, cusum_k=0.5, cusum_h=4.0)
    confirming = ResidualDetector(point=1e9, cusum_k=0.5, cusum_h=4.0, confirm=True)
    flagged = 0
    for i in range(400):
        mean = 3.0 if i % 50 < 25 else 30.0
        lo95 = 0.0 if mean < 5 else mean - 11
        e = Expected(mean, max(mean - 7, 0.0), mean + 7, lo95, mean + 11)
        shift = -mean if 100 <= i < 112 else (14 if 300 <= i < 320 else 0)
        y = max(0.0, round(mean + shift + rng.gauss(0, 4)))
        a, b = plain.assess(y, e), confirming.assess(y, e)
        assert (a.cusum_up, a.cusum_down) == (b.cusum_up, b.cusum_down)
        side = y >= e.hi95 if a.cusum_up / 4.0 >= 1 else y <= e.lo95
        assert (b.score >= 1) == (a.score >= 1 and side)
        flagged += b.score >= 1
        plain.learn_one(y, e)
        confirming.learn_one(y, e)
    assert flagged > 0  # the test exercises alerts, not only their absence


def test_queue_wait_breach_matches_brute_force():
    rng = random.Random(5)
    rule = QueueWaitBreach(target_s=600, buckets=3)
    waits: list[float] = []
    for _ in range(500):
        wait = None if rng.random() < 0.1 else rng.choice([200.0, 590.0, 650.0, 1300.0])
        rule.learn_one(wait)
        if wait is not None:
            waits.append(wait)
        run = 0
        for w in reversed(waits):
            if w <= 600:
                break
            run += 1
        hit = rule.hit()
        assert (hit is not None) == (run >= 3)
        if hit is not None:
            assert hit.severity == ("critical" if waits[-1] > 1200 else "warning")
            assert f"{waits[-1] / 60:.1f} min" in hit.reason


def test_the_scale_learns_the_clipped_value():
    d = ResidualDetector()
    d.learn_one(100.0, E, learned=100.0)
    d.learn_one(1000.0, E, learned=120.0)  # the outlier teaches |120 - 99| / 10 = 2.1, not 90.1
    assert d.scale == pytest.approx(0.98 * 0.1 + 0.02 * 2.1)


def test_a_slot_that_forecasts_miss_widely_gets_its_own_scale():
    d = ResidualDetector(point=4.0, slot_fading=0.5, slot_min=2)
    for week in range(6):
        # Slot 1 is forecast well; slot 2 (say Saturday 02:00) is missed by 60 either way, week after week.
        for slot, y in [(1, 100.0), (2, 159.0 if week % 2 else 39.0)]:
            d.learn_one(y, E, slot=slot)
    global_scale = d.scale
    assert d.slots[2][2] > global_scale > d.slots[1][2]
    # 180 is 60 counts above 120: alarming for slot 1, less so where misses of 60 are the rule.
    assert d.score_one(180.0, E, slot=2) < 0.5 * d.score_one(180.0, E, slot=1)
    assert d.score_one(180.0, E, slot=7) == d.score_one(180.0, E)  # a slot never seen: the global scale


def test_multi_signal_matches_a_gaussian_on_log1p():
    rng = random.Random(5)
    d = MultiSignalDetector(grace_period=10, threshold=4.0)
    waits = [rng.uniform(50, 90) for _ in range(60)]
    for w in waits:
        d.learn_one({"queue_wait_s": w, "dwell_s": None})
    logs = [math.log1p(w) for w in waits]
    mu, sd = statistics.fmean(logs), statistics.stdev(logs)
    for value in (70.0, 200.0, 1000.0):
        z = abs(math.log1p(value) - mu) / sd
        expected = -math.log10(math.erfc(z / math.sqrt(2))) / 4.0
        assert d.score_one({"queue_wait_s": value}) == pytest.approx(expected, rel=1e-6)
    assert d.explain({"queue_wait_s": 1000.0, "dwell_s": 5.0}) == (pytest.approx(d.score_one(
        {"queue_wait_s": 1000.0})), "queue_wait_s")
    assert MultiSignalDetector().score_one({"queue_wait_s": 1e6}) == 0.0  # nothing learned yet


def test_early_warning_hand_worked():
    e = Expected(100.0, 90.0, 110.0, 80.0, 120.0)
    assert early_warning(125, 0.3, e).status == "certain"
    # 75 so far at half time: 75 + 0.5 * 100 = 125 > 120
    likely = early_warning(75, 0.5, e)
    assert likely.status == "likely" and likely.projected == 125.0
    assert early_warning(65, 0.5, e).status is None  # 115
    assert early_warning(95, 0.2, e).status is None  # too early, though 95 + 80 > 120
    with pytest.raises(ValueError):
        early_warning(1, 1.5, e)


def test_rules_hand_worked():
    assert over_capacity(120, 120) is None and over_capacity(None, 120) is None and over_capacity(200, None) is None
    assert over_capacity(121, 120).severity == "warning" and over_capacity(145, 120).severity == "critical"
    assert queue_wait_over_target(300, 300) is None
    assert queue_wait_over_target(400, 300).severity == "warning"
    assert queue_wait_over_target(601, 300).severity == "critical"


def test_silent_sensor_needs_a_run_of_zeros_where_traffic_is_expected():
    rule = SilentSensor(buckets=3, min_expected=5.0, min_surprise=None)
    for observed, mean, lo in [(0, 40, 10), (0, 40, 10), (3, 40, 10), (0, 40, 10), (0, 2, 1), (0, 40, 0)]:
        rule.learn_one(observed, mean, lo)
        assert rule.hit() is None  # broken runs, a quiet hour, a forecast that allows zero
    for _ in range(3):
        rule.learn_one(0, 40, 10)
    assert rule.hit() is not None and rule.hit().kind == "sensor_silent"
    rule.learn_one(None, 40, 10)  # a gap is no all-clear
    assert rule.hit() is not None
    rule.learn_one(12, 40, 10)
    assert rule.hit() is None


def test_silent_sensor_matches_brute_force_over_random_runs():
    # Brute force, from the whole history at every bucket: each slot's zero share is the faded
    # count of its zeros over its faded count of buckets, learned from every non-zero bucket and
    # from the zeros of runs that ended without an alert; the current run's surprise is the sum
    # of -ln(max(share, floor)) over its judged zeros where the share is under one half, with each
    # share as it stood when the run began.
    rng = random.Random(4)
    rule = SilentSensor(buckets=4, min_expected=5.0, min_surprise=9.0, fading=0.2, p_floor=0.05)
    learned: list[tuple[int, bool]] = []  # (slot, zero) in the order the slots learned them
    run: list[tuple[int, bool]] = []  # (slot, judged) of the current run of zeros
    strong = 0
    alerted = False
    for _ in range(4000):
        observed = None if rng.random() < 0.05 else (0 if rng.random() < 0.6 else rng.randint(1, 5))
        slot = rng.randrange(4)
        judge = rng.random() < 0.9
        mean = rng.choice([0.0, 2.0, 6.0])
        lo95 = rng.choice([0.0, 1.0])
        shares = {}
        for s in range(4):
            zeros = n = 0.0
            for learned_slot, zero in learned:
                if learned_slot == s:
                    zeros, n = 0.8 * zeros + zero, 0.8 * n + 1
            shares[s] = (zeros + 0.5) / (n + 1)
        rule.learn_one(observed, mean, lo95, slot=slot, judge=judge)
        if observed is None:
            continue
        if observed == 0:
            if not run:
                run_shares = shares  # the slots do not learn during a run
            run.append((slot, judge))
            strong = strong + 1 if lo95 > 0 and mean >= 5.0 else 0
        else:
            if not alerted:
                learned += [(s, True) for s, _ in run]
            learned.append((slot, False))
            run, strong = [], 0
        judged = [s for s, j in run if j]
        surprise = sum(-math.log(max(run_shares[s], 0.05)) for s in judged if run_shares[s] < 0.5)
        alerted = strong >= 4 or (len(judged) >= 2 and surprise >= 9.0)
        assert (rule.hit() is not None) == alerted
    state = json.loads(json.dumps(rule.to_state()))
    assert SilentSensor.from_state(state).to_state() == rule.to_state()


def test_entry_exit_drift_matches_brute_force():
    rng = random.Random(9)
    rule = EntryExitDrift(window=5, min_gap=20, ratio=0.25)
    pairs = []
    for _ in range(40):
        a, d = rng.randint(0, 60), rng.randint(0, 60)
        rule.learn_one(a, d)
        pairs.append((a, d))
        last = pairs[-5:]
        entries, exits = sum(p[0] for p in last), sum(p[1] for p in last)
        assert rule.score_one() == pytest.approx(abs(entries - exits) / max(20, 0.25 * entries))
        fired = len(last) == 5 and abs(entries - exits) > max(20, 0.25 * entries)
        assert (rule.hit() is not None) == fired


@pytest.mark.parametrize("cls", [ResidualDetector, MultiSignalDetector, SilentSensor, EntryExitDrift, QueueWaitBreach])
def test_unit_test_params_shared_checks(cls):
    for params in cls._unit_test_params():
        fresh = cls(**params)
        state = fresh.to_state()
        assert json.loads(json.dumps(state)) == state  # plain data
        assert cls.from_state(state).to_state() == state
        assert pickle.loads(pickle.dumps(fresh)).to_state() == state


def test_state_round_trip_midstream_changes_nothing():
    rng = random.Random(1)
    a, b = ResidualDetector(), MultiSignalDetector(grace_period=5)
    for i in range(80):
        y = 100 + rng.gauss(0, 10)
        a.learn_one(y, E, slot=i % 3)
        b.learn_one({"dwell_s": 600 + rng.gauss(0, 50), "conversion_rate": 0.2 + rng.gauss(0, 0.02)})
    a2 = ResidualDetector.from_state(json.loads(json.dumps(a.to_state())))
    b2 = MultiSignalDetector.from_state(json.loads(json.dumps(b.to_state())))
    for y in (60.0, 100.0, 180.0):
        assert a2.assess(y, E, 1) == a.assess(y, E, 1)
    x = {"dwell_s": 900.0, "conversion_rate": 0.1}
    assert b2.explain(x) == pytest.approx(b.explain(x)) or b2.explain(x) == b.explain(x)
