"""Pure, synchronous, I/O-free customer-flow logic: aggregations, windows, statistics, KPIs."""

from footfall.operators import (
    buckets,
    dedupe,
    flow,
    localtime,
    occupancy,
    quantiles,
    queues,
    retail,
    rolling,
    sliding,
)

__all__ = [
    "buckets",
    "dedupe",
    "flow",
    "localtime",
    "occupancy",
    "quantiles",
    "queues",
    "retail",
    "rolling",
    "sliding",
]
