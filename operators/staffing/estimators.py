"""What staffing needs to know of a queue, learned online: service time and customers' patience.

- `ServiceTime`: the mean handling time of served tickets (or calls) and its
  coefficient of variation, exponentially faded so that it follows a service whose
  pace changes over the weeks.
- `Patience`: the mean patience of waiting customers under an exponential model. A
  served customer's wait is a censored patience (they would have waited longer), an
  abandoned one's is a patience: the maximum-likelihood estimate of the abandonment
  rate is the number of abandonments divided by the total time all customers spent
  waiting[^1], so the mean patience is that total time over the abandonments.

Both keep two or three faded sums: their state is plain data. River's `stats.EWMean`
and `stats.EWVar` hold the same numbers, but as objects that persist only by pickling;
a store's staffing state is saved as JSON like its flow (`pipeline.persistence`).

Examples
--------
>>> service = ServiceTime(fading=0.0)
>>> for s in [100.0, 200.0, 300.0]:
...     service.update(s)
>>> service.get(), round(service.cv(), 4)
(200.0, 0.4082)
>>> patience = Patience(fading=0.0)
>>> for wait_s, abandoned in [(30.0, False), (90.0, True), (60.0, False), (20.0, True)]:
...     patience.update(wait_s, abandoned)
>>> patience.get()  # 200 s waited in all, 2 abandonments
100.0

References
----------
[^1]: L. Brown, N. Gans, A. Mandelbaum, A. Sakov, H. Shen, S. Zeltyn, L. Zhao (2005). Statistical
      analysis of a telephone call center: a queueing-science perspective. JASA 100(469), 36-50.

"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["Patience", "ServiceTime"]


class ServiceTime:
    """Mean and spread of service times, faded (see the module docstring).

    Parameters
    ----------
    fading
        Weight lost by the past at each new service, in [0, 1): 0 keeps everything equally
        (the plain mean); 0.01 gives a memory of about 100 services.

    """

    def __init__(self, fading: float = 0.01) -> None:
        if not 0 <= fading < 1:
            raise ValueError(f"fading must be in [0, 1), got {fading}")
        self.fading = fading
        self.weight = 0.0  # faded count
        self.total = 0.0  # faded sum of service times
        self.squares = 0.0  # faded sum of their squares

    @classmethod
    def _unit_test_params(cls):
        yield {}
        yield {"fading": 0.0}

    @classmethod
    def _unit_test_inputs(cls, params: dict[str, Any]) -> dict[str, Any]:
        return {"steps": [("update", (s,), {}) for s in (120.0, 340.0, 95.0, 610.0, 180.0, 75.0)],
                "reads": [("get", (), {}), ("cv", (), {})],
                "empty": [(("get", (), {}), None), (("cv", (), {}), None)]}

    def update(self, service_s: float) -> None:
        if not math.isfinite(service_s) or service_s < 0:
            return  # a broken duration teaches nothing
        keep = 1.0 - self.fading
        self.weight = keep * self.weight + 1.0
        self.total = keep * self.total + service_s
        self.squares = keep * self.squares + service_s * service_s

    def get(self) -> float | None:
        """Mean service time in seconds (None before any)."""
        return self.total / self.weight if self.weight else None

    def cv(self) -> float | None:
        """Coefficient of variation (standard deviation over mean; 1 for exponential times)."""
        mean = self.get()
        if not mean:
            return None
        var = max(0.0, self.squares / self.weight - mean * mean)
        return math.sqrt(var) / mean

    def to_state(self) -> list[float]:
        return [self.fading, self.weight, self.total, self.squares]

    @classmethod
    def from_state(cls, state: list[float]) -> ServiceTime:
        out = cls(state[0])
        out.weight, out.total, out.squares = state[1], state[2], state[3]
        return out


class Patience:
    """Mean patience of waiting customers, exponential, censored by those served (see the module docstring).

    Parameters
    ----------
    fading
        Weight lost by the past at each new customer, in [0, 1).

    """

    def __init__(self, fading: float = 0.002) -> None:
        if not 0 <= fading < 1:
            raise ValueError(f"fading must be in [0, 1), got {fading}")
        self.fading = fading
        self.waited_s = 0.0  # faded total time spent waiting, served and abandoned alike
        self.abandoned = 0.0  # faded count of abandonments

    @classmethod
    def _unit_test_params(cls):
        yield {}
        yield {"fading": 0.0}

    @classmethod
    def _unit_test_inputs(cls, params: dict[str, Any]) -> dict[str, Any]:
        waits = [(30.0, False), (90.0, True), (60.0, False), (20.0, True), (300.0, False), (45.0, True)]
        return {"steps": [("update", w, {}) for w in waits], "reads": [("get", (), {})],
                "empty": [(("get", (), {}), None)]}

    def update(self, wait_s: float, abandoned: bool) -> None:
        """One customer who waited `wait_s` and then was served (`abandoned` False) or hung up."""
        if not math.isfinite(wait_s) or wait_s < 0:
            return
        keep = 1.0 - self.fading
        self.waited_s = keep * self.waited_s + wait_s
        self.abandoned = keep * self.abandoned + (1.0 if abandoned else 0.0)

    def get(self) -> float | None:
        """Mean patience in seconds; None while nobody hung up (patience not yet seen to end)."""
        return self.waited_s / self.abandoned if self.abandoned > 0 else None

    def to_state(self) -> list[float]:
        return [self.fading, self.waited_s, self.abandoned]

    @classmethod
    def from_state(cls, state: list[float]) -> Patience:
        out = cls(state[0])
        out.waited_s, out.abandoned = state[1], state[2]
        return out
