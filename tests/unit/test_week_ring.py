"""`WeekRing` against a dict of lists doing the same operations: the same rows, values of the same types."""

from __future__ import annotations

import copy
import pickle
import random

import pytest

from footfall.operators.windows.week_ring import WeekRing


def random_value(rng: random.Random) -> int | float | None:
    return rng.choice([
        None, rng.randint(0, 300), rng.randint(-5, 5), float(rng.randint(0, 9)), rng.uniform(-1e6, 1e6),
        2**53, 2**53 + 1, -(2**60) - 7, 10**30, 0.1, -0.0, 1e-300,
        2**24, 2**24 + 1, -(2**24) - 1, 0.75, 1e39, 3.5e38, float("inf"), 16_777_217.0,
    ])


def same(a: list | None, b: list | None) -> bool:
    """Equal, and every value of the same type (12 is not 12.0 here)."""
    if a is None or b is None:
        return a is b
    return len(a) == len(b) and all(type(x) is type(y) and (x == y or x is y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("seed", range(20))
def test_matches_a_dict_of_lists(seed: int, dtype: str) -> None:
    rng = random.Random(seed)
    size, width = rng.choice([(1, 1), (7, 3), (24, 2), (672, 3)])
    ring, reference = WeekRing(size, width, dtype), {}
    for _ in range(2_000):
        op, position = rng.random(), rng.randrange(size)
        if op < 0.55:
            row = [random_value(rng) for _ in range(width)]
            ring.put(position, row)
            reference[position] = list(row)
        elif op < 0.85:
            ring.discard(position)
            reference.pop(position, None)
        elif op < 0.86:
            ring.clear()
            reference.clear()
        assert same(ring.get(position), reference.get(position))
        assert (position in ring) == (position in reference)
        assert len(ring) == len(reference)
    got = list(ring.items())
    assert [p for p, _ in got] == sorted(reference)
    assert all(same(row, reference[p]) for p, row in got)
    for clone in (copy.deepcopy(ring), pickle.loads(pickle.dumps(ring))):
        assert all(same(clone.get(p), reference.get(p)) for p in range(size))


def test_a_row_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="3 values"):
        WeekRing(4, 3).put(0, [1, 2])


def test_a_big_int_overwritten_leaves_nothing_behind() -> None:
    ring = WeekRing(2, 1)
    ring.put(0, [2**70])
    ring.put(0, [5])
    ring.put(1, [2**70])
    ring.discard(1)
    assert ring.get(0) == [5] and ring._apart == {}


def test_float32_rows_take_half_the_values_memory() -> None:
    wide, narrow = WeekRing(672, 3), WeekRing(672, 3, "float32")
    assert narrow._values.nbytes * 2 == wide._values.nbytes


def test_an_unknown_dtype_is_refused() -> None:
    with pytest.raises(ValueError, match="dtype"):
        WeekRing(4, 3, "int8")
