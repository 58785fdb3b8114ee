"""A discrete-event simulation of the M/M/n+M queue, to check the Erlang A formulas against.

Customers arrive as a Poisson process, are served first come, first served by `agents` agents
with exponential handling times, and hang up after an exponential patience if not answered by
then. Because service is in order of arrival, each customer's *offered wait* (the wait they would
have with infinite patience) is known on arrival: the time until the earliest of the agents'
next free times, counting only earlier customers who stayed to be served. A customer is answered
if their offered wait is below their patience, and then takes that agent; otherwise they leave
after their patience and take nobody. Keeping the agents' next free times in a heap makes each
customer O(log n), and the simulation is exact (no time step).

The figures follow the definitions of `erlang` (service level = answered within `answer_s` over
offered; abandonment over offered; mean wait over offered, until answered or hanging up). Their
99 % confidence intervals come from batch means [^1]: after a warm-up the customers are cut into
`batches` consecutive batches, each batch gives one estimate, and the interval is
`mean ± t(0.995, batches - 1) s / sqrt(batches)`.

References
----------
[^1]: Law, A. M. (2015). *Simulation Modeling and Analysis*, 5th ed., McGraw-Hill, section 9.5.3.

"""

from __future__ import annotations

import heapq
import math
import random
import statistics
from dataclasses import dataclass

__all__ = ["BatchMeans", "SimulatedQueue", "simulate_queue"]

#: Two-sided 99 % quantiles of Student's t, t(0.995, df), by degrees of freedom (batches - 1).
T_995 = {9: 3.2498, 19: 2.8609, 29: 2.7564, 39: 2.7079, 49: 2.6800}


@dataclass(frozen=True)
class BatchMeans:
    """A batch-means estimate: the mean of the batches and the half-width of its 99 % confidence interval."""

    mean: float
    half_width: float

    @classmethod
    def of(cls, values: list[float]) -> BatchMeans:
        """The estimate from one value per batch (the number of batches must be a key of `T_995` plus one)."""
        if len(values) - 1 not in T_995:
            raise ValueError(f"batches must be one of {sorted(df + 1 for df in T_995)}, got {len(values)}")
        return cls(statistics.fmean(values), T_995[len(values) - 1] * statistics.stdev(values) / math.sqrt(len(values)))

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def contains(self, value: float) -> bool:
        """True if `value` lies inside the 99 % confidence interval."""
        return self.low <= value <= self.high


@dataclass(frozen=True)
class SimulatedQueue:
    """What a simulation measured over `customers` customers (after the warm-up).

    Parameters
    ----------
    customers
        Customers measured.
    service_level
        Answered within `answer_s` over offered.
    abandon
        Hung up before being answered, over offered.
    mean_wait_s
        Mean time in queue over offered customers, in seconds.

    """

    customers: int
    service_level: BatchMeans
    abandon: BatchMeans
    mean_wait_s: BatchMeans


def simulate_queue(arrivals_per_s: float, aht_s: float, patience_s: float, agents: int, answer_s: float, *,
                   customers: int, seed: int, batches: int = 30, warmup: int = 5_000) -> SimulatedQueue:
    """Simulate an M/M/n+M queue for `warmup + customers` customers and measure the last `customers`.

    Pure: the random numbers come from `random.Random(seed)`, so a seed always gives the same result.

    Parameters
    ----------
    arrivals_per_s
        Arrival rate (customers per second), > 0.
    aht_s
        Mean handling time in seconds, > 0.
    patience_s
        Mean patience in seconds, > 0; `math.inf` for customers who never hang up (Erlang C).
    agents
        Number of agents, >= 1.
    answer_s
        Target answer time of the service level, in seconds.
    customers
        Customers measured, a multiple of `batches`.
    seed
        Seed of the random numbers.
    batches
        Number of batches of the batch means: 10, 20, 30, 40 or 50.
    warmup
        Customers simulated first and not measured (the queue starts empty).

    Examples
    --------
    >>> sim = simulate_queue(100 / 1800, aht_s=180, patience_s=300, agents=13, answer_s=20, customers=30_000, seed=1)
    >>> for estimate in [sim.service_level, sim.abandon, sim.mean_wait_s]:
    ...     print(round(estimate.mean, 4), round(estimate.half_width, 4))
    0.8481 0.0239
    0.0289 0.0053
    8.4946 1.5802
    >>> sim.service_level.contains(0.8582), sim.abandon.contains(0.0250)  # Erlang A's exact figures
    (True, True)

    """
    if not arrivals_per_s > 0 or not aht_s > 0 or not patience_s > 0 or agents < 1 or answer_s < 0:
        raise ValueError("arrivals_per_s, aht_s and patience_s must be > 0, agents >= 1 and answer_s >= 0")
    if customers <= 0 or customers % batches:
        raise ValueError(f"customers must be a positive multiple of batches ({batches}), got {customers}")
    rng = random.Random(seed)
    expovariate = rng.expovariate
    heapreplace = heapq.heapreplace
    service_rate = 1.0 / aht_s
    patience_rate = 1.0 / patience_s
    free_at = [0.0] * agents  # each agent's next free time, a heap
    now = 0.0
    size = customers // batches
    in_time, abandoned, waited = [0] * batches, [0] * batches, [0.0] * batches
    for i in range(-warmup, customers):
        now += expovariate(arrivals_per_s)
        patience = expovariate(patience_rate) if patience_rate > 0 else math.inf
        offered_wait = free_at[0] - now
        if offered_wait < 0.0:
            offered_wait = 0.0
        answered = offered_wait < patience
        if answered:
            heapreplace(free_at, now + offered_wait + expovariate(service_rate))
        if i < 0:
            continue
        batch = i // size
        if answered:
            waited[batch] += offered_wait
            if offered_wait <= answer_s:
                in_time[batch] += 1
        else:
            waited[batch] += patience
            abandoned[batch] += 1
    return SimulatedQueue(
        customers=customers,
        service_level=BatchMeans.of([n / size for n in in_time]),
        abandon=BatchMeans.of([n / size for n in abandoned]),
        mean_wait_s=BatchMeans.of([w / size for w in waited]),
    )
