"""Plain business rules on a store's closed buckets: capacity, queue wait, a silent sensor, entries against exits.

Each rule gives a `RuleHit` (kind, severity, score with 1 = the limit, and a few
words saying why) or None:

- `over_capacity`: people inside above the store's capacity (critical above 120 %);
- `queue_wait_over_target`: the queue wait above its service-level target
  (critical above twice the target);
- `SilentSensor`: `buckets` consecutive buckets of zero where the forecast
  expects clearly more (its 95 % lower bound above zero and its mean at least
  `min_expected`): a counter stuck at zero or cut off during opening hours;
- `EntryExitDrift`: over the last `window` buckets, entries and exits apart by
  more than `max(min_gap, ratio * entries)` (a door counter that misses one
  direction: occupancy then drifts and never comes back to zero).

The stateful ones have River's `learn_one` / `score_one` and plain `to_state`.

Examples
--------
>>> over_capacity(130, 120).severity, over_capacity(160, 120).severity, over_capacity(90, 120)
('warning', 'critical', None)
>>> silent = SilentSensor(buckets=3, min_expected=5.0)
>>> for observed in [0, 0, 0]:
...     silent.learn_one(observed, expected_mean=40.0, expected_lo95=12.0)
...     print(silent.score_one())
0.3333333333333333
0.6666666666666666
1.0

"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["EntryExitDrift", "RuleHit", "SilentSensor", "over_capacity", "queue_wait_over_target"]


@dataclass(frozen=True)
class RuleHit:
    """A rule that fired: its alert kind, severity, score (1 = the limit) and why, in words."""

    kind: str
    severity: str
    score: float
    reason: str


def over_capacity(occupancy: float | None, capacity: float | None) -> RuleHit | None:
    """People inside above capacity: warning, critical above 120 % of it."""
    if occupancy is None or not capacity or occupancy <= capacity:
        return None
    ratio = occupancy / capacity
    return RuleHit("over_capacity", "critical" if ratio > 1.2 else "warning", ratio,
                   f"{occupancy:,.0f} people inside, capacity {capacity:,.0f}")


def queue_wait_over_target(wait_s: float | None, target_s: float | None) -> RuleHit | None:
    """Queue wait above its target: warning, critical above twice the target.

    >>> hit = queue_wait_over_target(720, 300)
    >>> hit.severity, hit.score, hit.reason
    ('critical', 2.4, 'queue wait 12.0 min, target 5.0 min')

    """
    if wait_s is None or not target_s or wait_s <= target_s:
        return None
    ratio = wait_s / target_s
    return RuleHit("queue_wait", "critical" if ratio > 2 else "warning", ratio,
                   f"queue wait {wait_s / 60:.1f} min, target {target_s / 60:.1f} min")


class SilentSensor:
    """Consecutive zero buckets where the forecast expects clearly more than zero (see the module docstring)."""

    def __init__(self, buckets: int = 4, min_expected: float = 5.0) -> None:
        if buckets < 1 or min_expected < 0:
            raise ValueError("buckets must be >= 1 and min_expected >= 0")
        self.buckets = buckets
        self.min_expected = min_expected
        self.run = 0  # consecutive silent buckets so far

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, float]]:
        yield {}
        yield {"buckets": 2, "min_expected": 1.0}

    def learn_one(self, observed: float | None, expected_mean: float | None, expected_lo95: float | None) -> None:
        if observed is None or expected_mean is None or expected_lo95 is None:
            return  # a gap, or nothing to compare with: neither evidence nor an all-clear
        if observed == 0 and expected_lo95 > 0 and expected_mean >= self.min_expected:
            self.run += 1
        else:
            self.run = 0

    def score_one(self) -> float:
        return self.run / self.buckets

    def hit(self) -> RuleHit | None:
        if self.run < self.buckets:
            return None
        return RuleHit("sensor_silent", "warning", self.score_one(), f"no count for {self.run} buckets in a row")

    def to_state(self) -> dict[str, Any]:
        return {"buckets": self.buckets, "min_expected": self.min_expected, "run": self.run}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SilentSensor:
        rule = cls(state["buckets"], state["min_expected"])
        rule.run = state["run"]
        return rule


class EntryExitDrift:
    """Entries and exits over the last `window` buckets further apart than `max(min_gap, ratio * entries)`.

    >>> drift = EntryExitDrift(window=4, min_gap=20, ratio=0.3)
    >>> for arrivals, departures in [(50, 48), (60, 50), (55, 30), (40, 10)]:
    ...     drift.learn_one(arrivals, departures)
    ...     print(round(drift.score_one(), 2))  # |entries - exits| / max(20, 0.3 * entries)
    0.1
    0.36
    0.75
    1.09
    >>> drift.hit().reason
    '205 entries against 138 exits over the last 4 buckets'

    """

    def __init__(self, window: int = 8, min_gap: float = 30.0, ratio: float = 0.3) -> None:
        if window < 1 or min_gap <= 0 or ratio <= 0:
            raise ValueError("window must be >= 1, min_gap and ratio > 0")
        self.window = window
        self.min_gap = min_gap
        self.ratio = ratio
        self.pairs: deque[tuple[float, float]] = deque(maxlen=window)

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, float]]:
        yield {}
        yield {"window": 2, "min_gap": 5.0, "ratio": 0.5}

    def learn_one(self, arrivals: float | None, departures: float | None) -> None:
        if arrivals is None or departures is None:
            return
        self.pairs.append((float(arrivals), float(departures)))

    def _sums(self) -> tuple[float, float]:
        return sum(a for a, _ in self.pairs), sum(d for _, d in self.pairs)

    def score_one(self) -> float:
        entries, exits = self._sums()
        return abs(entries - exits) / max(self.min_gap, self.ratio * entries)

    def hit(self) -> RuleHit | None:
        if len(self.pairs) < self.window or self.score_one() <= 1:
            return None
        entries, exits = self._sums()
        return RuleHit("entry_exit_drift", "warning", self.score_one(),
                       f"{entries:,.0f} entries against {exits:,.0f} exits over the last {self.window} buckets")

    def to_state(self) -> dict[str, Any]:
        return {"window": self.window, "min_gap": self.min_gap, "ratio": self.ratio,
                "pairs": [list(p) for p in self.pairs]}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> EntryExitDrift:
        rule = cls(state["window"], state["min_gap"], state["ratio"])
        rule.pairs.extend((a, d) for a, d in state["pairs"])
        return rule
