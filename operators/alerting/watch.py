"""One store's watch over one series (arrivals by default): detectors, rules and alerts, bucket by bucket.

The worker keeps one `StoreWatch` per store and series, beside the store's
forecasts, and at each closed bucket:

1. `note_forecast(forecast)` after each published forecast (`forecast_select.Forecast`):
   the watch keeps, for each future bucket, the forecast made `lead_ms` before it
   (a one-bucket-ahead forecast follows a holiday's drop within an hour or two
   and would hide it; one made hours earlier does not);
2. `learn_bucket(start, end, observed, ...)` when the bucket closes: judges it
   against that forecast (`detectors.ResidualDetector`), applies the rules
   (`rules`: capacity, queue wait, silent sensor, entries against exits) and the
   other signals' detector, and returns a `WatchOutcome`: the alert changes
   (`alerts.AlertBook`: one incident, one alert) and `learn_value`, the value
   the forecasts should learn for this bucket (the count clipped into its 95 %
   interval while flagged, see `detectors.value_to_learn`; after `accept_after_ms`
   of flags in a row the count itself: a lasting change is the new normal);
3. `check_partial(now, start, end, count_so_far)` while a bucket is open, for an
   early warning (`detectors.early_warning`).

Explanations name local times (`tz`), e.g. `arrivals 312 in 14:00-14:30, expected 120-180`.
Everything is event time; `to_state()` / `from_state()` are plain data.

Examples
--------
Half-hour buckets, forecasts of 100 (95 % interval 80-120) made for every bucket;
a burst of 400 opens an alert, resolved after an hour without the condition:

>>> from footfall.operators.forecasting.forecast_select import Forecast
>>> watch = StoreWatch("retail-001", bucket_ms=1_800_000, tz="Europe/London", lead_ms=1_800_000, warmup_ms=0)
>>> t0 = 1_795_600_800_000  # 2026-11-24T10:00:00Z, 10:00 in London
>>> opened = []
>>> for i, count in enumerate([98, 103, 101, 400, 97, 99, 100]):
...     start = t0 + i * 1_800_000
...     watch.note_forecast(Forecast(start - 1_800_000, start, 1_800_000, "m", [100.0], [87.0], [113.0],
...                                  [80.0], [120.0]))
...     outcome = watch.learn_bucket(start, start + 1_800_000, count)
...     opened += [a for a in outcome.changes if a.state == "opened"]
...     print(count, outcome.learn_value, [(a.state, a.severity) for a in outcome.changes])
98 98 []
103 103 []
101 101 []
400 120.0 [('opened', 'critical')]
97 97 []
99 99 [('resolved', 'critical')]
100 100 []
>>> print(opened[0].explanation)
arrivals 400 in 11:30-12:00, expected 80-120

"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from footfall.operators.alerting.alerts import Alert, AlertBook
from footfall.operators.alerting.detectors import (
    EarlyWarning,
    Expected,
    MultiSignalDetector,
    ResidualDetector,
    early_warning,
    value_to_learn,
)
from footfall.operators.alerting.pending import PendingExpectations
from footfall.operators.alerting.rules import (
    EntryExitDrift,
    QueueWaitBreach,
    RuleHit,
    SilentSensor,
    over_capacity,
)
from footfall.operators.windows.localtime import hour_of_week

__all__ = ["EarlyWarningView", "StoreWatch", "WatchOutcome"]

HOUR_MS = 3_600_000


def _outlook(now_ms: int, bucket_start_ms: int, bucket_end_ms: int, count_so_far: float, expected: Expected,
             bound: float) -> EarlyWarning | None:
    """An open bucket's early warning against `bound` (`StoreWatch.early_bound`); None: none (or not open now)."""
    if not bucket_start_ms <= now_ms <= bucket_end_ms:
        return None
    elapsed = (now_ms - bucket_start_ms) / (bucket_end_ms - bucket_start_ms)
    # "Very likely": even if the rest of the bucket brings only the forecast's lower 80 % bound.
    # Projected at the forecast's mean instead, half of the early warnings on quiet simulated
    # shops were false (the bucket then closed below the bound).
    outlook = early_warning(count_so_far, elapsed, expected._replace(hi95=bound, mean=expected.lo80))
    return outlook if outlook.status is not None else None


