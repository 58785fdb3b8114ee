"""Rows of a few numbers at fixed positions (a week of buckets), in arrays, each value given back as it was put.

`BucketBaseline` keeps last week's values of every bucket of the week: at 15 minutes,
672 rows of 3 numbers. As a dict of lists of Python numbers that took about 94 KB of a
store's memory (tracemalloc and a deep size of a bank store's flow after 8 simulated
days, `python -m footfall.scripts.statesize`'s `live_state_ram`), the largest part of it;
in arrays, 672 × 3 float64 values with a one-byte kind each, about 19 KB. A value comes
back as the type it went in: an int as that int, a float as that float, None as None, so
the records that show last week's counts do not change. Ints float64 cannot hold exactly
(beyond 2**53) are kept apart, as they are.

`dtype="float32"` halves the arrays for rows that are mostly counts (672 × 3 values: 8 KB
instead of 16): ints up to 2**24 and floats float32 holds exactly go in the array, any
other value is kept apart as it is, so nothing comes back changed.

Examples
--------
>>> ring = WeekRing(size=4, width=2)
>>> ring.put(1, [12, 0.5]); ring.put(3, [None, 7])
>>> ring.get(1), ring.get(3), ring.get(0)
([12, 0.5], [None, 7], None)
>>> list(ring.items())
[(1, [12, 0.5]), (3, [None, 7])]
>>> ring.discard(1); len(ring), 1 in ring
(1, False)
>>> ring.put(2, [2**60, -3]); ring.get(2)
[1152921504606846976, -3]
>>> ring.clear(); len(ring)
0
>>> counts = WeekRing(size=2, width=3, dtype="float32")
>>> counts.put(0, [1_000, 0.5, 0.1]); counts.get(0)  # 0.1 is not a float32: kept apart, unchanged
[1000, 0.5, 0.1]

"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

__all__ = ["WeekRing"]

Number = int | float

# The kind of each value: absent (None), an int (exact in float64), a float, or kept apart.
_NONE, _INT, _FLOAT, _APART = 0, 1, 2, 3
_EXACT_INT = 2**53
_EXACT_INT32 = 2**24  # every int up to it is a float32


def _is_float32(value: float) -> bool:
    """Whether a float32 holds `value` exactly (the magnitude first: numpy warns on an overflowing cast)."""
    return abs(value) < 3.4e38 and float(np.float32(value)) == value


class WeekRing:
    """`size` positions, each empty or a row of `width` numbers or None (see the module docstring)."""

    __slots__ = ("_apart", "_exact_int", "_kinds", "_narrow", "_present", "_values", "size", "width")

    def __init__(self, size: int, width: int, dtype: str = "float64") -> None:
        if dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
        self.size, self.width = size, width
        self._narrow = dtype == "float32"
        self._exact_int = _EXACT_INT32 if self._narrow else _EXACT_INT
        self._values = np.zeros((size, width), dtype=np.float32 if self._narrow else np.float64)
        self._kinds = np.zeros((size, width), dtype=np.uint8)
        self._present = np.zeros(size, dtype=bool)
        self._apart: dict[tuple[int, int], Number] = {}  # (position, column) -> a value the array cannot hold

    def put(self, position: int, row: Sequence[Number | None]) -> None:
        """Set the row at `position` (`width` values, each an int, a float or None)."""
        if len(row) != self.width:
            raise ValueError(f"a row has {self.width} values, got {len(row)}")
        values, kinds = self._values[position], self._kinds[position]
        for column, value in enumerate(row):
            self._apart.pop((position, column), None)
            if value is None:
                values[column], kinds[column] = 0.0, _NONE
            elif isinstance(value, int) and not isinstance(value, bool):
                if -self._exact_int <= value <= self._exact_int:
                    values[column], kinds[column] = value, _INT
                else:
                    values[column], kinds[column] = 0.0, _APART
                    self._apart[(position, column)] = value
            elif self._narrow and not _is_float32(value):
                values[column], kinds[column] = 0.0, _APART
                self._apart[(position, column)] = value
            else:
                values[column], kinds[column] = value, _FLOAT
        self._present[position] = True

    def get(self, position: int) -> list[Number | None] | None:
        """The row at `position` as it was put, or None when the position is empty."""
        if not self._present[position]:
            return None
        out: list[Number | None] = []
        for column, (value, kind) in enumerate(zip(self._values[position].tolist(),
                                                   self._kinds[position].tolist(), strict=True)):
            if kind == _INT:
                out.append(int(value))
            elif kind == _FLOAT:
                out.append(value)
            elif kind == _APART:
                out.append(self._apart[(position, column)])
            else:
                out.append(None)
        return out

    def discard(self, position: int) -> None:
        """Empty `position` (nothing happens if it is empty)."""
        if self._present[position]:
            self._present[position] = False
            for column in range(self.width):
                self._apart.pop((position, column), None)

    def clear(self) -> None:
        self._present[:] = False
        self._apart.clear()

    def items(self) -> Iterator[tuple[int, list[Number | None]]]:
        """(position, row) of every row, by position.

        All rows at once, in numpy: a state is saved every few seconds, and reading 672 rows
        one `get` at a time took 0.7 ms a store. The ints come out of one conversion; the
        few other values are put in after it.
        """
        positions = np.flatnonzero(self._present)
        values, kinds = self._values[positions], self._kinds[positions]
        is_int = kinds == _INT
        rows = np.where(is_int, values, 0.0).astype(np.int64).tolist()
        for column in np.flatnonzero(~is_int.all(axis=0)).tolist():
            kind_of = kinds[:, column]
            if (kind_of == _NONE).all():  # a quantity the store does not have: a whole column of None
                for row in rows:
                    row[column] = None
                continue
            for r in np.flatnonzero(kind_of != _INT).tolist():
                kind = kind_of[r]
                rows[r][column] = (float(values[r, column]) if kind == _FLOAT else None if kind == _NONE
                                   else self._apart[(int(positions[r]), column)])
        return zip(positions.tolist(), rows, strict=True)

    def __contains__(self, position: int) -> bool:
        return bool(self._present[position])

    def __len__(self) -> int:
        return int(self._present.sum())
