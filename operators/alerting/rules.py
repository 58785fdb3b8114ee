"""Plain business rules on a store's closed buckets: capacity, queue wait, a silent sensor, entries against exits.

Each rule gives a `RuleHit` (kind, severity, score with 1 = the limit, and a few
words saying why) or None:

- `over_capacity`: people inside above the store's capacity (critical above 120 %);
- `queue_wait_over_target`: the queue wait above its service-level target
  (critical above twice the target); `QueueWaitBreach` raises it only once the
  wait has stayed above the target for `buckets` closed buckets in a row;
- `SilentSensor`: `buckets` consecutive buckets of zero where the forecast
  expects clearly more (its 95 % lower bound above zero and its mean at least
  `min_expected`), or a run of zeros that the store's own history at those hours
  makes unlikely: a counter stuck at zero or cut off during opening hours;
- `EntryExitDrift`: over the last `window` buckets, entries and exits apart by
  more than `max(min_gap, ratio * entries)` (a door counter that misses one
  direction: occupancy then drifts and never comes back to zero).

The stateful ones have River's `learn_one` / `score_one` and plain `to_state`.

Examples
--------
>>> over_capacity(130, 120).severity, over_capacity(160, 120).severity, over_capacity(90, 120)
('warning', 'critical', None)
>>> silent = SilentSensor(buckets=3, min_expected=5.0, min_surprise=None)
>>> for observed in [0, 0, 0]:
...     silent.learn_one(observed, expected_mean=40.0, expected_lo95=12.0)
...     print(silent.score_one())
0.3333333333333333
0.6666666666666666
1.0

"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["EntryExitDrift", "QueueWaitBreach", "RuleHit", "SilentSensor", "over_capacity",
           "queue_wait_over_target"]


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


class QueueWaitBreach:
    """The queue wait above its target for `buckets` closed buckets in a row (see `queue_wait_over_target`).

    The wait a bucket reports is the estimate for a customer arriving as it closes: one
    busy moment. On quiet simulated branches, one bucket over the target raised an alert
    most days; a breach that lasts is one the staff can still do something about.

    >>> rule = QueueWaitBreach(target_s=600, buckets=2)
    >>> for wait in [700, 300, 720, 1500]:
    ...     rule.learn_one(wait)
    ...     hit = rule.hit()
    ...     print(wait, None if hit is None else (hit.severity, hit.reason))
    700 None
    300 None
    720 None
    1500 ('critical', 'queue wait 25.0 min, target 10.0 min, for 2 buckets')

    """

    def __init__(self, target_s: float, buckets: int = 2) -> None:
        if target_s <= 0 or buckets < 1:
            raise ValueError("target_s must be > 0 and buckets >= 1")
        self.target_s = target_s
        self.buckets = buckets
        self.run = 0  # consecutive buckets over the target
        self.last_wait_s: float | None = None

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, float]]:
        yield {"target_s": 300.0}
        yield {"target_s": 600.0, "buckets": 1}

    def learn_one(self, wait_s: float | None) -> None:
        if wait_s is None:
            return  # no queue reading in this bucket: neither evidence nor an all-clear
        self.last_wait_s = wait_s
        self.run = self.run + 1 if wait_s > self.target_s else 0

    def score_one(self) -> float:
        return self.run / self.buckets

    def hit(self) -> RuleHit | None:
        if self.run < self.buckets or self.last_wait_s is None:
            return None
        hit = queue_wait_over_target(self.last_wait_s, self.target_s)
        if hit is None or self.buckets == 1:
            return hit
        return RuleHit(hit.kind, hit.severity, hit.score, f"{hit.reason}, for {self.run} buckets")

    def to_state(self) -> dict[str, Any]:
        return {"target_s": self.target_s, "buckets": self.buckets, "run": self.run, "last_wait_s": self.last_wait_s}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> QueueWaitBreach:
        rule = cls(state["target_s"], state["buckets"])
        rule.run, rule.last_wait_s = state["run"], state["last_wait_s"]
        return rule


#: Most zero buckets a run keeps to learn from when it ends (a week of quarter hours).
_MAX_PENDING = 672


class SilentSensor:
    """Zero counts where traffic is expected (see the module docstring).

    Two ways to be silent:

    - `buckets` zero buckets in a row, each forecast to hold at least `min_expected`
      (and its 95 % lower bound above zero): a busy store's counter cut off;
    - a run of zero buckets that its own history makes unlikely: per local hour of the
      week (`slot`), an exponentially weighted share of the buckets that were zero, `p0`;
      a zero bucket where `p0` is under one half adds `-ln(max(p0, p_floor))` of surprise
      (where zeros are common, a zero is no evidence) and the run alerts when its
      surprise reaches `min_surprise` (14: about 1 in a million for independent buckets),
      over at least two buckets (one empty bucket may be a transmission hiccup). A quiet
      shop's quarter hours are often near zero, so no single one tells, but five zeros
      where three people come each quarter hour do (measured: a small telecom shop's
      stuck counter went unnoticed for 3 hours by the forecast test alone). History, not
      the forecast, sets the odds: forecasts are loosest at opening and closing times and
      on closed days, and summing their means there raised false alerts.

    A run of zeros that alerted is never learned, so a stuck counter does not teach the
    slots that zeros are normal.

    >>> silent = SilentSensor(buckets=8, min_expected=5.0)
    >>> for week in range(4):  # four weeks of a shop that is busy at this hour of the week
    ...     silent.learn_one(3, expected_mean=None, expected_lo95=None, slot=10, judge=False)
    >>> round(silent.zero_share(10), 3), round(silent.zero_share(11), 3)  # seen, never seen
    (0.106, 0.5)
    >>> for _ in range(7):  # each zero: -ln(0.106) = 2.24 of surprise; the 7th makes 15.7 >= 14
    ...     silent.learn_one(0, expected_mean=3.2, expected_lo95=0.0, slot=10)
    ...     print(round(silent.score_one(), 2), end=" ")
    0.0 0.32 0.48 0.64 0.8 0.96 1.12
    >>> silent.hit().reason
    'no count for 7 buckets in a row (at these hours 1 bucket in 9 was empty)'

    """

    def __init__(self, buckets: int = 4, min_expected: float = 5.0, min_surprise: float | None = 14.0,
                 fading: float = 0.05, p_floor: float = 0.02) -> None:
        if buckets < 1 or min_expected < 0 or (min_surprise is not None and min_surprise <= 0):
            raise ValueError("buckets must be >= 1, min_expected >= 0 and min_surprise > 0")
        if not 0 < fading < 1 or not 0 < p_floor < 1:
            raise ValueError("fading and p_floor must be in (0, 1)")
        self.buckets = buckets
        self.min_expected = min_expected
        self.min_surprise = min_surprise
        self.fading = fading
        self.p_floor = p_floor
        self.min_zeros = min(buckets, 2)
        self.run = 0  # consecutive silent buckets, each forecast to hold people
        self.zeros = 0  # consecutive zero buckets (judged ones)
        self.surprise = 0.0  # their surprise, summed
        self.rarest_share = 1.0  # the smallest zero share in the run, for the explanation
        # Per slot (hour of the week), a row [EW count of zero buckets, EW count of buckets]; one array that
        # grows to the highest slot seen (a dict of lists took 32 KB per watch).
        self.slots = np.zeros((0, 2))
        self.pending: list[int] = []  # the slots of the current run of zeros, learned when it ends

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, float | None]]:
        yield {}
        yield {"buckets": 2, "min_expected": 1.0, "min_surprise": None}

    def zero_share(self, slot: int) -> float:
        """The share of zero buckets at `slot` (one half before any: a prior of one bucket, half zero)."""
        zeros, n = self.slots[slot].tolist() if 0 <= slot < len(self.slots) else (0.0, 0.0)
        return (zeros + 0.5) / (n + 1.0)

    def learn_one(self, observed: float | None, expected_mean: float | None, expected_lo95: float | None,
                  slot: int | None = None, judge: bool = True) -> None:
        """Note a closed bucket: its count, its forecast (None: none yet) and local hour-of-week `slot`.

        With `judge=False` (a watch warming up) the bucket only teaches its slot.
        """
        if observed is None:
            return  # a gap: neither evidence nor an all-clear
        if slot is not None and self.min_surprise is not None:
            if observed == 0:
                if judge:
                    share = self.zero_share(slot)
                    self.zeros += 1
                    # Only hours where a zero is the exception are evidence: summed over a closed
                    # weekend, the small surprises of hours that are nearly always zero alerted.
                    if share < 0.5:
                        self.rarest_share = min(self.rarest_share, share)
                        self.surprise += -math.log(max(share, self.p_floor))
                # A run's zeros teach their slots only once it ends without an alert: the buckets
                # of one hour share a slot, and learning each zero at once would talk the rest of
                # the run out of it.
                if len(self.pending) < _MAX_PENDING:
                    self.pending.append(slot)
            else:
                if self.hit() is None:
                    for zero_slot in self.pending:
                        self._learn_slot(zero_slot, zero=True)
                self.pending.clear()
                self.zeros, self.surprise, self.rarest_share = 0, 0.0, 1.0
                self._learn_slot(slot, zero=False)
        if expected_mean is None or expected_lo95 is None:
            return
        if observed == 0 and expected_lo95 > 0 and expected_mean >= self.min_expected:
            self.run += 1
        else:
            self.run = 0

    def _learn_slot(self, slot: int, zero: bool) -> None:
        if slot >= len(self.slots):
            self.slots = np.concatenate([self.slots, np.zeros((max(slot + 1, 168) - len(self.slots), 2))])
        zeros, n = self.slots[slot].tolist()
        keep = 1 - self.fading
        self.slots[slot] = (keep * zeros + (1.0 if zero else 0.0), keep * n + 1.0)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if isinstance(self.slots, dict):  # saved before the array: slot -> [zeros, n]
            self.slots = self._slot_array(self.slots.items())

    @staticmethod
    def _slot_array(rows: Any) -> np.ndarray:
        rows = [(int(k), v) for k, v in rows]
        out = np.zeros((max([168, *(k + 1 for k, _ in rows)]) if rows else 0, 2))
        for k, v in rows:
            out[k] = [float(x) for x in v]
        return out

    def score_one(self) -> float:
        by_history = 0.0
        if self.min_surprise is not None and self.zeros >= self.min_zeros:
            by_history = self.surprise / self.min_surprise
        return max(self.run / self.buckets, by_history)

    def hit(self) -> RuleHit | None:
        if self.score_one() < 1:
            return None
        if self.run >= self.buckets:
            return RuleHit("sensor_silent", "warning", self.score_one(), f"no count for {self.run} buckets in a row")
        odds = max(1, round(1 / max(self.rarest_share, 1e-9)))
        return RuleHit("sensor_silent", "warning", self.score_one(),
                       f"no count for {self.zeros} buckets in a row (at these hours 1 bucket in {odds} was empty)")

    def to_state(self) -> dict[str, Any]:
        return {"buckets": self.buckets, "min_expected": self.min_expected, "min_surprise": self.min_surprise,
                "fading": self.fading, "p_floor": self.p_floor, "run": self.run, "zeros": self.zeros,
                "surprise": self.surprise, "rarest_share": self.rarest_share, "pending": list(self.pending),
                "slots": [[k, *row] for k, row in enumerate(self.slots.tolist()) if row[1]]}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SilentSensor:
        if "min_surprise" not in state:  # saved before the rule read history: that part starts afresh
            rule = cls(state["buckets"], state["min_expected"])
            rule.run = state["run"]
            return rule
        rule = cls(state["buckets"], state["min_expected"], state["min_surprise"], state["fading"], state["p_floor"])
        rule.run, rule.zeros, rule.surprise = state["run"], state["zeros"], state["surprise"]
        rule.rarest_share = state["rarest_share"]
        rule.pending = [int(k) for k in state["pending"]]
        rule.slots = rule._slot_array((k, (z, n)) for k, z, n in state["slots"])
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
        # The last `window` (entries, exits) as a ring of rows (pairs ever added: `_added`): a deque of
        # tuples of Python floats took 11 KB at a day of 15-minute buckets, this 1.5 KB.
        self._ring = np.zeros((window, 2))
        self._added = 0

    def __setstate__(self, state: dict[str, Any]) -> None:
        pairs = state.pop("pairs", None)
        self.__dict__.update(state)
        if pairs is not None:  # pickled before the ring: a deque of (entries, exits)
            self._ring, self._added = np.zeros((self.window, 2)), 0
            for arrivals, departures in pairs:
                self.learn_one(arrivals, departures)

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, float]]:
        yield {}
        yield {"window": 2, "min_gap": 5.0, "ratio": 0.5}

    def learn_one(self, arrivals: float | None, departures: float | None) -> None:
        if arrivals is None or departures is None:
            return
        self._ring[self._added % self.window] = (float(arrivals), float(departures))
        self._added += 1

    @property
    def pairs(self) -> list[tuple[float, float]]:
        """The last `window` (entries, exits), oldest first."""
        held = self._ring if self._added >= self.window else self._ring[:self._added]
        if self._added > self.window:
            held = np.roll(held, -(self._added % self.window), axis=0)
        return [(a, d) for a, d in held.tolist()]

    def _sums(self) -> tuple[float, float]:
        entries, exits = self._ring[:min(self._added, self.window)].sum(axis=0).tolist()
        return entries, exits

    def score_one(self) -> float:
        entries, exits = self._sums()
        return abs(entries - exits) / max(self.min_gap, self.ratio * entries)

    def hit(self) -> RuleHit | None:
        if self._added < self.window or self.score_one() <= 1:
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
        for arrivals, departures in state["pairs"]:
            rule.learn_one(arrivals, departures)
        return rule