@dataclass(frozen=True, slots=True)
class EarlyWarningView:
    """A watch's early-warning bounds for a few buckets (`StoreWatch.partial_view`), kept while the watch rests.

    `may_warn` answers what `check_partial` would: whether a warning is due (True, then ask the
    watch itself, which raises it), none is (False), or the bucket is not covered (None: ask the watch).

    >>> view = EarlyWarningView(0, 100, ((Expected(10.0, 8.0, 12.0, 6.0, 14.0), 20.0), None))
    >>> view.may_warn(50, 0, 25), view.may_warn(50, 0, 5), view.may_warn(150, 100, 99), view.may_warn(250, 200, 1)
    (True, False, False, None)

    """

    first_start_ms: int
    bucket_ms: int
    bounds: tuple[tuple[Expected, float] | None, ...]

    def may_warn(self, now_ms: int, bucket_start_ms: int, count_so_far: float) -> bool | None:
        i, off = divmod(bucket_start_ms - self.first_start_ms, self.bucket_ms)
        if off or not 0 <= i < len(self.bounds):
            return None
        bound = self.bounds[i]
        return bound is not None and _outlook(now_ms, bucket_start_ms, bucket_start_ms + self.bucket_ms,
                                              count_so_far, *bound) is not None


@dataclass(frozen=True)
class WatchOutcome:
    """What one closed bucket did: alert changes, the score, and the value the forecasts should learn."""

    changes: list[Alert]
    score: float  # the residual detector's score (1 = alert), 0 without a forecast
    flagged: bool
    learn_value: float | None  # None for a gap
    expected: Expected | None
    rule_hits: list[str] = field(default_factory=list)


def _as_expected(forecast: Expected | Sequence[float] | None) -> Expected | None:
    if forecast is None or isinstance(forecast, Expected):
        return forecast
    return Expected(*map(float, forecast))


