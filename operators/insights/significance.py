"""Welch's two-sample t-test and Pearson's correlation, for a store's daily totals.

`welch_t_test(a, b)` tests whether two samples (this week's daily totals, last week's) have
the same mean without assuming equal variances[^1]:

    t = (mean_a - mean_b) / sqrt(s_a² / n_a + s_b² / n_b)

with the Welch–Satterthwaite degrees of freedom[^2]

    df = (s_a²/n_a + s_b²/n_b)² / ((s_a²/n_a)² / (n_a - 1) + (s_b²/n_b)² / (n_b - 1))

and the two-sided p-value 2 · P(T_df ≤ -|t|) from the Student t distribution
(`scipy.special.stdtr`, which takes a fractional df; scipy comes with River). It needs
two values on each side and some spread: otherwise None.

`pearson(x, y)` is the sample correlation of paired values (`statistics.correlation`); None
with fewer than 3 pairs or a constant side.

Examples
--------
Welch's example 1 (two samples of 15, [^1]): t = -2.46, df = 25.0, p = 0.021.

>>> a1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
>>> a2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
>>> test = welch_t_test(a1, a2)
>>> round(test.t, 2), round(test.df, 1), round(test.p, 3), test.significant
(-2.46, 25.0, 0.021, True)
>>> welch_t_test([3.0], [1.0, 2.0]) is None
True
>>> pearson([1, 2, 3, 4], [2, 4, 5, 9]), pearson([1, 2], [3, 4])
(0.9647..., None)

References
----------
[^1]: B. L. Welch (1947). The generalization of "Student's" problem when several different
      population variances are involved. Biometrika 34(1-2), 28-35. Example values as given in
      https://en.wikipedia.org/wiki/Welch%27s_t-test#Examples.
[^2]: F. E. Satterthwaite (1946). An approximate distribution of estimates of variance
      components. Biometrics Bulletin 2(6), 110-114.

"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.special import stdtr

__all__ = ["ALPHA", "WelchTest", "pearson", "welch_t_test"]

#: Significance level of the weekly test.
ALPHA = 0.05


@dataclass(frozen=True)
class WelchTest:
    """Welch's t statistic, its Welch–Satterthwaite degrees of freedom and two-sided p-value."""

    t: float
    df: float
    p: float

    @property
    def significant(self) -> bool:
        """Whether the means differ at the 5 % level (two-sided)."""
        return self.p < ALPHA


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> WelchTest | None:
    """Welch's test of equal means of `a` and `b` (see the module); None below 2 values a side or without spread."""
    n_a, n_b = len(a), len(b)
    if n_a < 2 or n_b < 2:
        return None
    va, vb = statistics.variance(a) / n_a, statistics.variance(b) / n_b
    se2 = va + vb
    if se2 <= 0:
        return None  # both sides constant: no spread to measure a difference against
    t = (statistics.fmean(a) - statistics.fmean(b)) / math.sqrt(se2)
    df = se2 * se2 / (va * va / (n_a - 1) + vb * vb / (n_b - 1))
    p = float(2.0 * stdtr(df, -abs(t)))
    return WelchTest(t, df, min(1.0, p))


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson's r of the pairs `(x[i], y[i])`; None with fewer than 3 pairs or a side without spread."""
    if len(x) != len(y):
        raise ValueError(f"x and y must pair up, got {len(x)} and {len(y)} values")
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return statistics.correlation(x, y)
