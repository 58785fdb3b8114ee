"""What is counted and derived per bucket and store: flow, retail, queue and occupancy KPIs, roll-ups."""

from footfall.operators.kpis import (
    durations,
    ended_tickets,
    flow,
    occupancy,
    quantiles,
    queues,
    retail,
    rollup,
)

__all__ = [
    "durations",
    "ended_tickets",
    "flow",
    "occupancy",
    "quantiles",
    "queues",
    "retail",
    "rollup",
]
