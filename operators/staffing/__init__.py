"""Staffing advice from queueing theory: Erlang C and A, agents needed, service time and patience learned online."""

from footfall.operators.staffing import (
    erlang,
    estimators,
    simulate,
)

__all__ = [
    "erlang",
    "estimators",
    "simulate",
]
