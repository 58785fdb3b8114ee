"""Pure, synchronous, I/O-free customer-flow logic: aggregations, windows, statistics."""

from footfall.operators import buckets, flow

__all__ = ["buckets", "flow"]
