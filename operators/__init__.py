"""Pure, synchronous, I/O-free customer-flow logic, by family; `protocols` declares their shapes."""

from footfall.operators import (
    alerting,
    evaluation,
    forecasting,
    kpis,
    pipeline,
    protocols,
    staffing,
    windows,
)

__all__ = [
    "alerting",
    "evaluation",
    "forecasting",
    "kpis",
    "pipeline",
    "protocols",
    "staffing",
    "windows",
]
