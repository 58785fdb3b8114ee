"""Alert lifecycle per store: one incident is one alert, opened, updated and resolved on event time.

An `Alert` is identified by its store, its kind and the start of the bucket that
opened it (`alert_id` hashes the three), so replaying the same events opens the
same alerts with the same ids. An `AlertBook` keeps one store's alerts:

- `raise_alert` on a bucket where a condition holds: opens an alert of that kind
  (`opened`), or, while one is open, updates it (`updated`: a later bucket, or a
  higher severity; the same bucket at the same severity again changes nothing);
- `clear` on a bucket where it does not: after `resolve_after_ms` without the
  condition the alert is `resolved`;
- within `cooldown_ms` of its resolution, the condition coming back re-opens the
  same alert (`updated`, same id) instead of a new one: one incident, one alert.

Nothing reads a clock: the caller passes the event time (`now_ms`, normally the
end of the bucket just closed). `to_state()` / `from_state()` are plain data.

Examples
--------
>>> book = AlertBook("retail-001", cooldown_ms=60_000, resolve_after_ms=20_000)
>>> def bucket(i):
...     return {"bucket_start_ms": i * 10_000, "bucket_end_ms": (i + 1) * 10_000, "now_ms": (i + 1) * 10_000}
>>> changes = book.raise_alert("arrivals_high", "warning", observed=30, expected=10, expected_lo=5,
...                            expected_hi=15, score=1.5, explanation="arrivals 30", **bucket(0))
>>> [(a.state, a.severity) for a in changes]
[('opened', 'warning')]
>>> first_id = changes[0].alert_id
>>> [a.state for a in book.raise_alert("arrivals_high", "critical", observed=50, expected=10, expected_lo=5,
...                                    expected_hi=15, score=2.5, explanation="arrivals 50", **bucket(1))]
['updated']
>>> book.clear("arrivals_high", now_ms=30_000), [a.state for a in book.clear("arrivals_high", now_ms=40_000)]
([], ['resolved'])
>>> again = book.raise_alert("arrivals_high", "warning", observed=40, expected=10, expected_lo=5,
...                          expected_hi=15, score=1.2, explanation="arrivals 40", **bucket(5))
>>> again[0].state, again[0].alert_id == first_id, again[0].severity  # within the cool-down: the same incident
('updated', True, 'warning')

"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SEVERITIES", "STATES", "Alert", "AlertBook", "alert_id"]

SEVERITIES = ("info", "warning", "critical")
STATES = ("opened", "updated", "resolved")


def alert_id(store_id: str, kind: str, bucket_start_ms: int) -> str:
    """A stable id: the same store, kind and opening bucket always give the same 16 hex digits.

    >>> alert_id("retail-001", "arrivals_high", 1_795_601_700_000)
    'd58246bb70802fa6'

    """
    return hashlib.blake2b(f"{store_id}|{kind}|{bucket_start_ms}".encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class Alert:
    """One alert as it stands after a change (`state` says which change)."""

    alert_id: str
    store_id: str
    kind: str
    severity: str  # info, warning, critical
    state: str  # opened, updated, resolved
    started_ms: int  # start of the bucket that opened it
    updated_ms: int  # event time of this change
    bucket_start_ms: int  # the latest bucket where the condition held
    bucket_end_ms: int
    observed: float | None
    expected: float | None
    expected_lo: float | None
    expected_hi: float | None
    score: float
    explanation: str
    resolved_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        return cls(**data)


def _rank(severity: str) -> int:
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    return SEVERITIES.index(severity)


class AlertBook:
    """One store's alerts (see the module docstring).

    Parameters
    ----------
    store_id
        The store.
    cooldown_ms
        After a resolution, how long the same kind coming back counts as the same incident.
    resolve_after_ms
        How long without the condition (event time since the last bucket where it held) before an alert resolves.

    """

    def __init__(self, store_id: str, cooldown_ms: int = 2 * 3_600_000, resolve_after_ms: int = 3_600_000) -> None:
        if cooldown_ms < 0 or resolve_after_ms < 0:
            raise ValueError("cooldown_ms and resolve_after_ms must be >= 0")
        self.store_id = store_id
        self.cooldown_ms = cooldown_ms
        self.resolve_after_ms = resolve_after_ms
        self.open: dict[str, Alert] = {}  # kind -> open alert
        self.recent: dict[str, Alert] = {}  # kind -> the last resolved alert, while in its cool-down

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"store_id": "retail-001"}
        yield {"store_id": "bank-002", "cooldown_ms": 0, "resolve_after_ms": 0}

    def raise_alert(self, kind: str, severity: str, *, bucket_start_ms: int, bucket_end_ms: int, now_ms: int,
                    observed: float | None, expected: float | None, expected_lo: float | None,
                    expected_hi: float | None, score: float, explanation: str) -> list[Alert]:
        """The condition `kind` holds on this bucket: open, update or re-open its alert; the changes."""
        _rank(severity)
        fields = {"bucket_start_ms": bucket_start_ms, "bucket_end_ms": bucket_end_ms, "updated_ms": now_ms,
                  "observed": observed, "expected": expected, "expected_lo": expected_lo,
                  "expected_hi": expected_hi, "score": score, "explanation": explanation}
        current = self.open.get(kind)
        if current is not None:
            later = bucket_start_ms > current.bucket_start_ms
            higher = _rank(severity) > _rank(current.severity)
            if not later and not higher:
                return []
            keep = severity if higher else current.severity
            updated = dataclasses.replace(current, state="updated", severity=keep, **fields)
            self.open[kind] = updated
            return [updated]
        self._expire(now_ms)
        previous = self.recent.pop(kind, None)
        if previous is not None:
            updated = dataclasses.replace(previous, state="updated", severity=severity, resolved_ms=None, **fields)
            self.open[kind] = updated
            return [updated]
        opened = Alert(alert_id(self.store_id, kind, bucket_start_ms), self.store_id, kind, severity, "opened",
                       bucket_start_ms, **fields)
        self.open[kind] = opened
        return [opened]

    def clear(self, kind: str, now_ms: int) -> list[Alert]:
        """The condition `kind` does not hold at `now_ms`: resolve its alert once it has been quiet long enough."""
        current = self.open.get(kind)
        if current is None or now_ms - current.bucket_end_ms < self.resolve_after_ms:
            return []
        del self.open[kind]
        resolved = dataclasses.replace(current, state="resolved", updated_ms=now_ms, resolved_ms=now_ms)
        self.recent[kind] = resolved
        return [resolved]

    def _expire(self, now_ms: int) -> None:
        for kind, alert in list(self.recent.items()):
            if alert.resolved_ms is not None and now_ms - alert.resolved_ms > self.cooldown_ms:
                del self.recent[kind]

    def open_alerts(self) -> list[Alert]:
        return sorted(self.open.values(), key=lambda a: (a.started_ms, a.kind))

    def to_state(self) -> dict[str, Any]:
        return {"store_id": self.store_id, "cooldown_ms": self.cooldown_ms, "resolve_after_ms": self.resolve_after_ms,
                "open": [a.to_dict() for a in self.open.values()],
                "recent": [a.to_dict() for a in self.recent.values()]}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> AlertBook:
        book = cls(state["store_id"], state["cooldown_ms"], state["resolve_after_ms"])
        book.open = {a["kind"]: Alert.from_dict(a) for a in state["open"]}
        book.recent = {a["kind"]: Alert.from_dict(a) for a in state["recent"]}
        return book
