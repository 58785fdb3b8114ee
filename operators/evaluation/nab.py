"""Scoring detections against labelled anomaly windows: the NAB score, event-level precision and recall, delays.

The Numenta Anomaly Benchmark (NAB)[^1] scores a detector on one file of rows
(timestamps) with labelled anomaly windows (inclusive) and the rows where the
detector fired. Implemented here from its published rules:

- the first `min(floor(0.15 * rows), 0.15 * 5000)` rows are a probationary
  period: nothing fired there counts;
- in a window of `width` rows ending at row `right`, only the earliest detection
  counts, at row `i` it earns `A_TP * S(-(right - i + 1) / width) / S(-1)`,
  with the scaled sigmoid `S(y) = 2 / (1 + exp(5 y)) - 1` (`-1` past `y = 3`):
  `A_TP` at the left edge, less the later it comes; further detections in the
  same window earn nothing;
- a detection outside every window costs `A_FP` before the first window and
  `-A_FP * S(|i - right_prev| / (width_prev - 1))` after one (nearly nothing just
  after the window that precedes it, the full `A_FP` three widths later);
- every window without a detection costs `A_FN`.

The three cost profiles are `PROFILES`. A file's raw score runs from the null
detector's `-A_FN * windows` (it never fires) to the perfect one's
`A_TP * windows` (it fires on every window's first row), and the normalised
score maps that range onto 0..100.

Event-level scores take alerts as time spans instead (an alert lasts from its
first bucket to its last): an alert that overlaps a window is a hit, one that
overlaps none is false; a window overlapped by at least one alert is detected.
The delay of a detected window is the start of its first alert minus the
window's start (negative when the alert began before the window).

Examples
--------
Ten rows, one window on rows 4-7 (its width is 4), no probation. A detection on
row 5 sits at `y = -(7 - 5 + 1) / 4 = -0.75` of the window, one on row 9 two rows
past it (`y = 2 / 3`):

>>> rows = list(range(10))
>>> result = nab_score(rows, [(4, 7)], [5, 9], probationary_percent=0.0)
>>> round(result.raw, 4), result.detected_windows, result.false_positives
(0.8646, 1, 1)
>>> [round(w.credit, 4) for w in result.windows]  # S(-0.75) / S(-1) = 0.95405 / 0.98661
[0.967]
>>> round(result.fp_cost, 4)  # 0.11 * S(2 / 3) = 0.11 * -0.93111
-0.1024
>>> round(result.normalized, 2)  # 100 * (0.8646 + 1) / (1 + 1)
93.23

References
----------
[^1]: Lavin, A. and Ahmad, S., 2015. Evaluating Real-time Anomaly Detection Algorithms -- the Numenta
    Anomaly Benchmark. IEEE ICMLA, pp. 38-44; NAB v1.1, github.com/numenta/NAB (`nab/sweeper.py`,
    `config/profiles.json`).

"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "PROFILES",
    "CostProfile",
    "EventScores",
    "NabResult",
    "WindowResult",
    "detection_delays",
    "event_scores",
    "merge_windows",
    "nab_score",
    "probation_rows",
    "scaled_sigmoid",
]


@dataclass(frozen=True)
class CostProfile:
    """NAB's weights: credit for a detected window, cost of a false detection and of a missed window."""

    tp: float
    fp: float
    fn: float