class StoreWatch:
    """Detectors, rules and alerts for one store and series (see the module docstring).

    Parameters
    ----------
    store_id, series
        The store, and the series watched (alert kinds are `<series>_high` and `<series>_low`).
    bucket_ms
        Bucket length.
    tz
        The store's time zone, for explanations.
    lead_ms
        Judge a bucket against the forecast made this long before it (rounded down to whole buckets, at least one).
    point, cusum_k, cusum_h
        The residual detector's thresholds (`detectors.ResidualDetector`).
    critical_score
        Residual score from which an alert is critical (warning from 1).
    cooldown_ms, resolve_after_ms
        The alert book's (`alerts.AlertBook`).
    accept_after_ms
        After this long flagged without a break, the forecasts learn the counts again.
    capacity, queue_target_s
        Limits for the capacity and queue-wait rules (None: rule off).
    queue_breach_ms
        How long the queue wait must stay above its target before it is an alert (`rules.QueueWaitBreach`).
    silent_after_ms, silent_min_expected
        The silent-sensor rule: that long of zeros where the forecast's mean is at least `silent_min_expected`,
        or zeros its history at those hours of the week makes unlikely (`rules.SilentSensor`).
    drift_window_ms, drift_min_gap, drift_ratio
        The entries-against-exits rule.
    signals_threshold
        The other signals' detector threshold (`detectors.MultiSignalDetector`; None: off).
    warmup_ms
        How long a new watch judges buckets without alerting on them (its forecasts start cold and need a
        second week to know the weekly pattern, e.g. a closed Sunday; its scales start empty).
    detector_settings
        More `detectors.ResidualDetector` keyword arguments (`slot_min`, `scale_cap`, `confirm`, ...); a
        `point`, `cusum_k` or `cusum_h` among them replaces the parameter of that name. None: the defaults.

    """

    def __init__(self, store_id: str, series: str = "arrivals", bucket_ms: int = 900_000, tz: str = "UTC",
                 lead_ms: int = 6 * HOUR_MS, point: float = 8.0, cusum_k: float = 2.0, cusum_h: float = 24.0,
                 critical_score: float = 2.0, cooldown_ms: int = 2 * HOUR_MS, resolve_after_ms: int = HOUR_MS,
                 accept_after_ms: int = 48 * HOUR_MS, capacity: float | None = None,
                 queue_target_s: float | None = None, queue_breach_ms: int = HOUR_MS // 2,
                 silent_after_ms: int = 2 * HOUR_MS,
                 silent_min_expected: float = 5.0, drift_window_ms: int = 2 * HOUR_MS, drift_min_gap: float = 30.0,
                 drift_ratio: float = 0.3, signals_threshold: float | None = 4.0,
                 warmup_ms: int = 14 * 24 * HOUR_MS, detector_settings: Mapping[str, Any] | None = None) -> None:
        if bucket_ms <= 0:
            raise ValueError(f"bucket_ms must be positive, got {bucket_ms}")
        ZoneInfo(tz)  # raises on an unknown zone
        self.store_id = store_id
        self.series = series
        self.bucket_ms = bucket_ms
        self.tz = tz
        self.lead = max(1, lead_ms // bucket_ms)
        self.critical_score = critical_score
        self.accept_after = max(1, accept_after_ms // bucket_ms)
        self.warmup = max(0, warmup_ms // bucket_ms)
        self.judged = 0  # buckets judged against a forecast
        self.capacity = capacity
        self.queue_target_s = queue_target_s
        self.queue = None if not queue_target_s else QueueWaitBreach(
            queue_target_s, max(1, math.ceil(queue_breach_ms / bucket_ms)))
        self.detector = ResidualDetector(**{"point": point, "cusum_k": cusum_k, "cusum_h": cusum_h,
                                            **(detector_settings or {})})
        self.book = AlertBook(store_id, cooldown_ms=cooldown_ms, resolve_after_ms=resolve_after_ms)
        self.silent = SilentSensor(max(1, math.ceil(silent_after_ms / bucket_ms)), silent_min_expected)
        self.drift = EntryExitDrift(max(1, drift_window_ms // bucket_ms), drift_min_gap, drift_ratio)
        self.signals = None if signals_threshold is None else MultiSignalDetector(threshold=signals_threshold)
        # Bucket start -> Expected, made `lead` buckets before it.
        self.pending = PendingExpectations(self.lead + 1)
        self.flag_run = 0
        self.last_start_ms: int | None = None
        self.sensor_runs: dict[str, int] = {}  # sensor -> closed buckets in a row it reported nothing in

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if isinstance(self.pending, dict):  # pickled before the arrays: a dict of lists
            self.pending = PendingExpectations.of(sorted(self.pending.items()), self.lead + 1)

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"store_id": "retail-001"}
        yield {"store_id": "bank-002", "bucket_ms": 1_800_000, "tz": "Europe/Madrid", "capacity": 80,
               "queue_target_s": 300, "signals_threshold": None}
        yield {"store_id": "telecom-003", "lead_ms": 900_000, "warmup_ms": 0, "silent_after_ms": 1_800_000,
               "detector_settings": {"point": 4.0, "cusum_k": 1.0, "cusum_h": 12.0, "slot_min": 4, "scale_cap": 4.0,
                                     "confirm": True}}

    # -- forecasts --------------------------------------------------------------------------------

    def note_forecast(self, forecast: Any) -> None:
        """Keep, from a published forecast, the expectation for the bucket `lead` buckets ahead.

        Also the one-bucket-ahead one for the next bucket, used while nothing made `lead`
        buckets before it exists (a new store, a restart).
        """
        n = len(forecast.values)
        if n == 0:
            return
        for h in {min(self.lead, n), 1}:
            target = forecast.start_ms + (h - 1) * forecast.bucket_ms
            if h == 1 and target in self.pending and self.lead > 1:
                continue  # the lead forecast for this bucket was kept earlier
            self.pending.put(target, Expected.from_forecast(forecast, h - 1))

    def expected_for(self, bucket_start_ms: int) -> Expected | None:
        values = self.pending.get(bucket_start_ms)
        return None if values is None else Expected(*values)

    # -- closed buckets ---------------------------------------------------------------------------

    def learn_bucket(self, bucket_start_ms: int, bucket_end_ms: int, observed: float | None,
                     forecast: Expected | Sequence[float] | None = None,
                     signals: Mapping[str, float | None] | None = None, held_back: bool = False,
                     silent_sensors: Sequence[str] = (), store_active: bool = False) -> WatchOutcome:
        """Judge and learn the bucket `[bucket_start_ms, bucket_end_ms)` (see the module docstring).

        `forecast` overrides the noted one. `signals` may hold `occupancy`,
        `queue_wait_s`, `departures` (and `arrivals` when the series is not
        arrivals) for the rules, and any per-bucket signals for the signals'
        detector (`dwell_s`, `conversion_rate`, ...).

        `held_back`: the count is known to be incomplete (its sensors did not cover the bucket:
        data quality `partial` or `missing`). It is not judged against the forecast and the
        detectors do not learn it (an undercount would read as a fall, and teach the scales
        that falls are normal); open residual alerts stay as they are, and the forecasts learn
        the expected value in its place. The rules still run. `silent_sensors`: the sensors that
        reported nothing in the bucket. Each one silent for as many buckets in a row as the
        silent-sensor rule waits, while `store_active` (its other sensors reported, or it had
        transactions, visits or tickets: open, not asleep), raises `sensor_silent` naming it; a
        `sensor_silent` from the counts names the silent sensors too.
        """
        if self.last_start_ms is not None and bucket_start_ms <= self.last_start_ms:
            return WatchOutcome([], 0.0, False, observed, None)  # a repeat: judged already
        self.last_start_ms = bucket_start_ms
        expected = _as_expected(forecast) if forecast is not None else self.expected_for(bucket_start_ms)
        self.pending.drop_through(bucket_start_ms)
        signals = dict(signals or {})
        now = bucket_end_ms
        changes: list[Alert] = []
        score, flagged, learn = 0.0, False, observed
        kinds = (f"{self.series}_high", f"{self.series}_low")
        raised = None
        if observed is None:
            self.flag_run = 0
        elif held_back:
            learn = None if expected is None else expected.mean
        elif expected is not None:
            slot = hour_of_week(bucket_start_ms, self.tz)
            a = self.detector.assess(observed, expected, slot)
            self.judged += 1
            # While warming up (a new store: no history, a cold-start forecast) the detector learns only.
            score = a.score if self.judged > self.warmup else 0.0
            flagged = score >= 1.0
            self.flag_run = self.flag_run + 1 if flagged else 0
            learn = value_to_learn(observed, expected, flagged and self.flag_run <= self.accept_after)
            self.detector.learn_one(observed, expected, learn, slot)
            if flagged:
                kind = raised = kinds[0] if a.direction >= 0 else kinds[1]
                severity = "critical" if score >= self.critical_score else "warning"
                changes += self.book.raise_alert(
                    kind, severity, bucket_start_ms=bucket_start_ms, bucket_end_ms=bucket_end_ms, now_ms=now,
                    observed=observed, expected=expected.mean, expected_lo=expected.lo95,
                    expected_hi=expected.hi95, score=score,
                    explanation=explain_residual(self.series, observed, expected,
                                                 window_words(bucket_start_ms, bucket_end_ms, self.tz),
                                                 a.direction if a.sustained else 0))
        if not held_back:
            for kind in kinds:
                if kind != raised:
                    changes += self.book.clear(kind, now)
        changes += self._rules(bucket_start_ms, bucket_end_ms, observed, expected, signals, held_back,
                               silent_sensors, store_active)
        hits = sorted({c.kind for c in changes if c.kind not in kinds and c.state != "resolved"})
        return WatchOutcome(changes, score, flagged, learn, expected, hits)

    def _rules(self, start: int, end: int, observed: float | None, expected: Expected | None,
               signals: dict[str, float | None], held_back: bool = False, silent_sensors: Sequence[str] = (),
               store_active: bool = False) -> list[Alert]:
        hits = []
        hits.append(("over_capacity", over_capacity(signals.get("occupancy"), self.capacity)))
        if self.queue is not None:
            self.queue.learn_one(signals.get("queue_wait_s"))
            hits.append(("queue_wait", self.queue.hit()))
        warm = self.judged > self.warmup  # the silent-sensor rule trusts the forecast only after the warm-up
        self.silent.learn_one(observed, None if expected is None or not warm else expected.mean,
                              None if expected is None or not warm else expected.lo95,
                              slot=hour_of_week(start, self.tz), judge=warm)
        hits.append(("sensor_silent", self._named_silence(self.silent.hit(), silent_sensors, store_active)))
        arrivals = observed if self.series == "arrivals" else signals.get("arrivals")
        if "departures" in signals:
            self.drift.learn_one(arrivals, signals.get("departures"))
        hits.append(("entry_exit_drift", self.drift.hit()))
        # Queue waits have their own rule (the service-level target); heavy-tailed, they are no
        # Gaussian's business (measured: at a 10^-6 tail they still alerted weekly on quiet branches).
        extra = {k: v for k, v in signals.items() if k not in ("occupancy", "departures", "arrivals", "queue_wait_s")}
        if self.signals is not None and extra and not held_back:  # conversion on an undercount is no signal
            hits.append(("signals", _signals_hit(self.signals, extra)))
        changes: list[Alert] = []
        window = window_words(start, end, self.tz)
        for kind, hit in hits:
            if hit is None:
                changes += self.book.clear(kind, end)
                continue
            changes += self.book.raise_alert(
                kind, hit.severity, bucket_start_ms=start, bucket_end_ms=end, now_ms=end, observed=observed,
                expected=None if expected is None else expected.mean,
                expected_lo=None if expected is None else expected.lo95,
                expected_hi=None if expected is None else expected.hi95, score=hit.score,
                explanation=explain_rule(self.series, kind, hit, window, expected))
        return changes

    def _named_silence(self, hit: RuleHit | None, silent_sensors: Sequence[str],
                       store_active: bool) -> RuleHit | None:
        """The silent-sensor hit, naming the sensors data quality found silent (see `learn_bucket`)."""
        runs = getattr(self, "sensor_runs", {})  # watches pickled before it was kept have none
        self.sensor_runs = runs = {s: runs.get(s, 0) + 1 for s in silent_sensors}
        names = ", ".join(sorted(runs))
        if hit is not None:
            return hit if not names else dataclasses.replace(hit, reason=f"{hit.reason}; silent sensors: {names}")
        long_silent = sorted(s for s, n in runs.items() if n >= self.silent.buckets)
        if not (store_active and long_silent):
            return None
        run = min(runs[s] for s in long_silent)
        which = f"sensor {long_silent[0]}" if len(long_silent) == 1 else f"sensors {', '.join(long_silent)}"
        return RuleHit("sensor_silent", "warning", 1.0,
                       f"{which} sent nothing for {run} buckets in a row while the store was open")

    # -- open buckets -----------------------------------------------------------------------------

    def early_bound(self, bucket_start_ms: int,
                    forecast: Expected | Sequence[float] | None = None) -> tuple[Expected, float] | None:
        """The expectation for the bucket and the count an early warning looks past; None: no early warning.

        The bound is where the closed bucket would alert (`point` robust units beyond the 95 % band),
        not the band itself: measured on simulated stores, warning at the band raised 2-3 false
        early warnings a store-day (a 95 % band is crossed by chance once in 40 buckets).
        """
        expected = _as_expected(forecast) if forecast is not None else self.expected_for(bucket_start_ms)
        if expected is None or self.judged < self.warmup:
            return None
        slot = hour_of_week(bucket_start_ms, self.tz)
        return expected, expected.hi95 + self.detector.point * self.detector.unit(expected, slot)

    def partial_view(self, first_start_ms: int, buckets: int) -> EarlyWarningView:
        """What `check_partial` needs for the `buckets` buckets from `first_start_ms` on, to ask without this watch.

        Exact while the watch does not change: only `learn_bucket` and `note_forecast` change what it reads.
        """
        return EarlyWarningView(first_start_ms, self.bucket_ms,
                                tuple(self.early_bound(first_start_ms + i * self.bucket_ms) for i in range(buckets)))

    def check_partial(self, now_ms: int, bucket_start_ms: int, bucket_end_ms: int, count_so_far: float,
                      forecast: Expected | Sequence[float] | None = None) -> list[Alert]:
        """Early warning while the bucket is open: `certain` (warning) or `likely` (info) to end too high."""
        bound = self.early_bound(bucket_start_ms, forecast)
        if bound is None:
            return []
        expected = bound[0]
        outlook = _outlook(now_ms, bucket_start_ms, bucket_end_ms, count_so_far, *bound)
        if outlook is None:
            return []
        severity = "warning" if outlook.status == "certain" else "info"
        window = window_words(bucket_start_ms, bucket_end_ms, self.tz)
        words = "already" if outlook.status == "certain" else f"likely to end near {outlook.projected:,.0f}"
        changes = self.book.raise_alert(
            f"{self.series}_high", severity, bucket_start_ms=bucket_start_ms, bucket_end_ms=bucket_end_ms,
            now_ms=now_ms, observed=count_so_far, expected=expected.mean, expected_lo=expected.lo95,
            expected_hi=expected.hi95, score=count_so_far / max(expected.hi95, 1.0),
            explanation=f"{self.series} {count_so_far:,.0f} so far in {window} ({words}), "
                        f"expected {expected.lo95:,.0f}-{expected.hi95:,.0f} for the whole bucket")
        return changes

    # -- state ----------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "store_id": self.store_id, "series": self.series, "bucket_ms": self.bucket_ms, "tz": self.tz,
            "lead": self.lead, "critical_score": self.critical_score, "accept_after": self.accept_after,
            "warmup": self.warmup, "judged": self.judged,
            "capacity": self.capacity, "queue_target_s": self.queue_target_s,
            "queue": None if self.queue is None else self.queue.to_state(),
            "detector": self.detector.to_state(), "book": self.book.to_state(), "silent": self.silent.to_state(),
            "drift": self.drift.to_state(), "signals": None if self.signals is None else self.signals.to_state(),
            "pending": [[t, v] for t, v in self.pending.items()], "flag_run": self.flag_run,
            "last_start_ms": self.last_start_ms, "sensor_runs": dict(getattr(self, "sensor_runs", {})),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> StoreWatch:
        watch = cls(state["store_id"], state["series"], state["bucket_ms"], state["tz"],
                    lead_ms=state["lead"] * state["bucket_ms"], critical_score=state["critical_score"],
                    accept_after_ms=state["accept_after"] * state["bucket_ms"], capacity=state["capacity"],
                    queue_target_s=state["queue_target_s"], signals_threshold=None,
                    warmup_ms=state["warmup"] * state["bucket_ms"])
        watch.judged = state["judged"]
        watch.detector = ResidualDetector.from_state(state["detector"])
        watch.book = AlertBook.from_state(state["book"])
        watch.silent = SilentSensor.from_state(state["silent"])
        if state.get("queue") is not None:  # states saved before the rule had its own have none: start it afresh
            watch.queue = QueueWaitBreach.from_state(state["queue"])
        watch.drift = EntryExitDrift.from_state(state["drift"])
        watch.signals = None if state["signals"] is None else MultiSignalDetector.from_state(state["signals"])
        watch.pending = PendingExpectations.of(state["pending"], watch.lead + 1)
        watch.flag_run = state["flag_run"]
        watch.last_start_ms = state["last_start_ms"]
        watch.sensor_runs = {str(s): int(n) for s, n in state.get("sensor_runs", {}).items()}
        return watch


def _signals_hit(detector: MultiSignalDetector, signals: dict[str, float | None]) -> RuleHit | None:
    """Judge, then learn, the bucket's other signals: a hit naming the most unusual one, or None."""
    score, name = detector.explain(signals)
    detector.learn_one(signals)
    if score >= 1 and name is not None:
        return RuleHit("signals", "warning", score, f"{name} {signals[name]:,.4g} is unusual")
    return None


def window_words(start_ms: int, end_ms: int, tz: str) -> str:
    """A bucket in local time, `14:00-14:15`."""
    zone = ZoneInfo(tz)
    a = dt.datetime.fromtimestamp(start_ms / 1000, zone)
    b = dt.datetime.fromtimestamp(end_ms / 1000, zone)
    return f"{a:%H:%M}-{b:%H:%M}"


def explain_residual(series: str, observed: float, expected: Expected, window: str, sustained: int) -> str:
    """`arrivals 312 in 14:00-14:15, expected 120-180` (and the CUSUM's side when `sustained` is +1 or -1)."""
    text = f"{series} {observed:,.0f} in {window}, expected {expected.lo95:,.0f}-{expected.hi95:,.0f}"
    if sustained:
        side = "above" if sustained > 0 else "below"
        text += f" ({side} the forecast for several buckets)"
    return text


def explain_rule(series: str, kind: str, hit: RuleHit, window: str, expected: Expected | None) -> str:
    """A rule's reason in words, in its bucket."""
    if kind != "sensor_silent":
        return f"{hit.reason} in {window}"
    # Every series' watch has its own silent sensor: say which counter is silent, and what it should count.
    text = f"{series} sensor silent: {hit.reason} in {window}"
    if expected is not None:
        text += f", expected {expected.lo95:,.0f}-{expected.hi95:,.0f}"
    return text
