"""`freeze`/`thaw` against the standard library's JSON: the same values and types back, in bytes of their own size."""

from __future__ import annotations

import json
import random
import sys
import tracemalloc

import pytest

from footfall.operators.frozen import freeze, thaw


def random_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.randint(-(2**62), 2**62)
    if kind == 2:
        return rng.choice([0.0, -0.0, 0.1, 1e-300, 1.7976931348623157e308, rng.uniform(-1e9, 1e9), 17.625000000000004])
    if kind == 3:
        return rng.choice(["", "é\u0000\n", "bins", "\U0001f600" * 3])
    if kind == 4:
        return rng.random() < 0.5
    if kind in (5, 6):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(6))]
    return {f"k{i}": random_value(rng, depth + 1) for i in range(rng.randrange(5))}


def same(a, b) -> bool:
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and (a == b or a is b) and str(a) == str(b)  # str: -0.0 is not 0.0


@pytest.mark.parametrize("seed", range(30))
def test_thaw_gives_back_what_json_gives_back(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        value = random_value(rng)
        assert same(thaw(freeze(value)), json.loads(json.dumps(value)))


def test_frozen_bytes_take_their_own_size() -> None:
    # sys.getsizeof shows the length, not the buffer: tracemalloc sees what was allocated and kept.
    value = [[23, 21, 0, 3, 104, 0.0], [23, 0, 0, 0.0, {"n": 0, "sum": 0.0, "min": None, "bins": []}]]
    freeze(value)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [freeze(value) for _ in range(200)]
        per_value = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    assert per_value < 2 * (sys.getsizeof(b"") + len(kept[0]))
