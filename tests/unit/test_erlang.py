"""Erlang C and Erlang A against published figures, exact brute force and a simulation; the staffing command.

Reference case (the textbook one, also pyworkforce's): 100 calls per 30 minutes, 180 s handling
time (10 Erlangs), "80 % answered within 20 s". Every expected value here is published or worked
by hand, or comes from an independent computation in this file (exact rational arithmetic, the
truncated birth-death chain, a discrete-event simulation), never from the code under test.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.operators.staffing import erlang, simulate
from footfall.scripts import staffingcli

ARRIVALS, INTERVAL_S, AHT_S, ANSWER_S = 100, 1800, 180, 20
LOAD = 10.0  # 100 * 180 / 1800


# -- Erlang C: the reference table ------------------------------------------------------------------


def test_offered_load_is_arrivals_times_aht_over_interval():
    assert erlang.offered_load(ARRIVALS, INTERVAL_S, AHT_S) == LOAD


@pytest.mark.parametrize(
    ("agents", "sl", "p_wait", "asa_s", "occupancy"),
    [
        # Worked by hand from C = N B / (N - A (1 - B)), SL = 1 - C e^{-(N - A) 20 / 180}, ASA = C 180 / (N - A);
        # None: not part of the reference (the exact-rational tests below cover p_wait for every N).
        (12, 0.6402, None, None, None),
        (13, 0.7956, 0.2853, 17.1, None),
        (14, 0.8884, 0.1741, 7.8, 0.714),  # also pyworkforce's README: 0.8883500191794669, 0.1741319335950498
        (15, 0.9415, None, None, None),
    ],
)
def test_erlang_c_reference_table(agents: int, sl: float, p_wait: float | None, asa_s: float | None,
                                  occupancy: float | None):
    m = erlang.erlang_c(LOAD, agents, aht_s=AHT_S, answer_s=ANSWER_S)
    assert round(m.service_level, 4) == sl
    assert p_wait is None or round(m.p_wait, 4) == p_wait
    assert asa_s is None or round(m.asa_s, 1) == asa_s
    assert occupancy is None or round(m.occupancy, 3) == occupancy
    assert m.occupancy == LOAD / agents
    assert m.abandon is None and m.stable
    # The single-figure functions agree with the bundle.
    assert erlang.service_level(LOAD, agents, AHT_S, ANSWER_S) == m.service_level
    assert erlang.wait_probability(LOAD, agents) == m.p_wait
    assert erlang.average_speed_of_answer_s(LOAD, agents, AHT_S) == m.asa_s
    assert erlang.occupancy(LOAD, agents) == m.occupancy


def test_required_agents_for_80_percent_in_20_s_is_14_and_20_scheduled_with_30_percent_shrinkage():
    s = erlang.required_agents(ARRIVALS, INTERVAL_S, AHT_S, ANSWER_S, target_sl=0.8, shrinkage=0.3)
    assert (s.agents, s.scheduled) == (14, 20)  # 14 / 0.7 is 20.000000000000004 in floats: still 20
    # pyworkforce README: ErlangC(transactions=100, asa=20/60, aht=3, interval=30, shrinkage=0.3)
    assert s.service_level == pytest.approx(0.8883500191794669, rel=1e-12)
    assert s.p_wait == pytest.approx(0.1741319335950498, rel=1e-12)
    assert s.occupancy == pytest.approx(0.7142857142857143, rel=1e-12)
    assert round(s.asa_s, 1) == 7.8
    assert s.abandon is None


@pytest.mark.parametrize("agents", [1, 5, 9, 10])
def test_unstable_erlang_c_queue_is_reported_not_raised(agents: int):
    # N <= A: the queue grows without bound.
    m = erlang.erlang_c(LOAD, agents, aht_s=AHT_S, answer_s=ANSWER_S)
    assert (m.p_wait, m.service_level, m.asa_s, m.occupancy, m.stable) == (1.0, 0.0, math.inf, 1.0, False)


# -- Erlang C: exact rational brute force -----------------------------------------------------------


def exact_erlang_c(load: Fraction, agents: int) -> Fraction:
    """Erlang C from its factorial formula, in exact rational arithmetic."""
    below = sum(load**k / math.factorial(k) for k in range(agents))
    top = load**agents / math.factorial(agents) * agents / (agents - load)
    return top / (below + top)


def exact_erlang_b(load: Fraction, agents: int) -> Fraction:
    terms = [load**k / math.factorial(k) for k in range(agents + 1)]
    return terms[-1] / sum(terms)


@pytest.mark.parametrize("load", [Fraction(1, 3), Fraction(2), Fraction(25, 3), Fraction(10), Fraction(47, 2)])
def test_erlang_b_and_c_match_exact_rationals_for_small_agents(load: Fraction):
    for agents in range(math.floor(load) + 1, math.floor(load) + 25):
        assert erlang.erlang_b(float(load), agents) == pytest.approx(float(exact_erlang_b(load, agents)), rel=1e-12)
        assert erlang.wait_probability(float(load), agents) == pytest.approx(float(exact_erlang_c(load, agents)),
                                                                              rel=1e-12)


@pytest.mark.parametrize(("load", "agents"), [(450, 470), (450, 451), (450, 520), (1000, 1040)])
def test_erlang_c_for_hundreds_of_agents_is_finite_and_exact(load: int, agents: int):
    # The factorial formula overflows floats here (470! > 1e1000); the recursion does not.
    m = erlang.erlang_c(float(load), agents, aht_s=AHT_S, answer_s=ANSWER_S)
    for value in (m.p_wait, m.service_level, m.occupancy):
        assert math.isfinite(value) and 0.0 <= value <= 1.0
    assert m.p_wait == pytest.approx(float(exact_erlang_c(Fraction(load), agents)), rel=1e-10)


def test_erlang_b_for_thousands_of_agents_does_not_overflow():
    assert erlang.erlang_b(10.0, 5_000) == 0.0
    assert 0.0 < erlang.erlang_c(4_000.0, 4_100, aht_s=AHT_S, answer_s=ANSWER_S).p_wait < 1.0


# -- Erlang A: published figures and an independent brute force -------------------------------------


def test_erlang_a_matches_pyworkforce_regression_at_14_agents():
    # pyworkforce tests/test_abandonment.py: ErlangA(transactions=100, aht=3, asa=20/60, interval=30, patience=5),
    # `_metrics(14)` and `service_level(14)`; times there are in minutes.
    m = erlang.erlang_a(LOAD, 14, aht_s=AHT_S, answer_s=ANSWER_S, patience_s=300)
    assert round(m.p_wait, 5) == 0.14526
    assert round(m.abandon, 6) == 0.013984
    assert round(m.occupancy, 6) == 0.704297
    assert round(m.asa_s / 60, 6) == 0.069919
    assert round(m.service_level, 6) == 0.916792


def test_erlang_a_staffing_matches_pyworkforce_documentation():
    # pyworkforce docs/guide/erlanga.md: ErlangA(..., patience=5, shrinkage=0.3).required_positions(
    # service_level=0.8, max_occupancy=0.85, max_abandonment=0.05) -> raw_positions 13, positions 19,
    # service_level 0.858..., occupancy 0.750..., abandonment_probability 0.025..., waiting_probability
    # 0.226..., average_speed_of_answer 0.125... (minutes), i.e. figures rounded to 3 decimals.
    # The brief quoted SL 0.8584 and abandonment 0.0253: the exact M/M/n+M chain gives 0.85818 and
    # 0.02496 (see the brute force below), which is what pyworkforce's 3 decimals show too.
    s = erlang.required_agents(ARRIVALS, INTERVAL_S, AHT_S, ANSWER_S, target_sl=0.8, patience_s=300,
                               max_abandon=0.05, max_occupancy=0.85, shrinkage=0.3)
    assert (s.agents, s.scheduled) == (13, 19)
    assert round(s.service_level, 3) == 0.858
    assert round(s.occupancy, 3) == 0.750
    assert round(s.abandon, 3) == 0.025
    assert round(s.p_wait, 3) == 0.226
    assert round(s.asa_s / 60, 3) == 0.125
    # 12 agents miss the target: 13 is the fewest.
    assert erlang.erlang_a(LOAD, 12, AHT_S, ANSWER_S, 300).service_level < 0.8


def brute_force_erlang_a(load: float, agents: int, aht_s: float, answer_s: float,
                         patience_s: float) -> tuple[float, float, float]:
    """(p_wait, abandon, service level) of M/M/n+M from the truncated birth-death chain.

    The service level comes from the tagged customer's absorbing chain (j customers ahead: moves
    up at rate n mu + j theta, hangs up at rate theta), by uniformization and a backward recursion
    over all starting positions at once: a method unrelated to the incomplete gamma functions used
    by the code under test.
    """
    mu, theta = 1.0 / aht_s, 1.0 / patience_s
    lam = load * mu
    probs = [1.0]
    while True:
        k = len(probs)
        probs.append(probs[-1] * lam / (min(k, agents) * mu + max(k - agents, 0) * theta))
        if k > agents and probs[-1] < 1e-18 * sum(probs):
            break
    p = np.array(probs) / sum(probs)
    queue = np.arange(len(p) - agents)
    p_wait = float(p[agents:].sum())
    abandon = theta * float((queue * p[agents:]).sum()) / lam
    ahead = queue  # a customer arriving to state agents + j has j ahead
    rate_on = agents * mu + ahead * theta  # moving up one place (or being answered, from j = 0)
    total = rate_on[-1] + theta
    served = np.zeros(len(ahead))  # P(answered within m uniformized steps | j ahead)
    mean = total * answer_s
    weight = math.exp(-mean)
    within = weight * served
    for m in range(1, int(mean + 12 * math.sqrt(mean) + 30)):
        moved = np.concatenate(([1.0], served[:-1]))  # from j = 0, moving up is being answered
        served = (rate_on * moved + (total - rate_on - theta) * served) / total
        weight *= mean / m
        within += weight * served
    sl = float(p[:agents].sum() + (p[agents:] * within).sum())
    return p_wait, abandon, sl


@pytest.mark.parametrize(
    ("load", "agents", "aht_s", "answer_s", "patience_s"),
    [
        (10.0, 13, 180, 20, 300),  # the reference
        (10.0, 8, 180, 20, 300),  # overloaded: stable all the same
        (10.0, 12, 180, 60, 45),  # impatient customers
        (3.5, 4, 300, 30, 600),
        (40.0, 44, 240, 15, 120),
    ],
)
def test_erlang_a_matches_the_birth_death_chain(load, agents, aht_s, answer_s, patience_s):
    p_wait, abandon, sl = brute_force_erlang_a(load, agents, aht_s, answer_s, patience_s)
    m = erlang.erlang_a(load, agents, aht_s, answer_s, patience_s)
    assert m.p_wait == pytest.approx(p_wait, abs=1e-10)
    assert m.abandon == pytest.approx(abandon, abs=1e-10)
    assert m.service_level == pytest.approx(sl, abs=1e-8)
    assert m.asa_s == pytest.approx(abandon * patience_s, rel=1e-9)  # Little's law on the queue
    assert m.occupancy == pytest.approx(load * (1 - abandon) / agents, rel=1e-9)


@pytest.mark.parametrize("agents", [11, 14, 20])
def test_erlang_a_tends_to_erlang_c_as_patience_grows(agents: int):
    c = erlang.erlang_c(LOAD, agents, AHT_S, ANSWER_S)
    a = erlang.erlang_a(LOAD, agents, AHT_S, ANSWER_S, patience_s=1e9)
    assert a.p_wait == pytest.approx(c.p_wait, abs=1e-6)
    assert a.service_level == pytest.approx(c.service_level, abs=1e-6)
    assert a.asa_s == pytest.approx(c.asa_s, rel=1e-4)
    assert a.abandon < 1e-6


def test_erlang_a_is_stable_and_finite_for_large_loads():
    for load, agents in [(450.0, 400), (450.0, 470), (5_000.0, 4_000), (5_000.0, 5_100)]:
        m = erlang.erlang_a(load, agents, AHT_S, ANSWER_S, patience_s=300)
        for value in (m.p_wait, m.service_level, m.abandon, m.occupancy):
            assert 0.0 <= value <= 1.0
        assert math.isfinite(m.asa_s)
    # Heavily overloaded: the agents serve at full speed and the rest hang up (fluid limit 1 - N / A).
    assert erlang.erlang_a(5_000.0, 4_000, AHT_S, ANSWER_S, 300).abandon == pytest.approx(0.2, abs=1e-6)


# -- required agents: minimal, and every target met -------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    arrivals=st.floats(0.5, 1_000),
    aht_s=st.floats(30, 900),
    answer_s=st.floats(0, 120),
    target_sl=st.floats(0.05, 0.99),
    patience_s=st.one_of(st.none(), st.floats(10, 1_800)),
    max_occupancy=st.one_of(st.none(), st.floats(0.5, 1.0)),
)
def test_required_agents_is_the_fewest_meeting_every_target(arrivals, aht_s, answer_s, target_sl, patience_s,
                                                            max_occupancy):
    target = erlang.StaffingTarget(interval_s=1800, aht_s=aht_s, answer_s=answer_s, target_sl=target_sl,
                                   patience_s=patience_s, max_occupancy=max_occupancy)
    s = target.required(arrivals)

    def meets(agents: int) -> bool:
        m = target.metrics(arrivals, agents)
        return m.service_level >= target_sl and (max_occupancy is None or m.occupancy <= max_occupancy)

    assert meets(s.agents)
    # The search starts from a lower bound: check a stretch below it too.
    assert not any(meets(n) for n in range(max(1, s.agents - 40), s.agents))
    assert s.scheduled == s.agents


def test_no_arrivals_need_no_agents():
    s = erlang.required_agents(0, INTERVAL_S, AHT_S, ANSWER_S, target_sl=0.9, patience_s=60)
    assert (s.agents, s.scheduled, s.service_level, s.abandon) == (0, 0, 1.0, 0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_sl": 1.0}, "target_sl must be in (0, 1)"),  # a certainty no staffing reaches
        ({"target_sl": 0.0}, "target_sl must be in (0, 1)"),
        ({"arrivals": -1}, "arrivals must be >= 0"),
        ({"aht_s": 0}, "aht_s must be > 0"),
        ({"interval_s": math.inf}, "interval_s must be a finite number"),
        ({"shrinkage": 1.0}, "shrinkage must be in [0, 1)"),
        ({"max_abandon": 0.05}, "max_abandon needs patience_s"),  # Erlang C has no abandonment
        ({"patience_s": 60, "max_abandon": 0.0}, "max_abandon must be in (0, 1]"),
        ({"max_occupancy": 1.2}, "max_occupancy must be in (0, 1]"),
    ],
)
def test_bad_input_raises_value_error_naming_it(kwargs, message):
    args = {"arrivals": ARRIVALS, "interval_s": INTERVAL_S, "aht_s": AHT_S, "answer_s": ANSWER_S,
            "target_sl": 0.8, **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        erlang.required_agents(args.pop("arrivals"), **args)


@pytest.mark.parametrize("agents", [0, -3, 2.5, True])
def test_agents_must_be_a_positive_integer(agents):
    with pytest.raises(ValueError, match="agents must be an integer >= 1"):
        erlang.erlang_c(LOAD, agents, AHT_S, ANSWER_S)


# -- the simulation cross-check ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arrivals_per_s", "aht_s", "patience_s", "agents", "answer_s"),
    [
        (100 / 1800, 180, 300, 13, 20),  # the reference: 10 Erlangs, 13 agents, 5 minutes of patience
        (10 / 180, 180, 120, 9, 30),  # overloaded (10 Erlangs on 9 agents), impatient
        (50 / 240, 240, 60, 52, 15),  # 50 Erlangs, very impatient
    ],
)
def test_erlang_a_lies_inside_the_simulations_99_percent_intervals(arrivals_per_s, aht_s, patience_s, agents,
                                                                   answer_s):
    sim = simulate.simulate_queue(arrivals_per_s, aht_s, patience_s, agents, answer_s, customers=300_000, seed=7)
    m = erlang.erlang_a(arrivals_per_s * aht_s, agents, aht_s, answer_s, patience_s)
    assert sim.service_level.contains(m.service_level), (m.service_level, sim.service_level)
    assert sim.abandon.contains(m.abandon), (m.abandon, sim.abandon)
    assert sim.mean_wait_s.contains(m.asa_s), (m.asa_s, sim.mean_wait_s)
    # The intervals are tight enough to mean something.
    assert sim.service_level.half_width < 0.01 and sim.abandon.half_width < 0.005


# -- the command ------------------------------------------------------------------------------------

REFERENCE_ARGS = ["erlang", "--arrivals", "100", "--interval-s", "1800", "--aht-s", "180", "--answer-s", "20",
                  "--target-sl", "0.8"]


def test_command_prints_the_reference_staffing_as_json(capsys):
    assert staffingcli.main([*REFERENCE_ARGS, "--shrinkage", "0.3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"agents", "scheduled", "service_level", "p_wait", "asa_s", "occupancy", "abandon"}
    assert (out["agents"], out["scheduled"], out["abandon"]) == (14, 20, None)
    assert round(out["service_level"], 4) == 0.8884
    assert round(out["p_wait"], 4) == 0.1741
    assert round(out["asa_s"], 1) == 7.8
    assert round(out["occupancy"], 3) == 0.714


def test_command_with_patience_uses_erlang_a(capsys):
    argv = [*REFERENCE_ARGS, "--patience-s", "300", "--max-abandon", "0.05", "--max-occupancy", "0.85",
            "--shrinkage", "0.3", "--json"]
    assert staffingcli.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["agents"], out["scheduled"]) == (13, 19)
    assert (round(out["service_level"], 3), round(out["abandon"], 3)) == (0.858, 0.025)


def test_command_prints_lines_for_people(capsys):
    assert staffingcli.main(REFERENCE_ARGS) == 0
    out = capsys.readouterr().out
    assert "agents         14" in out and "service_level  0.8884" in out and "Erlang C" in out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--arrivals", "-5"], "argument --arrivals: must be a number >= 0, got '-5'"),
        (["--target-sl", "80"], "argument --target-sl: must be a number strictly between 0 and 1"),
        (["--aht-s", "0"], "argument --aht-s: must be a number > 0"),
        (["--shrinkage", "1"], "argument --shrinkage: must be a number in [0, 1)"),
        (["--interval-s", "half-hour"], "argument --interval-s: must be a number > 0, got 'half-hour'"),
    ],
)
def test_command_rejects_bad_input_by_name(change, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        staffingcli.main([*REFERENCE_ARGS, *change])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_command_max_abandon_needs_patience(capsys):
    assert staffingcli.main([*REFERENCE_ARGS, "--max-abandon", "0.05"]) == 2
    assert "--max-abandon needs --patience-s" in capsys.readouterr().err


def test_command_help_explains_the_figures(capsys):
    with pytest.raises(SystemExit) as exit_info:
        staffingcli.main(["erlang", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: footfall staffing erlang")
    assert "service_level  customers answered within --answer-s" in out
