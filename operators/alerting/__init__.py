"""Detectors, rules, the alert lifecycle and a store's watch over one series."""

from footfall.operators.alerting import (
    alerts,
    detectors,
    rules,
    watch,
)

__all__ = [
    "alerts",
    "detectors",
    "rules",
    "watch",
]
