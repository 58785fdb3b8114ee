"""The data-quality stage: per closed bucket, how much of it the store's sensors covered, in one word.

A store's dashboard must not read a silent door counter as an empty store. From the store's
own door events and heartbeats this stage keeps:

- its **known sensors** (`quality.sensors.KnownSensors`): every `sensor_id` of a door event or
  heartbeat heard within the last `known_for_days` (7) of event time, at most `max_sensors`
  (64; one more drops the sensor heard from longest ago, counted in `sensors_dropped`);
- per sensor, the **time its reports cover** (`quality.intervals.CoveredIntervals`), merged,
  for the buckets not closed yet only:

  - a door interval report covers `[ts, ts + interval_s)`: the interval starts at `ts`, as the
    event contract says (`schemas.events`: "Length of the reported interval, starting at ts")
    and as its counts are bucketed; `interval_anchor="end"` reads it as ending at `ts`
    (`[ts - interval_s, ts)`) for counters that stamp the end of their interval. A per-person
    reading (`interval_s` 0) covers no time: such a counter proves it is alive by heartbeats, and
    one that never sent an interval report or a heartbeat is not graded at all (its readings say
    nothing of when it was listening: a quiet hour and a dead sensor look alike);
  - a heartbeat covers the `heartbeat_every_s` (300: gateways and the simulator's sensors beat every five
    minutes) before it, `[ts - heartbeat_every_s, ts)`,
    unless its status is one of `down_statuses` (`down`, `error`, `offline`: it covers nothing;
    the event contract admits `ok` and `degraded` only today, both count as up);

  every such event makes its sensor known, down or not.

At each closed bucket: each known sensor's **coverage**, the share of the bucket its reports
covered (0-1); the store's coverage, the mean over the sensors graded (those that ever sent an
interval report or a heartbeat); its **quality** (`quality.grade.grade`): `ok` when every graded
sensor covered at least `ok_coverage` (0.9), `missing` when the store's coverage is at most
`missing_coverage` (0.1), `partial` between, `no_sensors` when none is graded; the graded
sensors silent all bucket (coverage 0); and the bucket's door imbalance (`door_in - door_out`
and that over `max(door_in, 1)`, from the bucket's counts). At the closed bucket that ends a
local day (`context.tz`; 23 or 25 hours when clocks change) the record also carries each
sensor's **uptime**: its covered share of that day (`quality.uptime.DailyUptime`).

A `QualityOutput` (record `quality`) comes out for each closed bucket once the store has had a
door event or heartbeat; a store that never had one (a branch with queue tickets only) gets
none, and one whose sensors all fell silent for longer than `known_for_days` gets
`no_sensors`. Time a report covers in a bucket already closed is not counted (the stage saw
that bucket at its close; the flow's grace delays the close for stragglers).

Examples
--------
A counter reporting every minute for the first half of a quarter hour, and one all along:

>>> from footfall.operators.pipeline.stage import ClosedBucket, StoreContext
>>> from footfall.schemas.events import DoorEvent
>>> ctx = StoreContext("shop-1", bucket_ms=900_000, tz="UTC")
>>> stage = DataQuality().build(ctx, None)
>>> def door(sensor, minute, n_in=2, n_out=1):
...     return DoorEvent(event_id=f"{sensor}-{minute}", store_id="shop-1", ts_ms=minute * 60_000, region=None,
...                      zone=None, vertical="retail", door_id=sensor, sensor_id=sensor, count_in=n_in,
...                      count_out=n_out, interval_s=60)
>>> for minute in range(15):
...     stage.on_event(door("back", minute), ctx)
...     if minute < 7.5:
...         stage.on_event(door("front", minute), ctx)
>>> [out] = stage.on_bucket_closed(ClosedBucket(0, 900_000, {"door_in": 46, "door_out": 23}), ctx)
>>> out.quality, round(out.coverage, 4), [(s["sensor_id"], s["coverage"]) for s in out.sensors]
('partial', 0.7667, [('back', 1.0), ('front', 0.5333)])
>>> out.silent_sensors, out.imbalance, out.imbalance_ratio
([], 23, 0.5)
>>> [out] = stage.on_bucket_closed(ClosedBucket(900_000, 900_000, {}), ctx)  # then nothing: both silent
>>> out.quality, out.silent_sensors
('missing', ['back', 'front'])

"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from footfall.operators.pipeline.stage import ClosedBucket, OpenBucket, StoreContext, build_only_sample
from footfall.operators.quality.grade import Quality, grade, imbalance
from footfall.operators.quality.intervals import CoveredIntervals
from footfall.operators.quality.sensors import DAY_MS, KnownSensors
from footfall.operators.quality.uptime import DailyUptime
from footfall.schemas.events import DoorEvent, Event, Heartbeat

__all__ = ["DataQuality", "QualityOutput", "StoreQuality"]

#: Bucket starts with a report remembered per sensor at most (open buckets: a handful).
MAX_REPORTED_BUCKETS = 200


@dataclass(frozen=True)
class QualityOutput:
    """One closed bucket of a store: its sensors' coverage, its quality, its door imbalance, a day's uptime."""

    kind: ClassVar[str] = "quality"
    bucket_start_ms: int
    bucket_ms: int
    quality: Quality
    coverage: float | None
    sensors_known: int
    sensors: list[dict[str, Any]]
    silent_sensors: list[str]
    sensors_dropped: int
    door_in: int
    door_out: int
    imbalance: int
    imbalance_ratio: float
    uptime: dict[str, Any] | None = None
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def slot(self) -> str:
        return f"quality:{self.bucket_start_ms}"

    def fields(self) -> dict[str, Any]:
        return {"bucket_start_ms": self.bucket_start_ms, "bucket_ms": self.bucket_ms, "quality": self.quality,
                "coverage": self.coverage, "sensors_known": self.sensors_known,
                "sensors": [dict(s) for s in self.sensors], "silent_sensors": list(self.silent_sensors),
                "sensors_dropped": self.sensors_dropped, "door_in": self.door_in, "door_out": self.door_out,
                "imbalance": self.imbalance, "imbalance_ratio": self.imbalance_ratio, "uptime": self.uptime,
                "thresholds": dict(self.thresholds)}


@dataclass(frozen=True)
class DataQuality:
    """Configuration of the data-quality stage (see the module docstring).

    Parameters
    ----------
    known_for_days
        A sensor not heard from for longer is no longer the store's (7 days of event time).
    max_sensors
        Sensors followed per store at most.
    heartbeat_every_s
        Time a heartbeat (not down) vouches for, before it.
    down_statuses
        Heartbeat statuses that vouch for nothing.
    ok_coverage, missing_coverage
        Quality thresholds on coverage (see `quality.grade`).
    interval_anchor
        `start`: a door interval report covers `interval_s` from its `ts` (the event contract);
        `end`: the `interval_s` up to its `ts`.
    max_intervals
        Disjoint covered intervals kept per sensor at most (`quality.intervals`).

    """

    name: ClassVar[str] = "quality"
    known_for_days: float = 7.0
    max_sensors: int = 64
    heartbeat_every_s: float = 300.0
    down_statuses: tuple[str, ...] = ("down", "error", "offline")
    ok_coverage: float = 0.9
    missing_coverage: float = 0.1
    interval_anchor: Literal["start", "end"] = "start"
    max_intervals: int = 256

    def __post_init__(self) -> None:
        if not self.known_for_days > 0:
            raise ValueError(f"known_for_days must be positive, got {self.known_for_days}")
        if not self.heartbeat_every_s >= 0:
            raise ValueError(f"heartbeat_every_s must be at least 0, got {self.heartbeat_every_s}")
        if self.interval_anchor not in ("start", "end"):
            raise ValueError(f"interval_anchor must be 'start' or 'end', not {self.interval_anchor!r}")
        grade([], self.ok_coverage, self.missing_coverage)  # validates the thresholds
        KnownSensors(self.known_for_ms, self.max_sensors)
        CoveredIntervals(self.max_intervals)

    @property
    def known_for_ms(self) -> int:
        return int(self.known_for_days * DAY_MS)

    @classmethod
    def from_settings(cls, settings: Any) -> DataQuality:
        """The defaults: nothing of it is configured yet."""
        return cls()

    @classmethod
    def _unit_test_params(cls):
        yield {}

    @classmethod
    def _unit_test_inputs(cls, params: dict[str, Any]) -> dict[str, Any]:
        return build_only_sample(StoreContext("s1", 900_000, "Europe/London", "north", "retail"))

    def build(self, context: StoreContext, state: Any | None) -> StoreQuality:
        return StoreQuality.from_state(state, config=self, tz=context.tz)


class StoreQuality:
    """One store's sensors and what their reports cover, graded at each closed bucket."""

    event_kinds: ClassVar[frozenset[str]] = frozenset({"door", "heartbeat"})

    def __init__(self, config: DataQuality | None = None, tz: str = "UTC") -> None:
        self.config = config = config or DataQuality()
        self.sensors = KnownSensors(config.known_for_ms, config.max_sensors)
        self.cover: dict[str, CoveredIntervals] = {}
        self.reported: dict[str, list[int]] = {}  # sensor -> starts of open buckets with an event of it
        self.uptime = DailyUptime(tz)
        self.closed_to: int | None = None  # end of the latest bucket closed: earlier time no longer counts
        self.ever = False  # a door event or heartbeat came
        self.vouching: set[str] = set()  # sensors that sent an interval report or a heartbeat: graded
        self.changed = False

    @classmethod
    def _unit_test_params(cls):
        yield {"tz": "Europe/London"}
        yield {"tz": "UTC", "config": DataQuality(heartbeat_every_s=30, interval_anchor="end", max_sensors=2,
                                                  max_intervals=2)}

    @classmethod
    def _unit_test_inputs(cls, params: dict[str, Any]) -> dict[str, Any]:
        b, t0 = 900_000, 1_790_150_400_000  # 2026-09-23T08:00:00Z
        ctx = StoreContext("s1", b, params.get("tz", "UTC"), "north", "retail")
        env = {"store_id": "s1", "region": "north", "zone": None, "vertical": "retail"}
        steps: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        for k in range(6):
            for minute in range(0, 15, 2 if k % 2 else 1):
                ts = t0 + k * b + minute * 60_000
                if not (k == 3 and minute > 7):
                    steps.append(("on_event", (DoorEvent(**env, event_id=f"d{k}-{minute}", ts_ms=ts, door_id="m",
                                                         sensor_id="c1", count_in=1, count_out=0, interval_s=60),
                                               ctx), {}))
                if minute % 5 == 0:
                    hb = Heartbeat(**env, event_id=f"h{k}-{minute}", ts_ms=ts, sensor_id=f"c{2 + k % 2}",
                                   status="down" if k == 4 else "ok", device_id=None)
                    steps.append(("on_event", (hb, ctx), {}))
            steps.append(("on_bucket_closed", (ClosedBucket(t0 + k * b, b, {"door_in": 15, "door_out": k}), ctx), {}))
        return {"steps": steps, "reads": [("known_sensors", (t0 + 6 * b,), {})],
                "empty": [(("known_sensors", (t0,), {}), [])]}

    def known_sensors(self, end_ms: int) -> list[str]:
        """The sensors known at a bucket ending at `end_ms`, sorted."""
        return self.sensors.known(end_ms)

    # -- events ------------------------------------------------------------------------------------

    def on_event(self, event: Event, context: StoreContext) -> None:
        if isinstance(event, DoorEvent):
            span = event.interval_s * 1000
            ts = event.ts_ms
            lo, hi = (ts, ts + span) if self.config.interval_anchor == "start" else (ts - span, ts)
            vouches = span > 0
        elif isinstance(event, Heartbeat):
            hi = event.ts_ms
            lo = hi if event.status in self.config.down_statuses else hi - int(self.config.heartbeat_every_s * 1000)
            vouches = True
        else:
            return
        self.changed = self.ever = True
        sensor = event.sensor_id
        if vouches:
            self.vouching.add(sensor)
        for gone in self.sensors.seen(sensor, event.ts_ms, lo):
            self._forget(gone)
        if hi > lo:
            cover = self.cover.get(sensor)
            if cover is None:
                cover = self.cover[sensor] = CoveredIntervals(self.config.max_intervals, self.closed_to)
            cover.add(lo, hi)
        start = event.ts_ms - event.ts_ms % context.bucket_ms
        if self.closed_to is None or start >= self.closed_to:
            marks = self.reported.setdefault(sensor, [])
            if not marks or marks[-1] != start:
                if start not in marks:
                    insort(marks, start)
                if len(marks) > MAX_REPORTED_BUCKETS:
                    del marks[0]

    def _forget(self, sensor: str) -> None:
        self.cover.pop(sensor, None)
        self.reported.pop(sensor, None)
        self.vouching.discard(sensor)

    def on_partial(self, bucket: OpenBucket, context: StoreContext) -> list[QualityOutput]:
        return []

    # -- a closed bucket ---------------------------------------------------------------------------

    def on_bucket_closed(self, bucket: ClosedBucket, context: StoreContext) -> list[QualityOutput]:
        c = self.config
        start, end = bucket.start_ms, bucket.end_ms
        self.changed = True
        if context.tz != self.uptime.tz:  # the store's zone changed: its days are read in the new one from now
            self.uptime = DailyUptime(context.tz)
        for gone in self.sensors.expire(end):
            self._forget(gone)
        known = self.sensors.known(end)
        covered = {s: self._covered(s, start, end) for s in known}
        days: list[dict[str, Any]] = []
        for lo, hi in self.uptime.pieces(start, end):
            in_piece = covered if (lo, hi) == (start, end) else {s: self._covered(s, lo, hi) for s in known}
            days += self.uptime.add(lo, hi, in_piece, known)
        # A day's report; two only when a silence skipped a day's end (the earlier one's): the latest is given.
        report = days[-1] if days else None
        length = end - start
        coverage = {s: covered[s] / length for s in known}
        sensors = []
        for s in known:
            marks = self.reported.get(s, ())
            sensors.append({"sensor_id": s, "coverage": round(coverage[s], 4), "reported": start in marks,
                            "last_seen_ms": self.sensors.last_ms(s), "graded": s in self.vouching})
        for cover in self.cover.values():
            cover.trim(end)
        for marks in self.reported.values():
            while marks and marks[0] < end:
                del marks[0]
        self.closed_to = end if self.closed_to is None else max(self.closed_to, end)
        if not known and not self.ever:
            return []
        door_in, door_out = int(bucket.kpis.get("door_in") or 0), int(bucket.kpis.get("door_out") or 0)
        diff, ratio = imbalance(door_in, door_out)
        graded = [s for s in known if s in self.vouching]
        values = [coverage[s] for s in graded]
        return [QualityOutput(
            start, length, grade(values, c.ok_coverage, c.missing_coverage),
            sum(values) / len(values) if values else None, len(known), sensors,
            [s for s in graded if covered[s] == 0], self.sensors.dropped, door_in, door_out, diff, ratio, report,
            {"ok_coverage": c.ok_coverage, "missing_coverage": c.missing_coverage})]

    def _covered(self, sensor: str, lo: int, hi: int) -> int:
        cover = self.cover.get(sensor)
        return 0 if cover is None else cover.covered_ms(lo, hi)

    # -- state -------------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {"sensors": self.sensors.to_state(), "cover": {s: c.to_state() for s, c in self.cover.items()},
                "reported": {s: list(m) for s, m in self.reported.items()}, "uptime": self.uptime.to_state(),
                "closed_to": self.closed_to, "ever": self.ever, "vouching": sorted(self.vouching)}

    @classmethod
    def from_state(cls, state: Any | None, config: DataQuality | None = None, tz: str = "UTC") -> StoreQuality:
        """A store's stage from `to_state()` output (None: a new store); configuration from `config`, not the state."""
        out = cls(config, tz)
        if not state:
            return out
        c = out.config
        out.sensors = KnownSensors.from_state(state["sensors"])
        out.sensors.known_for_ms, out.sensors.max_sensors = c.known_for_ms, c.max_sensors  # the configuration's bounds
        out.cover = {s: CoveredIntervals.from_state(v) for s, v in state["cover"].items()}
        out.reported = {s: [int(x) for x in m] for s, m in state["reported"].items()}
        uptime = DailyUptime.from_state(state["uptime"])
        out.uptime = uptime if uptime.tz == tz else DailyUptime(tz)
        out.closed_to = state["closed_to"]
        out.ever = bool(state["ever"])
        # Saved before graded sensors were told apart: those that covered time are surely graded.
        out.vouching = set(state.get("vouching", out.cover))
        return out
