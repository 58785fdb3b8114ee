"""A store's learned models: its forecasts and, per series, the watch that judges each bucket against them.

At each closed bucket, `StoreModels.learn_bucket`:

1. judges the bucket, per series, with its `StoreWatch` (against the forecast made
   `lead` before it, and the rules: capacity, queue wait, silent sensor, entries
   against exits, other signals) and collects the alert changes;
2. teaches the forecasters the value each watch says (`learn_value`: a flagged
   count clipped into its interval, so an anomaly does not become the norm the
   next buckets are judged against);
3. hands every new forecast to its series' watch.

While a bucket is open, `check_partial` gives the watches a chance of an early
warning. The worker holds one `StoreModels` per store and saves it (`to_bytes`)
once per closed bucket; `footfall evaluate forecast --replay` runs the very same
class offline to show the published forecasts equal.

Examples
--------
A retail store's first closed bucket: a cold forecast, no alert (the watch warms up first).

>>> models = StoreModels("retail-001", bucket_ms=3_600_000, horizon=3, tz="UTC", vertical="retail")
>>> outcome = models.learn_bucket(1_763_974_800_000, {"arrivals": 40, "transactions": 9, "departures": 35})
>>> [(p.series, p.cold, p.forecast.model) for p in outcome.forecasts]
[('arrivals', True, 'vertical_profile'), ('transactions', True, 'vertical_profile')]
>>> outcome.alerts
[]

"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from footfall.operators import pickled
from footfall.operators.alerting.alerts import Alert
from footfall.operators.alerting.watch import EarlyWarningView, StoreWatch
from footfall.operators.forecasting.store_forecast import PublishedForecast, StoreForecasts, series_for
from footfall.operators.quality.grade import INCOMPLETE

__all__ = ["ModelsOutcome", "StoreModels"]

HOUR_MS = 3_600_000

#: The first bytes of a saved `StoreModels` whose resting bytes are kept apart (`StoreModels.to_bytes`). A
#: zlib stream, as the one pickle of an older save is, starts with 0x78: never these.
_SAVED_MAGIC = b"FFm3"
#: The same for a save whose forecasters alone rested apart (the watches inside the pickle): still read.
_FORECASTERS_APART_MAGIC = b"FFm2"
#: What rests between closes (`StoreModels.rest`): all, or the forecasters; the buckets a resting watch's view covers.
_WHOLE = ("_forecasts", "_watches", "primary", "folded")
_FORECASTERS = ("_forecasts",)
_VIEWED = 3

#: The residual detector of a store's series. Store counts per 15 minutes are small and noisy next
#: to the series its defaults were set on (nyc_taxi's half hours of thousands): a bound of 4 robust
#: units beyond the 95 % band, a CUSUM that sums smaller shifts (a drop to a quarter at a branch of
#: 5 customers a quarter hour), hour-of-week scales only after 4 weeks (the first weeks' cold-start
#: misses would widen them for good), scales an incident's first buckets cannot widen, and a CUSUM
#: confirmed by the bucket itself (beyond its 95 % bound: without it, 3 of 5 false alerts on quiet
#: simulated shops read like "16, expected 15-36"). Chosen on simulated stores (`scripts/alertsim.py`):
#: see the README for the false-alert rate it gives.
DETECTOR: dict[str, Any] = {"point": 4.0, "cusum_k": 1.0, "cusum_h": 12.0, "slot_min": 4, "scale_cap": 4.0,
                            "confirm": True}

#: The other signals' detector alerts at a two-sided tail of 10^-SIGNALS_THRESHOLD (`MultiSignalDetector`).
SIGNALS_THRESHOLD = 8.0

#: Bucket record fields the arrivals watch reads besides its count (the rules and the other-signals detector).
#: Conversion is left out: per quarter hour it is a ratio of a few people, a coin toss (measured: at a
#: 10^-6 tail it still alerted weekly on quiet simulated shops).
SIGNAL_FIELDS = ("departures", "dwell_mean_s")


def _family(kind: str) -> str | None:
    """The incident family of an alert kind: counts too high, or too low (a silent sensor among them)."""
    if kind.endswith("_high"):
        return "high"
    if kind.endswith("_low") or kind == "sensor_silent":
        return "low"
    return None


@dataclass
class ModelsOutcome:
    """What one closed bucket gave: new forecasts and alert changes, in order."""

    forecasts: list[PublishedForecast] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


class StoreModels:
    """One store's forecasts and watches (see the module docstring).

    Parameters
    ----------
    store_id
        The store.
    bucket_ms, horizon
        Bucket length and buckets forecast ahead.
    tz
        The store's time zone.
    vertical
        The store's vertical, if known (it decides the series).
    holidays
        Public holidays for the calendar model.
    capacity
        The store's capacity (people inside), for the capacity rule; None: no rule.
    queue_target_s
        Queue service-level target, for the queue-wait rule (banks and telecom shops); None: no rule.
    lead_ms
        Judge a bucket against the forecast made this long before it (at most the horizon).
    rest_watches
        Whether the watches rest with the forecasters between closes (`rest`); None: when buckets
        are shorter than 15 minutes.

    """

    def __init__(self, store_id: str, bucket_ms: int, horizon: int, tz: str = "UTC", vertical: str | None = None,
                 holidays: Iterable[dt.date] = (), capacity: float | None = None,
                 queue_target_s: float | None = None, lead_ms: int = 6 * HOUR_MS,
                 rest_watches: bool | None = None) -> None:
        self.store_id = store_id
        self.bucket_ms = bucket_ms
        self.tz = tz
        self.capacity = capacity
        self.queue_target_s = queue_target_s
        self.lead_ms = max(bucket_ms, min(lead_ms, horizon * bucket_ms))
        # The models work only when a bucket closes. Between closes the forecasters rest as a compressed
        # pickle (`rest`): a retail store's models took 52 KB instead of 128 at 15-minute buckets, 87-94
        # instead of 247 at 5-minute ones (after 28 simulated days). With buckets shorter than 15 minutes
        # the watches rest with them (40-46 KB at 5 minutes): an open bucket, checked every second for an early
        # warning, is then answered from each watch's `EarlyWarningView` of the next buckets, and wakes
        # the models only when a warning is due. Waking and putting back the watches too costs about
        # 0.4 ms a close, 11 % more CPU an event of simulated traffic at 15 minutes: there, with the
        # 64 KB target met without it, they stay awake (README, "Models per store").
        self.rest_watches = bucket_ms < 900_000 if rest_watches is None else rest_watches
        self._forecasts: StoreForecasts | None = StoreForecasts(bucket_ms, horizon, tz, vertical, holidays)
        self._watches: dict[str, StoreWatch] | None = {}
        self.primary: dict[str, str] | None = {}  # incident family -> id of the open alert that speaks for it
        self.folded: set[str] | None = set()  # ids of alerts folded into their family's open one
        self._asleep: bytes | None = None  # those of the four above that rest, compressed
        self._views: dict[str, EarlyWarningView] | None = None  # per series, while they rest

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Saved before the models rested whole: the forecasters under `forecasts` (before any rest),
        # or resting alone as `_forecasts_at_rest`; the watches under `watches`.
        if "forecasts" in state:
            state["_forecasts"] = state.pop("forecasts")
        resting = state.pop("_forecasts_at_rest", None)
        if resting is not None:
            state["_forecasts"] = pickled.load(resting, StoreForecasts)
        if "watches" in state:
            state["_watches"] = state.pop("watches")
        state.setdefault("_asleep", None)
        state.setdefault("_views", None)
        state.setdefault("rest_watches", state["bucket_ms"] < 900_000)
        self.__dict__.update(state)

    def _wake(self) -> None:
        """The models back in memory, from their bytes, if they rest (`rest`)."""
        if self._asleep is not None:
            for name, value in pickled.load(self._asleep, dict).items():
                setattr(self, name, value)
            self._asleep = self._views = None

    @property
    def forecasts(self) -> StoreForecasts:
        """The store's forecasters (woken if they rest)."""
        if self._forecasts is None:
            self._wake()
        assert self._forecasts is not None
        return self._forecasts

    @property
    def watches(self) -> dict[str, StoreWatch]:
        """The store's watches by series (woken if they rest)."""
        if self._watches is None:
            self._wake()
        assert self._watches is not None
        return self._watches

    def rest(self) -> None:
        """Keep the forecasters (and the watches, see `__init__`) as compressed bytes until the next close.

        Resting watches leave each a view of the next `_VIEWED` buckets after the last one learned:
        the open ones (the next, and the one after it while the next waits out its grace).
        """
        if self._asleep is not None:
            return
        assert self._watches is not None and self._forecasts is not None
        resting = _WHOLE if self.rest_watches else _FORECASTERS
        if self.rest_watches:
            last = self._forecasts.last_ms
            self._views = {} if last is None else {
                series: watch.partial_view(last + self.bucket_ms, _VIEWED) for series, watch in self._watches.items()}
        self._asleep = pickled.dump({name: getattr(self, name) for name in resting}, level=1)
        for name in resting:
            setattr(self, name, None)

    @property
    def vertical(self) -> str | None:
        return self.forecasts.vertical

    def set_vertical(self, vertical: str | None) -> None:
        """The store's vertical, once known: its series are added from the next bucket."""
        self.forecasts.set_vertical(vertical)

    def _watch(self, series: str) -> StoreWatch:
        watch = self.watches.get(series)
        if watch is None:
            # Rules on the store as a whole (capacity, queue wait, entries against exits, other
            # signals) ride on its arrivals; the other series are judged on their counts alone.
            whole_store = series == "arrivals"
            queues = self.vertical in ("bank", "telecom")
            watch = self.watches[series] = StoreWatch(
                self.store_id, series, self.bucket_ms, self.tz, lead_ms=self.lead_ms,
                capacity=self.capacity if whole_store else None,
                queue_target_s=self.queue_target_s if whole_store and queues else None,
                # Entries against exits over a whole day: within a day they differ by design (people
                # come in the morning and leave at closing; measured, a 2-hour window alerted at every
                # closing), over 24 hours a working counter pair agrees up to who is inside now.
                drift_window_ms=24 * HOUR_MS, drift_min_gap=100.0, drift_ratio=0.5,
                signals_threshold=SIGNALS_THRESHOLD if whole_store else None,
                detector_settings=DETECTOR,
            )
        return watch

    def learn_bucket(self, start_ms: int, kpis: Mapping[str, Any], occupancy: float | None = None,
                     queue_wait_s: float | None = None, quality: str | None = None,
                     silent_sensors: Sequence[str] = ()) -> ModelsOutcome:
        """Judge, then learn, the closed bucket starting at `start_ms` (`kpis`: its bucket record's fields).

        `occupancy` and `queue_wait_s` (estimated wait for a new arrival) are the store's at the
        bucket's close. `quality` is the bucket's data-quality grade and `silent_sensors` the door
        sensors that reported nothing in it. Arrivals (door counts) of a `partial` bucket, or of a
        `missing` one with counts or other activity (transactions, visits, tickets: the store was
        open), are held back from judgement (`StoreWatch.learn_bucket`); a `missing` bucket with no
        count and no activity is a closed store whose counters sleep, and is learned as it is (its
        zeros are true). A bucket at or before the last one learned changes nothing.
        """
        active = any(kpis.get(k) for k in ("transactions", "visits_started", "tickets_issued"))
        # A missing bucket with no count and no activity is a closed store: not held back (see above).
        held_back = quality in INCOMPLETE and (quality == "partial" or bool(kpis.get("arrivals")) or active)
        store_active = quality == "partial" or active
        out = ModelsOutcome()
        if self.forecasts.last_ms is not None and start_ms <= self.forecasts.last_ms:
            self.rest()
            return out
        end_ms = start_ms + self.bucket_ms
        values: dict[str, Any] = dict(kpis)
        for series in series_for(self.vertical):
            signals = None
            if series == "arrivals":
                signals = {"occupancy": occupancy, **{name: kpis.get(name) for name in SIGNAL_FIELDS}}
                if queue_wait_s is not None:
                    signals["queue_wait_s"] = queue_wait_s
            door_based = series == "arrivals"
            outcome = self._watch(series).learn_bucket(
                start_ms, end_ms, kpis.get(series), signals=signals,
                held_back=door_based and held_back,
                silent_sensors=silent_sensors if door_based else (), store_active=store_active)
            values[series] = outcome.learn_value
            out.alerts += self._fold(outcome.changes)
        out.forecasts = self.forecasts.learn_bucket(start_ms, values)
        for published in out.forecasts:
            self._watch(published.series).note_forecast(published.forecast)
        self.rest()
        return out

    def check_partial(self, now_ms: int, start_ms: int, kpis: Mapping[str, Any]) -> list[Alert]:
        """Early warnings for the open bucket starting at `start_ms`, with its counts so far."""
        if self._asleep is not None and self._views is not None:
            due = [view.may_warn(now_ms, start_ms, float(kpis.get(series) or 0))
                   for series, view in self._views.items()]
            if all(d is False for d in due):
                return []  # what the watches would say, without waking them
        changes: list[Alert] = []
        for series, watch in self.watches.items():
            changes += self._fold(watch.check_partial(now_ms, start_ms, start_ms + self.bucket_ms,
                                                      float(kpis.get(series) or 0)))
        return changes

    def _fold(self, changes: list[Alert]) -> list[Alert]:
        """One incident, one alert: a second alert of the same family while one is open is not published.

        A surge shows in arrivals, tickets and transactions at once; a counter stuck at zero
        is both `arrivals_low` and `sensor_silent`. The first alert of the family speaks for
        the incident; the others, folded into it, stay silent until they resolve.
        """
        if self.primary is None:
            self._wake()
        primary_of, folded = self.primary, self.folded
        assert primary_of is not None and folded is not None
        out = []
        for alert in changes:
            family = _family(alert.kind)
            if family is None:
                out.append(alert)
                continue
            if alert.alert_id in folded:
                if alert.state == "resolved":
                    folded.discard(alert.alert_id)
                continue
            primary = primary_of.get(family)
            if alert.state == "opened" and primary is not None:
                if primary != alert.alert_id:
                    folded.add(alert.alert_id)
                # else the same alert from a second series (both counters silent in the same
                # bucket: one kind, one bucket, one id), already published
                continue
            if alert.state == "resolved":
                if primary == alert.alert_id:
                    del primary_of[family]
            else:
                primary_of[family] = alert.alert_id
            out.append(alert)
        return out

    def to_bytes(self) -> bytes:
        """Everything, compressed: the resting models' bytes as they are, after the rest compressed.

        The models rest already compressed (`rest`); compressing them a second time inside one
        pickle of everything took 0.4 of the 0.6 ms a save cost, for nothing (compressed bytes do
        not compress). So the saved value is `_SAVED_MAGIC`, the length of the compressed pickle of
        the rest (4 bytes, big-endian; the views and a few settings), that pickle, then the models' bytes.

        >>> models = StoreModels("s1", bucket_ms=3_600_000, horizon=2, vertical="retail")
        >>> _ = models.learn_bucket(1_763_974_800_000, {"arrivals": 4})
        >>> saved = models.to_bytes()
        >>> again = StoreModels.from_bytes(saved)
        >>> saved[:4] == _SAVED_MAGIC, again.forecasts.last_ms == models.forecasts.last_ms, sorted(again.watches)
        (True, True, ['arrivals', 'transactions'])

        """
        self.rest()
        asleep = self._asleep
        assert asleep is not None
        self._asleep = None
        try:
            head = pickled.dump(self, level=1)
        finally:
            self._asleep = asleep
        return b"".join((_SAVED_MAGIC, len(head).to_bytes(4, "big"), head, asleep))

    @staticmethod
    def from_bytes(blob: bytes) -> StoreModels:
        """Models saved by `to_bytes` (or by a version before it: one pickle, or the forecasters apart), resting."""
        if blob.startswith(_SAVED_MAGIC):
            size = int.from_bytes(blob[4:8], "big")
            models = pickled.load(blob[8:8 + size], StoreModels)
            models._asleep = blob[8 + size:]
        elif blob.startswith(_FORECASTERS_APART_MAGIC):  # the forecasters' resting bytes after the rest
            size = int.from_bytes(blob[4:8], "big")
            models = pickled.load(blob[8:8 + size], StoreModels)
            models._forecasts = pickled.load(blob[8 + size:], StoreForecasts)
        else:
            models = pickled.load(blob, StoreModels)
        models.rest()
        return models
