"""Staffing advice from queueing theory: Erlang C and Erlang A figures, the agents they need, a queue simulator."""

from footfall.operators.staffing import (
    erlang,
    simulate,
)

__all__ = [
    "erlang",
    "simulate",
]
