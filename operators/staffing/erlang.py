"""Erlang C and Erlang A queueing formulas, and the staffing they advise.

A queue of customers (calls to a call centre, tickets at bank tellers or a telecom desk) is
served first come, first served by `agents` identical agents. Customers arrive at random (a
Poisson process: `arrivals` in `interval_s` seconds), and handling times are exponential with
mean `aht_s` (average handling time). The offered load is

    load = arrivals * aht_s / interval_s    (Erlangs: agents kept busy on average)

Two models:

- **Erlang C** (M/M/n): customers wait as long as it takes. With `agents <= load` the queue
  grows without bound (unstable): every customer waits, the service level is 0 and the average
  speed of answer is infinite (`math.inf`); this is a result, not an error.
- **Erlang A** (M/M/n+M): each waiting customer hangs up after an exponential patience with mean
  `patience_s`. The queue is stable for any load, and some customers abandon.

Definitions, the same in both models (Erlang C is Erlang A with infinite patience):

- `p_wait`: probability that an arriving customer finds every agent busy and has to wait
  (wait > 0).
- `service_level`: customers *answered* within `answer_s` seconds of arriving, over customers
  *offered* (every arrival, abandoned ones included). A customer who abandons counts against the
  service level even if they hung up before `answer_s`. This is pyworkforce's
  `ErlangA.service_level` [^4].
- `asa_s`: mean time in queue over every offered customer, answered ones (their wait until
  answered) and abandoned ones (their wait until hanging up), customers answered at once counting
  0. Under Erlang C that is the classic average speed of answer `p_wait * aht_s / (agents - load)`;
  under Erlang A it equals `abandon * patience_s` (Little's law on the queue), pyworkforce's
  `ErlangA.average_speed_of_answer`.
- `abandon`: fraction of offered customers who hang up before being answered (Erlang A only).
- `occupancy`: fraction of agents' time spent handling customers, the carried load over
  `agents`: `load / agents` under Erlang C (1.0 when unstable), `load * (1 - abandon) / agents`
  under Erlang A.

Erlang C is computed with the Erlang B recursion [^1] (no factorials, no powers: stable for
thousands of agents). Erlang A uses the exact formulas of Garnett, Mandelbaum & Reiman [^2] and
Mandelbaum & Zeltyn [^3], in which the stationary queue of the M/M/n+M birth-death chain sums to
a lower incomplete gamma function; that function is evaluated here from its power series of
positive terms, summed outward from its largest term in logarithms (`_gamma_series`), so no
overflow and no `scipy` are involved.

References
----------
[^1]: Jagerman, D. L. (1974). Some properties of the Erlang loss function. *Bell System Technical
    Journal*, 53(3), 525-551.
[^2]: Garnett, O., Mandelbaum, A. and Reiman, M. (2002). Designing a call center with impatient
    customers. *Manufacturing & Service Operations Management*, 4(3), 208-227.
[^3]: Mandelbaum, A. and Zeltyn, S. (2007). Service engineering in action: the Palm/Erlang-A queue,
    with applications to call centers. In *Advances in Services Innovations*, Springer, 17-45.
[^4]: pyworkforce, `pyworkforce.queuing.ErlangA` and `ErlangC`.
    https://github.com/rodrigo-arenas/pyworkforce

"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "QueueMetrics",
    "Staffing",
    "StaffingTarget",
    "average_speed_of_answer_s",
    "erlang_a",
    "erlang_b",
    "erlang_c",
    "occupancy",
    "offered_load",
    "required_agents",
    "service_level",
    "wait_probability",
]

#: Relative size below which a term of a series of positive terms no longer changes its sum.
_EPS = 1e-17


# -- validation -------------------------------------------------------------------------------------


def _finite(name: str, value: float, *, low: float, low_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < low or (low_open and value == low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {value!r}")
    return float(value)


def _agents(agents: int) -> int:
    if isinstance(agents, bool) or not isinstance(agents, int) or agents < 1:
        raise ValueError(f"agents must be an integer >= 1, got {agents!r}")
    return agents


def _fraction(name: str, value: float, *, low_open: bool, high_open: bool) -> float:
    value = _finite(name, value, low=-math.inf, low_open=False)
    if not (0.0 < value < 1.0 or (value == 0.0 and not low_open) or (value == 1.0 and not high_open)):
        interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return value


# -- Erlang B and C ---------------------------------------------------------------------------------


def offered_load(arrivals: float, interval_s: float, aht_s: float) -> float:
    """The offered load in Erlangs, `arrivals * aht_s / interval_s`.

    Parameters
    ----------
    arrivals
        Customers arriving in the interval (a forecast or a count), >= 0.
    interval_s
        Length of the interval in seconds, > 0.
    aht_s
        Average handling time per customer in seconds, > 0.

    Examples
    --------
    >>> offered_load(arrivals=100, interval_s=1800, aht_s=180)
    10.0

    """
    arrivals = _finite("arrivals", arrivals, low=0.0, low_open=False)
    interval_s = _finite("interval_s", interval_s, low=0.0, low_open=True)
    aht_s = _finite("aht_s", aht_s, low=0.0, low_open=True)
    return arrivals * aht_s / interval_s


def _erlang_b_steps(load: float, agents: int) -> Iterator[float]:
    """Erlang B for 1, 2, ..., `agents` agents: B_0 = 1, B_k = A B_{k-1} / (k + A B_{k-1})."""
    b = 1.0
    for k in range(1, agents + 1):
        b = load * b / (k + load * b)
        yield b


def erlang_b(load: float, agents: int) -> float:
    """Erlang B: the probability that a customer finds all `agents` busy when nobody can wait (M/M/n/n).

    Computed with the recursion B_0 = 1, B_k = A B_{k-1} / (k + A B_{k-1}) [^1], which never
    forms a factorial or a power and holds for any number of agents.

    Parameters
    ----------
    load
        Offered load in Erlangs, >= 0.
    agents
        Number of agents, an integer >= 1.

    Examples
    --------
    >>> for agents in [1, 2, 10, 1000]:
    ...     print(agents, erlang_b(10.0, agents))
    1 0.9090909
    2 0.8196721
    10 0.2145823
    1000 0.0

    References
    ----------
    [^1]: Jagerman, D. L. (1974). Some properties of the Erlang loss function. *Bell System
        Technical Journal*, 53(3), 525-551.

    """
    load = _finite("load", load, low=0.0, low_open=False)
    b = 1.0
    for b in _erlang_b_steps(load, _agents(agents)):  # noqa: B007 (the last value is the answer)
        pass
    return b


def _erlang_c_from_b(load: float, agents: int, b: float) -> float:
    if agents <= load:
        return 1.0
    return agents * b / (agents - load * (1.0 - b))


def wait_probability(load: float, agents: int) -> float:
    """Erlang C: the probability that an arriving customer has to wait (M/M/n, infinite patience).

    `C = N B / (N - A (1 - B))` with B the Erlang B value for the same load A and N agents. With
    `agents <= load` the queue is unstable and every customer waits: 1.0.

    Parameters
    ----------
    load
        Offered load in Erlangs, >= 0.
    agents
        Number of agents, an integer >= 1.

    Examples
    --------
    >>> for agents in [10, 13, 14, 470]:
    ...     print(agents, round(wait_probability(10.0, agents), 4))
    10 1.0
    13 0.2853
    14 0.1741
    470 0.0
    >>> round(wait_probability(450.0, 470), 4)
    0.2536

    References
    ----------
    [^1]: Cooper, R. B. (1981). *Introduction to Queueing Theory*, 2nd ed., North Holland, section 3.4.

    """
    load = _finite("load", load, low=0.0, low_open=False)
    agents = _agents(agents)
    return _erlang_c_from_b(load, agents, erlang_b(load, agents))


def service_level(load: float, agents: int, aht_s: float, answer_s: float) -> float:
    """Erlang C service level: the fraction of customers answered within `answer_s` seconds.

    `SL = 1 - C exp(-(N - A) answer_s / aht_s)`, 0.0 when `agents <= load` (unstable queue).

    Parameters
    ----------
    load
        Offered load in Erlangs, >= 0.
    agents
        Number of agents, an integer >= 1.
    aht_s
        Average handling time in seconds, > 0.
    answer_s
        Target answer time in seconds, >= 0.

    Examples
    --------
    >>> for agents in [10, 12, 13, 14, 15]:
    ...     print(agents, round(service_level(10.0, agents, aht_s=180, answer_s=20), 4))
    10 0.0
    12 0.6402
    13 0.7956
    14 0.8884
    15 0.9415

    """
    return erlang_c(load, agents, aht_s, answer_s).service_level


def average_speed_of_answer_s(load: float, agents: int, aht_s: float) -> float:
    """Erlang C average speed of answer in seconds, `C aht_s / (N - A)`; `math.inf` when `agents <= load`.

    Parameters
    ----------
    load
        Offered load in Erlangs, >= 0.
    agents
        Number of agents, an integer >= 1.
    aht_s
        Average handling time in seconds, > 0.

    Examples
    --------
    >>> for agents in [9, 13, 14]:
    ...     print(agents, round(average_speed_of_answer_s(10.0, agents, aht_s=180), 1))
    9 inf
    13 17.1
    14 7.8

    """
    return erlang_c(load, agents, aht_s, 0.0).asa_s


def occupancy(load: float, agents: int) -> float:
    """Erlang C occupancy, `load / agents`, at most 1.0 (agents of an unstable queue are never idle).

    Parameters
    ----------
    load
        Offered load in Erlangs, >= 0.
    agents
        Number of agents, an integer >= 1.

    Examples
    --------
    >>> round(occupancy(10.0, 14), 3)
    0.714
    >>> occupancy(10.0, 8)
    1.0

    """
    load = _finite("load", load, low=0.0, low_open=False)
    return min(1.0, load / _agents(agents))


@dataclass(frozen=True)
class QueueMetrics:
    """How a queue performs with a given number of agents (see the module's definitions).

    Parameters
    ----------
    agents
        Number of agents.
    load
        Offered load in Erlangs.
    p_wait
        Probability that an arriving customer has to wait.
    service_level
        Customers answered within the target answer time, over customers offered.
    asa_s
        Mean wait in queue in seconds over every offered customer; `math.inf` for an unstable
        Erlang C queue.
    occupancy
        Carried load over agents, in [0, 1].
    abandon
        Fraction of offered customers who hang up (Erlang A); None under Erlang C.

    """

    agents: int
    load: float
    p_wait: float
    service_level: float
    asa_s: float
    occupancy: float
    abandon: float | None = None

    @property
    def stable(self) -> bool:
        """False for an Erlang C queue with `agents <= load`: it grows without bound."""
        return math.isfinite(self.asa_s)


def _erlang_c_metrics(load: float, agents: int, b: float, aht_s: float, answer_s: float) -> QueueMetrics:
    if load == 0.0:
        return QueueMetrics(agents, load, 0.0, 1.0, 0.0, 0.0)
    if agents <= load:
        return QueueMetrics(agents, load, 1.0, 0.0, math.inf, 1.0)
    c = _erlang_c_from_b(load, agents, b)
    sl = 1.0 - c * math.exp(-(agents - load) * answer_s / aht_s)
    return QueueMetrics(agents, load, c, min(1.0, max(0.0, sl)), c * aht_s / (agents - load), load / agents)


def erlang_c(load: float, agents: int, aht_s: float, answer_s: float) -> QueueMetrics:
    """Every Erlang C (M/M/n) figure for `agents` agents: no customer ever hangs up.

    Parameters
    ----------
    load
        Offered load in Erlangs, >= 0 (`offered_load`).
    agents
        Number of agents, an integer >= 1.
    aht_s
        Average handling time in seconds, > 0.
    answer_s
        Target answer time of the service level in seconds, >= 0.

    Examples
    --------
    >>> load = offered_load(arrivals=100, interval_s=1800, aht_s=180)
    >>> for agents in [9, 13, 14]:
    ...     m = erlang_c(load, agents, aht_s=180, answer_s=20)
    ...     print(agents, round(m.p_wait, 4), round(m.service_level, 4), round(m.asa_s, 1), round(m.occupancy, 3),
    ...           m.stable)
    9 1.0 0.0 inf 1.0 False
    13 0.2853 0.7956 17.1 0.769 True
    14 0.1741 0.8884 7.8 0.714 True

    References
    ----------
    [^1]: Cooper, R. B. (1981). *Introduction to Queueing Theory*, 2nd ed., North Holland, section 3.4.

    """
    load = _finite("load", load, low=0.0, low_open=False)
    agents = _agents(agents)
    aht_s = _finite("aht_s", aht_s, low=0.0, low_open=True)
    answer_s = _finite("answer_s", answer_s, low=0.0, low_open=False)
    return _erlang_c_metrics(load, agents, erlang_b(load, agents), aht_s, answer_s)


# -- Erlang A ---------------------------------------------------------------------------------------


def _gamma_series(a: float, z: float) -> tuple[float, float]:
    """log M(a, z) and the mean index of its terms, for a > 0, z >= 0.

    M(a, z) = sum_{k >= 0} u_k with u_k = z^k / (a (a+1) ... (a+k)), which is e^z z^-a γ(a, z), γ the
    lower incomplete gamma function; the mean index is sum k u_k / sum u_k. The terms are positive,
    rise while k < z - a and then fall faster than a geometric series, so the sum starts at the
    largest term and goes outward both ways until what is left (bounded by a geometric series) is
    below `_EPS` of the sum: about `sqrt(z)` terms, whatever the sizes of `a` and `z`, no overflow,
    and no subtraction anywhere.
    """
    if z == 0.0:
        return -math.log(a), 0.0
    peak = max(0, math.floor(z - a))
    if peak < 64:
        log_peak = peak * math.log(z) - math.fsum(math.log(a + i) for i in range(peak + 1))
    else:
        log_peak = peak * math.log(z) + math.lgamma(a) - math.lgamma(a + peak + 1)
    total, moment = 1.0, float(peak)  # sum of u_k / u_peak, and of k u_k / u_peak
    term, k = 1.0, peak
    while True:  # upward: u_k / u_{k-1} = z / (a + k), below 1 past the peak, and falling
        k += 1
        ratio = z / (a + k)
        term *= ratio
        total += term
        moment += k * term
        if ratio < 1.0:
            rest = term * ratio / (1.0 - ratio)  # sum_{m >= 1} term ratio^m bounds what is left
            if rest < _EPS * total and rest * (k + 1.0 / (1.0 - ratio)) < _EPS * moment:
                break
    term = 1.0
    for k in range(peak, 0, -1):  # downward: u_{k-1} / u_k = (a + k) / z, below 1 before the peak, and falling
        ratio = (a + k) / z
        term *= ratio
        total += term
        moment += (k - 1) * term
        if ratio < 1.0 and term * ratio / (1.0 - ratio) < _EPS * total:
            break
    return log_peak + math.log(total), moment / total


def _erlang_a_metrics(load: float, agents: int, b: float, aht_s: float, answer_s: float,
                      patience_s: float) -> QueueMetrics:
    if load == 0.0:
        return QueueMetrics(agents, load, 0.0, 1.0, 0.0, 0.0, 0.0)
    # Time in units of the mean patience (theta = 1): agents finish at rate x together, customers
    # arrive at rate y. With j customers queued the queue shrinks at rate x + j, so the stationary
    # queue, given all agents busy, is proportional to y^j / ((x+1)...(x+j)) and sums to
    # A(x, y) = x M(x, y) [^2].
    x = agents * patience_s / aht_s
    y = load * patience_s / aht_s
    log_m, queued = _gamma_series(x, y)
    # P(wait > 0) = A B / (1 + (A - 1) B) with B = Erlang B [^2], written so a huge A cannot overflow.
    p_wait = 0.0 if b == 0.0 else 1.0 / (1.0 + math.exp(math.log1p(-b) - math.log(x) - log_m - math.log(b)))
    # Given all agents busy, the mean queue is `queued`; each queued customer hangs up at rate 1 and
    # customers arrive at rate y, so a delayed customer abandons with probability queued / y
    # (Little's law). The offered wait V of a delayed customer has density
    # x e^{-x t + y (1 - e^{-t})} / A(x, y), and they are answered if V < patience (probability
    # e^{-V}); so the answered ones still waiting at t are [^3]
    #   P(answered after t | delayed) = e^{y (1 - e^{-t}) - (x + 1) t} M(x + 1, y e^{-t}) / M(x, y).
    abandon_if_delayed = min(1.0, queued / y)
    t = answer_s / patience_s
    answered_late = math.exp(y * -math.expm1(-t) - (x + 1.0) * t + _gamma_series(x + 1.0, y * math.exp(-t))[0]
                             - log_m)
    answered_in_time = min(1.0, max(0.0, (1.0 - abandon_if_delayed) - answered_late))
    abandon = p_wait * abandon_if_delayed
    sl = (1.0 - p_wait) + p_wait * answered_in_time
    return QueueMetrics(
        agents=agents,
        load=load,
        p_wait=p_wait,
        service_level=min(1.0, max(0.0, sl)),
        asa_s=abandon * patience_s,  # Little's law on the queue: theta E[Q] = lambda P(abandon)
        occupancy=min(1.0, load * (1.0 - abandon) / agents),
        abandon=abandon,
    )


def erlang_a(load: float, agents: int, aht_s: float, answer_s: float, patience_s: float) -> QueueMetrics:
    """Every Erlang A (M/M/n+M) figure for `agents` agents, customers hanging up after a mean `patience_s`.

    Exact, not an approximation: the formulas of Garnett, Mandelbaum & Reiman [^2] and
    Mandelbaum & Zeltyn [^3] for the stationary M/M/n+M queue and the offered wait, in which the
    lower incomplete gamma function appears; it is summed from its power series (see the module).
    Stable for any load, so `agents <= load` gives finite figures with much abandonment.

    Parameters
    ----------
    load
        Offered load in Erlangs, >= 0 (`offered_load`).
    agents
        Number of agents, an integer >= 1.
    aht_s
        Average handling time in seconds, > 0.
    answer_s
        Target answer time of the service level in seconds, >= 0.
    patience_s
        Mean patience of a waiting customer in seconds (exponential), > 0.

    Examples
    --------
    >>> load = offered_load(arrivals=100, interval_s=1800, aht_s=180)
    >>> for agents in [8, 12, 13, 14]:
    ...     m = erlang_a(load, agents, aht_s=180, answer_s=20, patience_s=300)
    ...     print(agents, round(m.p_wait, 4), round(m.service_level, 4), round(m.abandon, 4), round(m.asa_s, 1),
    ...           round(m.occupancy, 3))
    8 0.8476 0.2265 0.2319 69.6 0.960
    12 0.3318 0.7723 0.0427 12.8 0.798
    13 0.2258 0.8582 0.025 7.5 0.75
    14 0.1453 0.9168 0.014 4.2 0.704

    References
    ----------
    [^2]: Garnett, O., Mandelbaum, A. and Reiman, M. (2002). Designing a call center with
        impatient customers. *Manufacturing & Service Operations Management*, 4(3), 208-227.
    [^3]: Mandelbaum, A. and Zeltyn, S. (2007). Service engineering in action: the Palm/Erlang-A
        queue, with applications to call centers. In *Advances in Services Innovations*, Springer,
        17-45.

    """
    load = _finite("load", load, low=0.0, low_open=False)
    agents = _agents(agents)
    aht_s = _finite("aht_s", aht_s, low=0.0, low_open=True)
    answer_s = _finite("answer_s", answer_s, low=0.0, low_open=False)
    patience_s = _finite("patience_s", patience_s, low=0.0, low_open=True)
    return _erlang_a_metrics(load, agents, erlang_b(load, agents), aht_s, answer_s, patience_s)


# -- staffing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Staffing:
    """The staffing advised for one interval, and how the queue performs with it.

    Parameters
    ----------
    agents
        Agents needed on the queue at once (the smallest number meeting every target).
    scheduled
        Agents to schedule so that `agents` are available after shrinkage,
        `ceil(agents / (1 - shrinkage))`.
    service_level
        Customers answered within the target answer time, over customers offered.
    p_wait
        Probability that a customer has to wait.
    asa_s
        Mean wait in queue in seconds over every offered customer.
    occupancy
        Carried load over `agents`.
    abandon
        Fraction of offered customers who hang up (Erlang A); None under Erlang C.

    """

    agents: int
    scheduled: int
    service_level: float
    p_wait: float
    asa_s: float
    occupancy: float
    abandon: float | None


@dataclass(frozen=True)
class StaffingTarget:
    """How many agents an interval needs to meet a service-level target, under Erlang C or Erlang A.

    The answer is the smallest number of agents N whose service level is at least `target_sl`,
    and, when given, whose abandonment is at most `max_abandon` and occupancy at most
    `max_occupancy`; then `scheduled = ceil(N / (1 - shrinkage))`. Erlang A is used when
    `patience_s` is given, Erlang C otherwise. Agents are tried upward from a bound no solution
    lies below (under Erlang C, the first stable number `floor(load) + 1`; under Erlang A,
    `target_sl * load`, since a service level cannot exceed the carried load over the offered
    one, nor the carried load exceed N), so the first that meets every target is the smallest.

    Parameters
    ----------
    interval_s
        Length of the interval in seconds, > 0.
    aht_s
        Average handling time in seconds, > 0.
    answer_s
        Target answer time in seconds, >= 0: the "20" of "80 % answered within 20 s".
    target_sl
        Target service level, in (0, 1): the "80 %".
    patience_s
        Mean patience of waiting customers in seconds (Erlang A); None for Erlang C.
    max_abandon
        Highest acceptable fraction of customers hanging up, in (0, 1]; needs `patience_s`.
    max_occupancy
        Highest acceptable occupancy, in (0, 1].
    shrinkage
        Fraction of scheduled time agents are not on the queue (breaks, training), in [0, 1).

    Examples
    --------
    >>> target = StaffingTarget(interval_s=1800, aht_s=180, answer_s=20, target_sl=0.8, shrinkage=0.3)
    >>> for arrivals in [0, 50, 100, 200]:
    ...     s = target.required(arrivals)
    ...     print(arrivals, s.agents, s.scheduled, round(s.service_level, 4))
    0 0 0 1.0
    50 8 12 0.8801
    100 14 20 0.8884
    200 24 35 0.8089
    >>> impatient = StaffingTarget(interval_s=1800, aht_s=180, answer_s=20, target_sl=0.8, patience_s=300,
    ...                            max_abandon=0.05, max_occupancy=0.85, shrinkage=0.3)
    >>> s = impatient.required(100)
    >>> print(s.agents, s.scheduled, round(s.service_level, 4), round(s.abandon, 4), round(s.occupancy, 3))
    13 19 0.8582 0.025 0.75

    References
    ----------
    [^1]: Koole, G. (2013). *Call Center Optimization*. MG Books, chapter 5.

    """

    interval_s: float
    aht_s: float
    answer_s: float
    target_sl: float
    patience_s: float | None = None
    max_abandon: float | None = None
    max_occupancy: float | None = None
    shrinkage: float = 0.0

    def __post_init__(self) -> None:
        _finite("interval_s", self.interval_s, low=0.0, low_open=True)
        _finite("aht_s", self.aht_s, low=0.0, low_open=True)
        _finite("answer_s", self.answer_s, low=0.0, low_open=False)
        _fraction("target_sl", self.target_sl, low_open=True, high_open=True)
        if self.patience_s is not None:
            _finite("patience_s", self.patience_s, low=0.0, low_open=True)
        if self.max_abandon is not None:
            _fraction("max_abandon", self.max_abandon, low_open=True, high_open=False)
            if self.patience_s is None:
                raise ValueError("max_abandon needs patience_s: only Erlang A models customers hanging up")
        if self.max_occupancy is not None:
            _fraction("max_occupancy", self.max_occupancy, low_open=True, high_open=False)
        _fraction("shrinkage", self.shrinkage, low_open=False, high_open=True)

    def metrics(self, arrivals: float, agents: int) -> QueueMetrics:
        """How the queue performs with `agents` agents when `arrivals` customers come in the interval."""
        load = offered_load(arrivals, self.interval_s, self.aht_s)
        if self.patience_s is None:
            return erlang_c(load, agents, self.aht_s, self.answer_s)
        return erlang_a(load, agents, self.aht_s, self.answer_s, self.patience_s)

    def _meets(self, m: QueueMetrics) -> bool:
        return (m.service_level >= self.target_sl
                and (self.max_occupancy is None or m.occupancy <= self.max_occupancy)
                and (self.max_abandon is None or (m.abandon is not None and m.abandon <= self.max_abandon)))

    def required(self, arrivals: float) -> Staffing:
        """The fewest agents meeting every target when `arrivals` customers come in the interval.

        No arrivals need no agents (`agents == 0`, service level 1.0).
        """
        load = offered_load(arrivals, self.interval_s, self.aht_s)
        if load == 0.0:
            return Staffing(0, 0, 1.0, 0.0, 0.0, 0.0, None if self.patience_s is None else 0.0)
        # No answer below: Erlang C needs a stable queue, Erlang A a carried load of target_sl * load.
        first = math.floor(load) + 1 if self.patience_s is None else max(1, math.floor(self.target_sl * load))
        b = 1.0
        for b in _erlang_b_steps(load, first - 1):  # noqa: B007 (Erlang B for first - 1 agents)
            pass
        agents = first
        while True:
            b = load * b / (agents + load * b)  # Erlang B for `agents`, from the value for one fewer
            if self.patience_s is None:
                m = _erlang_c_metrics(load, agents, b, self.aht_s, self.answer_s)
            else:
                m = _erlang_a_metrics(load, agents, b, self.aht_s, self.answer_s, self.patience_s)
            if self._meets(m):
                break
            agents += 1
        # Rounded before the ceiling so that float noise (14 / 0.7 = 20.000000000000004) adds no agent.
        scheduled = math.ceil(round(agents / (1.0 - self.shrinkage), 9))
        return Staffing(agents, scheduled, m.service_level, m.p_wait, m.asa_s, m.occupancy, m.abandon)

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"interval_s": 1800, "aht_s": 180, "answer_s": 20, "target_sl": 0.8}
        yield {"interval_s": 900, "aht_s": 240, "answer_s": 30, "target_sl": 0.9, "patience_s": 120,
               "max_abandon": 0.03, "max_occupancy": 0.85, "shrinkage": 0.35}

    @classmethod
    def _unit_test_inputs(cls, params: dict[str, Any]) -> dict[str, Any]:
        # Configuration only: each answer depends on the arrivals given, never on earlier calls.
        steps = [("required", (arrivals,)) for arrivals in (0, 40, 100, 250)]
        steps.insert(2, ("metrics", (100, 14)))
        return {"steps": steps, "reads": [], "empty": [], "stateless": True}


def required_agents(arrivals: float, interval_s: float, aht_s: float, answer_s: float, target_sl: float, *,
                    patience_s: float | None = None, max_abandon: float | None = None,
                    max_occupancy: float | None = None, shrinkage: float = 0.0) -> Staffing:
    """The fewest agents meeting a service-level target (see `StaffingTarget`), Erlang A if `patience_s` is given.

    Parameters
    ----------
    arrivals
        Customers arriving in the interval, >= 0.
    interval_s
        Length of the interval in seconds, > 0.
    aht_s
        Average handling time in seconds, > 0.
    answer_s
        Target answer time in seconds, >= 0.
    target_sl
        Target service level, in (0, 1).
    patience_s
        Mean patience in seconds for Erlang A; None for Erlang C.
    max_abandon
        Highest acceptable abandonment, in (0, 1]; needs `patience_s`.
    max_occupancy
        Highest acceptable occupancy, in (0, 1].
    shrinkage
        Fraction of scheduled time off the queue, in [0, 1).

    Examples
    --------
    >>> s = required_agents(100, interval_s=1800, aht_s=180, answer_s=20, target_sl=0.8, shrinkage=0.3)
    >>> print(s.agents, s.scheduled, round(s.service_level, 4), round(s.p_wait, 4), round(s.asa_s, 1),
    ...       round(s.occupancy, 3), s.abandon)
    14 20 0.8884 0.1741 7.8 0.714 None

    """
    target = StaffingTarget(interval_s=interval_s, aht_s=aht_s, answer_s=answer_s, target_sl=target_sl,
                            patience_s=patience_s, max_abandon=max_abandon, max_occupancy=max_occupancy,
                            shrinkage=shrinkage)
    return target.required(arrivals)
