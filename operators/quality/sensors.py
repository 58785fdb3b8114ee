"""Which sensors a store has: every sensor heard from within the last `known_for_ms` of event time.

A store's door counters and other devices say who they are in their events (`sensor_id` of
door events and heartbeats). `KnownSensors` remembers, per sensor, the earliest time its
reports speak for (`first_ms`: the start of the first interval it covered) and the time of
its latest event (`last_ms`). A sensor is known at a bucket ending at `end_ms` when it had
spoken for some time before `end_ms` and was heard within `known_for_ms` before it; one not
heard from for longer is forgotten (`expire`): a counter taken out of service stops counting
as missing after a week.

Bounded: at most `max_sensors` per store. A new sensor beyond that makes room by dropping
the one heard from longest ago, and `dropped` counts how many went that way.

Examples
--------
>>> DAY = 86_400_000
>>> sensors = KnownSensors(known_for_ms=7 * DAY, max_sensors=2)
>>> sensors.seen("c1", 60_000, 0), sensors.seen("c2", 120_000, 60_000)
([], [])
>>> sensors.known(60_000), sensors.known(900_000)  # c2 speaks for time from 60 s on only
(['c1'], ['c1', 'c2'])
>>> sensors.seen("c3", 180_000, 120_000)  # a third: the one heard from longest ago goes
['c1']
>>> sensors.known(900_000), sensors.dropped, sensors.last_ms("c2")
(['c2', 'c3'], 1, 120000)
>>> sensors.expire(120_000 + 7 * DAY + 1), sensors.known(120_000 + 7 * DAY + 1)  # c2 silent for over a week
(['c2'], ['c3'])

"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["KnownSensors"]

DAY_MS = 86_400_000


class KnownSensors:
    """The sensors heard from within `known_for_ms`, at most `max_sensors` (see the module docstring)."""

    __slots__ = ("_seen", "dropped", "known_for_ms", "max_sensors")

    def __init__(self, known_for_ms: int = 7 * DAY_MS, max_sensors: int = 64) -> None:
        if known_for_ms <= 0:
            raise ValueError(f"known_for_ms must be positive, got {known_for_ms}")
        if max_sensors < 1:
            raise ValueError(f"max_sensors must be at least 1, got {max_sensors}")
        self.known_for_ms = known_for_ms
        self.max_sensors = max_sensors
        self.dropped = 0
        self._seen: dict[str, list[int]] = {}  # sensor -> [first_ms, last_ms]

    @classmethod
    def _unit_test_params(cls):
        yield {}
        yield {"known_for_ms": 3_600_000, "max_sensors": 2}

    @classmethod
    def _unit_test_inputs(cls, params: dict[str, Any]) -> dict[str, Any]:
        h = 3_600_000
        steps = [("seen", ("c1", 60_000, 0), {}), ("seen", ("c2", h, h - 60_000), {}),
                 ("seen", ("c3", 2 * h, 2 * h - 60_000), {}), ("expire", (2 * h + 30_000,), {}),
                 ("seen", ("c1", 3 * h, 3 * h - 60_000), {}), ("seen", ("c4", 3 * h + 1, 3 * h), {}),
                 ("expire", (9 * 24 * h,), {}), ("seen", ("c2", 10 * 24 * h, 10 * 24 * h), {})]
        reads = [("known", (3 * h,), {}), ("known", (4 * h,), {}), ("dropped",), ("last_ms", ("c1",), {})]
        return {"steps": steps, "reads": reads,
                "empty": [(("known", (0,), {}), []), (("dropped",), 0), (("last_ms", ("c1",), {}), None)]}

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, sensor_id: object) -> bool:
        return sensor_id in self._seen

    def seen(self, sensor_id: str, ts_ms: int, from_ms: int) -> list[str]:
        """An event of `sensor_id` at `ts_ms` speaking for time from `from_ms`; returns the sensors dropped for room."""
        entry = self._seen.get(sensor_id)
        if entry is not None:
            if from_ms < entry[0]:
                entry[0] = from_ms
            if ts_ms > entry[1]:
                entry[1] = ts_ms
            return []
        dropped = []
        while len(self._seen) >= self.max_sensors:
            oldest = min(self._seen, key=lambda s: (self._seen[s][1], s))
            del self._seen[oldest]
            dropped.append(oldest)
            self.dropped += 1
        self._seen[sensor_id] = [min(from_ms, ts_ms), ts_ms]
        return dropped

    def expire(self, now_ms: int) -> list[str]:
        """Forget the sensors not heard from within `known_for_ms` before `now_ms`; return them, sorted."""
        gone = sorted(s for s, (_, last) in self._seen.items() if last < now_ms - self.known_for_ms)
        for s in gone:
            del self._seen[s]
        return gone

    def known(self, end_ms: int) -> list[str]:
        """The sensors known at a bucket ending at `end_ms` (spoke for time before it, heard within the window)."""
        oldest = end_ms - self.known_for_ms
        return sorted(s for s, (first, last) in self._seen.items() if first < end_ms and last >= oldest)

    def last_ms(self, sensor_id: str) -> int | None:
        """Time of the sensor's latest event; None if not known."""
        entry = self._seen.get(sensor_id)
        return None if entry is None else entry[1]

    def first_ms(self, sensor_id: str) -> int | None:
        """Earliest time the sensor's reports speak for; None if not known."""
        entry = self._seen.get(sensor_id)
        return None if entry is None else entry[0]

    def to_state(self) -> dict[str, Any]:
        return {"known_for_ms": self.known_for_ms, "max_sensors": self.max_sensors, "dropped": self.dropped,
                "seen": {s: list(v) for s, v in self._seen.items()}}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> KnownSensors:
        out = cls(state["known_for_ms"], state["max_sensors"])
        out.dropped = state["dropped"]
        out._seen = {s: [int(v[0]), int(v[1])] for s, v in state["seen"].items()}
        return out
