"""Offline scoring only (the worker never runs it): the NAB scorer and forecast metrics."""

from footfall.operators.evaluation import (
    forecast_metrics,
    nab,
)

__all__ = [
    "forecast_metrics",
    "nab",
]
