"""Event time: tumbling buckets, sliding windows, rolling baselines, de-duplication, local calendars."""

from footfall.operators.windows import (
    buckets,
    dedupe,
    localtime,
    rolling,
    sliding,
)

__all__ = [
    "buckets",
    "dedupe",
    "localtime",
    "rolling",
    "sliding",
]
