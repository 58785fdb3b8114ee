"""`rounded` against Python's `round`, value by value, to the bit (the sign of a zero and NaN included)."""

from __future__ import annotations

import math
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.operators.rounding import rounded


def bits(value: float) -> bytes:
    return struct.pack("<d", value)


def assert_as_round(rows: list[list[float]], digits: int) -> None:
    got = rounded(rows, digits)
    assert [[bits(v) for v in row] for row in got] == [[bits(round(v, digits)) for v in row] for row in rows]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=40), st.integers(0, 8))
def test_any_floats_round_as_python_rounds_them(values: list[float], digits: int) -> None:
    assert_as_round([values, values[::-1]], digits)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-10**12, 10**12), min_size=1, max_size=30), st.integers(0, 8), st.integers(-3, 3))
def test_values_at_and_next_to_halves_round_as_python_rounds_them(ks: list[int], digits: int, ulps: int) -> None:
    """Where numpy's product could land on the other side of a half: (k + 0.5) / 10**digits and its neighbours."""
    values = []
    for k in ks:
        x = (k + 0.5) / 10**digits
        for _ in range(abs(ulps)):
            x = math.nextafter(x, math.inf if ulps > 0 else -math.inf)
        values.append(x)
    assert_as_round([values], digits)


def test_forecast_like_rows_with_many_halves() -> None:
    ks = range(0, 200_000, 7)
    rows = [[(k + 0.5) / 10_000 for k in ks], [k / 3 for k in ks], [-k / 7e4 for k in ks]]
    assert_as_round(rows, 4)


def test_a_forecast_record_holds_each_point_rounded_as_python_rounds_it() -> None:
    """The forecast record's points against one built value by value with `round` (the reference)."""
    import random

    from footfall.operators.forecasting.forecast_select import Forecast
    from footfall.operators.forecasting.store_forecast import PublishedForecast
    from footfall.stream.records import forecast_record

    rng = random.Random(4)
    n = 96
    rows = [[rng.choice([rng.random() * 30, (rng.randrange(10**5) + 0.5) / 10**4, 0.0]) for _ in range(n)]
            for _ in range(5)]
    models = [rng.choice(["snarimax", "holt_winters"]) for _ in range(n)]
    forecast = Forecast(1_000, 900_000, 900_000, "best", *rows, models=models)
    record = forecast_record("s1", {"region": "north", "vertical": "retail"}, "UTC", PublishedForecast("arrivals",
                             False, forecast), now_ms=7)
    names = ("forecast", "lo80", "hi80", "lo95", "hi95")
    expected = [{"target_ms": 900_000 * (i + 1), "h": i + 1, **{k: round(rows[j][i], 4) for j, k in enumerate(names)},
                 "model": models[i]} for i in range(n)]
    assert [bits(p[k]) for p in record["points"] for k in names] == [bits(p[k]) for p in expected for k in names]
    assert record["points"] == expected