PROFILES: dict[str, CostProfile] = {
    "standard": CostProfile(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": CostProfile(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": CostProfile(tp=1.0, fp=0.11, fn=2.0),
}


def scaled_sigmoid(y: float) -> float:
    """`2 / (1 + exp(5 y)) - 1`, and `-1` beyond `y = 3`: +0.987 at `y = -1`, 0 at 0, near -1 past 1.

    >>> [round(scaled_sigmoid(y), 5) for y in (-1.0, -0.5, 0.0, 1.0, 3.5)]
    [0.98661, 0.84828, 0.0, -0.98661, -1.0]

    """
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def probation_rows(n_rows: int, probationary_percent: float = 0.15) -> int:
    """Rows at the start that are not scored: `min(floor(p * n_rows), p * 5000)`, rounded up.

    >>> probation_rows(10320), probation_rows(4032), probation_rows(100, 0.0)
    (750, 604, 0)

    """
    return math.ceil(min(math.floor(probationary_percent * n_rows), probationary_percent * 5000))


def merge_windows(windows: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Windows sorted, with overlapping (or touching) ones merged, as NAB's labeller does.

    >>> merge_windows([(10, 20), (0, 5), (15, 30), (31, 40)])
    [(0, 5), (10, 40)]

    """
    merged: list[tuple[int, int]] = []
    for start, end in sorted(windows):
        if end < start:
            raise ValueError(f"window ({start}, {end}) ends before it starts")
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@dataclass(frozen=True)
class WindowResult:
    """One window: its bounds, its rows, the first counted detection in it and the credit that earned."""

    start: int
    end: int
    first_row: int
    last_row: int
    detected_at: int | None  # the timestamp of the earliest counted detection
    credit: float  # A_TP-weighted credit, or -A_FN when missed


@dataclass(frozen=True)
class NabResult:
    """A file's NAB score under one profile (see the module docstring)."""

    profile: str
    raw: float
    null: float
    perfect: float
    probation: int
    windows: list[WindowResult]
    false_positives: int  # counted detections outside every window
    fp_cost: float  # their summed (negative) score
    detected_windows: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "detected_windows", sum(w.detected_at is not None for w in self.windows))

    @property
    def normalized(self) -> float:
        """`100 * (raw - null) / (perfect - null)`: 0 for the null detector, 100 for the perfect one."""
        if self.perfect == self.null:
            return 100.0 if self.raw >= self.perfect else 0.0
        return 100.0 * (self.raw - self.null) / (self.perfect - self.null)

    def summary(self) -> dict[str, float | int | str]:
        return {"profile": self.profile, "raw": self.raw, "normalized": self.normalized, "null": self.null,
                "perfect": self.perfect, "detected_windows": self.detected_windows,
                "windows": len(self.windows), "false_positives": self.false_positives, "fp_cost": self.fp_cost}


def _detected_rows(timestamps: Sequence[int], detections: Sequence[bool] | Iterable[int]) -> list[int]:
    if isinstance(detections, Sequence) and len(detections) == len(timestamps) and all(
            isinstance(d, bool) for d in detections):
        return [i for i, fired in enumerate(detections) if fired]
    rows = []
    for ts in detections:
        i = bisect.bisect_left(timestamps, ts)  # type: ignore[arg-type]
        if i == len(timestamps) or timestamps[i] != ts:
            raise ValueError(f"detection at {ts} is not the timestamp of a row")
        rows.append(i)
    return sorted(set(rows))


def nab_score(
    timestamps: Sequence[int],
    windows: Iterable[tuple[int, int]],
    detections: Sequence[bool] | Iterable[int],
    profile: str = "standard",
    probationary_percent: float = 0.15,
) -> NabResult:
    """NAB's score of one file.

    Parameters
    ----------
    timestamps
        The rows' timestamps, increasing (any unit, e.g. epoch ms).
    windows
        Labelled anomaly windows `(start, end)`, inclusive, in the same unit; overlapping ones are merged.
    detections
        One boolean per row (fired or not), or the timestamps of the rows where the detector fired.
    profile
        A key of `PROFILES`.
    probationary_percent
        Share of the rows (at most of 5,000) at the start that are not scored.

    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    if any(b <= a for a, b in itertools.pairwise(timestamps)):
        raise ValueError("timestamps must increase")
    cost = PROFILES[profile]
    fired = _detected_rows(timestamps, detections)
    bounds = []  # (first_row, last_row) of each window
    merged = merge_windows(windows)
    for start, end in merged:
        first = bisect.bisect_left(timestamps, start)
        last = bisect.bisect_right(timestamps, end) - 1
        if last < first:
            raise ValueError(f"window ({start}, {end}) holds no row")
        bounds.append((first, last))
    probation = probation_rows(len(timestamps), probationary_percent)
    detected: dict[int, int] = {}  # window index -> row of its first counted detection
    fp_cost, false_positives = 0.0, 0
    max_tp = scaled_sigmoid(-1.0)
    for row in fired:
        if row < probation:
            continue
        k = bisect.bisect_right(bounds, (row, math.inf)) - 1  # the last window starting at or before `row`
        if k >= 0 and bounds[k][0] <= row <= bounds[k][1]:
            detected.setdefault(k, row)
            continue
        false_positives += 1
        if k < 0:
            fp_cost -= cost.fp
        else:
            first, last = bounds[k]
            width = last - first + 1
            # A one-row window would divide by zero in NAB; such a detection is scored one row past it.
            fp_cost += scaled_sigmoid(abs(last - row) / max(width - 1, 1)) * cost.fp
    results = []
    tp_total = 0.0
    for k, ((start, end), (first, last)) in enumerate(zip(merged, bounds, strict=True)):
        if k in detected:
            row = detected[k]
            credit = scaled_sigmoid(-(last - row + 1) / (last - first + 1)) * cost.tp / max_tp
            tp_total += credit
            results.append(WindowResult(start, end, first, last, timestamps[row], credit))
        else:
            results.append(WindowResult(start, end, first, last, None, -cost.fn))
    missed = len(bounds) - len(detected)
    raw = tp_total + fp_cost - cost.fn * missed
    return NabResult(profile, raw, -cost.fn * len(bounds), cost.tp * len(bounds), probation, results,
                     false_positives, fp_cost)


@dataclass(frozen=True)
class EventScores:
    """Event-level scores of alerts (time spans) against windows."""

    alerts: int
    hits: int  # alerts overlapping a window
    false_alerts: int
    windows: int
    detected: int  # windows overlapped by at least one alert

    @property
    def precision(self) -> float | None:
        return self.hits / self.alerts if self.alerts else None

    @property
    def recall(self) -> float | None:
        return self.detected / self.windows if self.windows else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None if p is None or r is None else 0.0
        return 2 * p * r / (p + r)

    def summary(self) -> dict[str, float | int | None]:
        return {"alerts": self.alerts, "hits": self.hits, "false_alerts": self.false_alerts, "windows": self.windows,
                "detected_windows": self.detected, "precision": self.precision, "recall": self.recall, "f1": self.f1}


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def event_scores(alerts: Sequence[tuple[int, int]], windows: Sequence[tuple[int, int]]) -> EventScores:
    """Precision, recall and F1 of alert spans `(start, end)` against windows `(start, end)` (inclusive).

    Windows are taken as given (two overlapping windows are two events).

    >>> s = event_scores([(0, 5), (8, 9), (30, 31)], [(4, 10), (20, 25)])
    >>> s.hits, s.false_alerts, s.detected, s.precision, s.recall, round(s.f1, 3)
    (2, 1, 1, 0.6666666666666666, 0.5, 0.571)

    """
    hits = sum(any(_overlaps(a, w) for w in windows) for a in alerts)
    detected = sum(any(_overlaps(a, w) for a in alerts) for w in windows)
    return EventScores(len(alerts), hits, len(alerts) - hits, len(windows), detected)


def detection_delays(
    alerts: Sequence[tuple[int, int]], windows: Sequence[tuple[int, int]], bucket_ms: int,
) -> list[dict[str, int | float | None]]:
    """Per window: the start of the first alert overlapping it, and that minus the window's start (ms, buckets).

    >>> for d in detection_delays([(90, 99), (130, 250)], [(100, 160), (300, 400)], bucket_ms=30):
    ...     print(d["window_start"], d["first_alert"], d["delay_ms"], d["delay_buckets"])
    100 130 30 1.0
    300 None None None

    """
    out: list[dict[str, int | float | None]] = []
    for w in windows:
        starts = [a[0] for a in alerts if _overlaps(a, w)]
        first = min(starts) if starts else None
        delay = None if first is None else first - w[0]
        out.append({"window_start": w[0], "window_end": w[1], "first_alert": first, "delay_ms": delay,
                    "delay_buckets": None if delay is None else delay / bucket_ms})
    return out
