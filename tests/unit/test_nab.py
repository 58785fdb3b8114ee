"""NAB scoring against hand-worked examples and NAB's published per-file scores on nyc_taxi."""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import pytest

from footfall.operators.evaluation.nab import (
    detection_delays,
    event_scores,
    merge_windows,
    nab_score,
    probation_rows,
    scaled_sigmoid,
)
from tests import SHARED_DATA

DATA = Path(__file__).resolve().parents[1] / "data"
NYC = SHARED_DATA / "nab_nyc_taxi"


def s(y: float) -> float:
    # The scaled sigmoid, written out again rather than imported.
    return 2 / (1 + math.exp(5 * y)) - 1


def test_scaled_sigmoid_values():
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(-1.0) == pytest.approx(0.9866142981514303)
    assert scaled_sigmoid(3.0) == pytest.approx(2 / (1 + math.exp(15)) - 1)
    assert scaled_sigmoid(3.01) == -1.0


def test_probation_is_15_percent_capped_at_750_rows():
    assert probation_rows(10320) == 750  # 0.15 * 5000
    assert probation_rows(1000) == 150
    assert probation_rows(1001) == 150  # floor(150.15)


def test_hand_worked_file():
    # 40 rows; windows on rows 10-19 (width 10) and 30-33 (width 4); probation 15 % of 40 = 6 rows.
    #
    # rows: 0    3 . . . . . 10 12 . . . . . 19 21 . . . 25 . . . 30 31 . 33 . . . 37
    # det:       x             x  x              x          x          x    x        x
    #            probation     TP later-in-win  after w1   after w1   TP   2nd  after w2
    rows = list(range(40))
    fired = [3, 10, 12, 21, 25, 30, 31, 37]
    result = nab_score(rows, [(10, 19), (30, 33)], fired)
    assert result.probation == 6
    tp1 = s(-(19 - 10 + 1) / 10) / s(-1)  # the left edge: exactly 1
    tp2 = s(-(33 - 30 + 1) / 4) / s(-1)  # the left edge of the second window: 1 again
    fp21 = 0.11 * s(abs(19 - 21) / (10 - 1))
    fp25 = 0.11 * s(abs(19 - 25) / (10 - 1))
    fp37 = 0.11 * s(abs(33 - 37) / (4 - 1))
    assert tp1 == pytest.approx(1.0) and tp2 == pytest.approx(1.0)
    assert result.raw == pytest.approx(tp1 + tp2 + fp21 + fp25 + fp37)
    assert result.false_positives == 3 and result.detected_windows == 2
    assert [w.detected_at for w in result.windows] == [10, 30]
    # A late first detection earns less, a window with none costs A_FN, and the profiles weigh it all.
    late = nab_score(rows, [(10, 19), (30, 33)], [17], profile="reward_low_FN_rate")
    assert late.raw == pytest.approx(s(-(19 - 17 + 1) / 10) / s(-1) - 2.0)
    assert late.null == -4.0 and late.perfect == 2.0
    assert late.normalized == pytest.approx(100 * (late.raw + 4) / 6)
    before = nab_score(rows, [(10, 19), (30, 33)], [8], profile="reward_low_FP_rate")
    assert before.raw == pytest.approx(-0.22 - 2.0)


def test_boolean_detections_and_timestamps_agree():
    rows = [1000 * i for i in range(40)]
    flags = [i in {12, 25, 31} for i in range(40)]
    a = nab_score(rows, [(10_000, 19_000), (30_000, 33_000)], flags)
    b = nab_score(rows, [(10_000, 19_000), (30_000, 33_000)], [12_000, 25_000, 31_000])
    assert a.raw == b.raw
    with pytest.raises(ValueError, match="not the timestamp of a row"):
        nab_score(rows, [(10_000, 19_000)], [12_500])


def test_overlapping_windows_merge():
    assert merge_windows([(5, 9), (1, 3), (8, 12)]) == [(1, 3), (5, 12)]
    result = nab_score(list(range(30)), [(5, 9), (8, 12)], [], probationary_percent=0.0)
    assert len(result.windows) == 1 and result.raw == -1.0


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp() * 1000)


def _published_case(name: str) -> tuple[list[int], list[tuple[int, int]], list[int]]:
    with open(NYC / "nyc_taxi.csv") as f:
        rows = [_ms(r["timestamp"]) for r in csv.DictReader(f)]
    with open(NYC / "label_windows.csv") as f:
        windows = [(_ms(r["window_start"]), _ms(r["window_end"])) for r in csv.DictReader(f)]
    with open(DATA / f"nab_nyc_taxi_{name}_detections.csv") as f:
        fired = [_ms(line.strip()) for line in f if line[:1].isdigit()]
    return rows, windows, fired


@pytest.mark.skipif(not NYC.exists(), reason="needs the shared nab_nyc_taxi data")
@pytest.mark.parametrize(("detector", "profile", "published"), [
    # results/<detector>/<detector>_<profile>_scores.csv, nyc_taxi row
    ("relativeEntropy", "standard", 3.83335967699),
    ("relativeEntropy", "reward_low_FN_rate", 3.83335967699),
    ("knncad", "standard", 0.26509116701106183),
    ("knncad", "reward_low_FP_rate", -0.1740638788915383),
    ("knncad", "reward_low_FN_rate", -1.7349088329889382),
])
def test_published_nyc_taxi_scores(detector, profile, published):
    rows, windows, fired = _published_case(detector)
    result = nab_score(rows, windows, fired, profile=profile)
    assert result.raw == pytest.approx(published, abs=1e-9)
    assert result.probation == 750


@pytest.mark.skipif(not NYC.exists(), reason="needs the shared nab_nyc_taxi data")
def test_published_window_credits_of_knncad():
    # NAB writes each window's credit in the S(t) column of the window's first row.
    rows, windows, fired = _published_case("knncad")
    credits = [w.credit for w in nab_score(rows, windows, fired).windows]
    assert credits == pytest.approx([0.8745446430798064, -1.0, 0.9583174465009056, 0.8713841233329499, -1.0])


def test_event_scores_hand_worked():
    #   windows:      [10--------20]          [40----50]      [70-75]
    #   alerts:   [5-9]   [15-16]  [20-30]        [45-60]                [90-91]
    #             false    hit      hit (touches)  hit                     false
    windows = [(10, 20), (40, 50), (70, 75)]
    alerts = [(5, 9), (15, 16), (20, 30), (45, 60), (90, 91)]
    scores = event_scores(alerts, windows)
    assert (scores.hits, scores.false_alerts, scores.detected) == (3, 2, 2)
    assert scores.precision == pytest.approx(3 / 5) and scores.recall == pytest.approx(2 / 3)
    assert scores.f1 == pytest.approx(2 * 0.6 * (2 / 3) / (0.6 + 2 / 3))
    empty = event_scores([], windows)
    assert empty.precision is None and empty.recall == 0.0


def test_delays_per_window():
    windows = [(10, 20), (40, 50), (70, 75)]
    alerts = [(5, 9), (15, 16), (20, 30), (45, 60)]
    delays = detection_delays(alerts, windows, bucket_ms=5)
    assert [(d["first_alert"], d["delay_ms"], d["delay_buckets"]) for d in delays] == [
        (15, 5, 1.0), (45, 5, 1.0), (None, None, None)]
