"""QueueKpis: a hand-worked branch day, messy event orders, bounds, brute-force recount, lossless state."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import random
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from footfall.operators.kpis.queues import KPI_NAMES, QueueKpis
from footfall.schemas.events import QueueEvent

NINE_AM = 1_777_885_200_000  # 2026-05-04T09:00:00Z
MINUTE = 60_000


def step(minute: float, action: str, ticket: str, service: str = "teller", counter: str | None = None,
         wait_s: float | None = None, service_s: float | None = None, base: int = NINE_AM) -> QueueEvent:
    return QueueEvent(event_id=f"{ticket}-{action}-{minute}", store_id="branch-1", ts_ms=base + int(minute * MINUTE),
                      region=None, zone=None, vertical="bank", action=action, ticket_id=ticket, service=service,
                      counter=counter, customer_id=None, wait_s=wait_s, service_s=service_s)


def run(events: list[QueueEvent], **params: Any) -> QueueKpis:
    kpis = QueueKpis(**params)
    for event in events:
        kpis.update(event)
    return kpis


def round_trip(kpis: QueueKpis, **params: Any) -> QueueKpis:
    return QueueKpis.from_state(orjson.loads(orjson.dumps(kpis.to_state())), **params)


# A small branch, 09:00-09:44: a teller line (counters c1, c2) and an advice desk (d1); target wait 10 min.
BRANCH_DAY = [
    step(0, "issued", "T1"),
    step(1, "issued", "T2"),
    step(2, "issued", "A1", "advice"),
    step(3, "called", "T1", counter="c1"),  # T1 waited 180 s
    step(4, "called", "A1", "advice", counter="d1"),  # A1 waited 120 s
    step(5, "issued", "T3"),
    step(8, "served", "T1", counter="c1"),  # served 09:08 - called 09:03 = 300 s
    step(9, "called", "T2", counter="c2"),  # T2 waited 480 s
    step(10, "issued", "T4"),
    step(12, "served", "T2", counter="c2", service_s=150),  # service time given: 150 s
    step(14, "abandoned", "T3"),  # left after 540 s: before the target, left out of the service level
    step(20, "served", "A1", "advice", counter="d1"),  # 960 s with the adviser
    step(21, "issued", "T5"),
    step(25, "called", "T4", counter="c1"),  # T4 waited 900 s: answered late
    step(27, "no_show", "T4", counter="c1"),
    step(28, "issued", "T6"),
    step(40, "abandoned", "T5"),  # left after 1140 s: abandoned after the target
    step(41, "served", "X9", counter="c2", service_s=200),  # never seen before: the call is implied
    step(41, "served", "X9", counter="c2", service_s=200),  # a duplicate delivery
    step(42, "called", "T6", counter="c2", wait_s=800),  # the system's own wait wins over 840 s
    step(43, "issued", "T7"),
    step(44, "issued", "A2", "advice"),
]


def test_hand_worked_branch_day() -> None:
    kpis = run(BRANCH_DAY, target_wait_s=600)
    got = kpis.get()
    teller, advice, total = got["services"]["teller"], got["services"]["advice"], got["total"]
    assert set(got["services"]) == {"teller", "advice"}
    assert set(teller) == set(KPI_NAMES)
    # teller: T1..T7 issued; called T1 T2 T4 T6 + X9 (implied); served T1 T2 X9; abandoned T3 T5; no-show T4
    assert {k: teller[k] for k in ("issued", "waiting_now", "in_service_now", "called", "served", "abandoned",
                                   "no_show", "expired")} == {
        "issued": 7, "waiting_now": 1, "in_service_now": 1, "called": 5, "served": 3, "abandoned": 2,
        "no_show": 1, "expired": 0,
    }
    # answered waits 180, 480, 900, 800 (X9's is unknown)
    assert (teller["wait_n"], teller["wait_mean_s"]) == (4, 590.0)
    assert teller["wait_p50_s"] == pytest.approx(640.0, rel=0.02)  # numpy: (480 + 800) / 2
    assert teller["wait_p90_s"] == pytest.approx(np.quantile([180, 480, 800, 900], 0.9), rel=0.02)  # 870
    # service times 300 (from times), 150 and 200 (given)
    assert (teller["service_n"], teller["service_mean_s"]) == (3, pytest.approx(650 / 3))
    # within target: T1, T2; answered: T1 T2 T4 T6; abandoned after target: T5 -> 2 / (4 + 1)
    assert (teller["sl_within_target"], teller["sl_answered"], teller["sl_abandoned_late"]) == (2, 4, 1)
    assert teller["service_level_pct"] == pytest.approx(40.0)
    # c1 (last 09:27) and c2 (09:42) were active after 09:14; one waiting (T7)
    assert teller["counters_active"] == 2
    assert teller["est_wait_s"] == pytest.approx(1 * (650 / 3) / 2)

    assert {k: advice[k] for k in ("issued", "waiting_now", "in_service_now", "called", "served", "wait_n",
                                   "wait_mean_s", "wait_p90_s", "service_mean_s", "service_level_pct",
                                   "counters_active", "est_wait_s")} == {
        "issued": 2, "waiting_now": 1, "in_service_now": 0, "called": 1, "served": 1, "wait_n": 1,
        "wait_mean_s": 120.0, "wait_p90_s": 120.0, "service_mean_s": 960.0, "service_level_pct": 100.0,
        "counters_active": 1, "est_wait_s": 960.0,
    }

    assert {k: total[k] for k in ("issued", "waiting_now", "in_service_now", "called", "served", "abandoned",
                                  "no_show", "wait_n", "wait_mean_s", "service_n", "sl_within_target",
                                  "sl_answered", "sl_abandoned_late", "counters_active")} == {
        "issued": 9, "waiting_now": 2, "in_service_now": 1, "called": 6, "served": 4, "abandoned": 2,
        "no_show": 1, "wait_n": 5, "wait_mean_s": 496.0, "service_n": 4, "sl_within_target": 3,
        "sl_answered": 5, "sl_abandoned_late": 1, "counters_active": 3,
    }
    assert total["service_mean_s"] == pytest.approx(1610 / 4)
    assert total["service_level_pct"] == pytest.approx(50.0)
    assert total["est_wait_s"] == pytest.approx(2 * (1610 / 4) / 3)
    assert total["wait_p90_s"] == pytest.approx(np.quantile([120, 180, 480, 800, 900], 0.9), rel=0.02)
    assert (got["ignored"], got["evicted"], got["late"], got["as_of_ms"]) == (1, 0, 0, NINE_AM + 44 * MINUTE)
    assert kpis.waiting_now() == 2

    # 09:58: c1 was last active at 09:27, more than 30 minutes ago
    kpis.advance(NINE_AM + 58 * MINUTE)
    teller = kpis.get()["services"]["teller"]
    assert teller["counters_active"] == 1
    assert teller["est_wait_s"] == pytest.approx(650 / 3)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (
            # served before called: the call is implied at once, the late call is a duplicate
            [step(0, "issued", "T1"), step(10, "served", "T1", service_s=100), step(5, "called", "T1")],
            {"issued": 1, "called": 1, "served": 1, "waiting_now": 0, "wait_n": 0, "service_n": 1, "ignored": 1},
        ),
        (
            # called before issued: both counted, the wait measured once both times are known
            [step(5, "called", "T1", counter="c1"), step(0, "issued", "T1")],
            {"issued": 1, "called": 1, "waiting_now": 0, "in_service_now": 1, "wait_n": 1, "wait_mean_s": 300.0},
        ),
        (
            # issued after the ticket ended: the issue counts, nobody waits
            [step(5, "abandoned", "T1"), step(0, "issued", "T1")],
            {"issued": 1, "abandoned": 1, "waiting_now": 0, "sl_abandoned_late": 0, "ignored": 0},
        ),
        (
            # every step twice
            [step(0, "issued", "T1"), step(0, "issued", "T1"), step(2, "called", "T1"), step(2, "called", "T1"),
             step(4, "served", "T1"), step(4, "served", "T1")],
            {"issued": 1, "called": 1, "served": 1, "waiting_now": 0, "wait_n": 1, "service_n": 1, "ignored": 3},
        ),
        (
            # steps after the end are ignored
            [step(0, "issued", "T1"), step(3, "abandoned", "T1"), step(4, "called", "T1"), step(6, "served", "T1")],
            {"issued": 1, "called": 0, "abandoned": 1, "served": 0, "ignored": 2},
        ),
        (
            # a no-show straight from the line: called (implied) and gone
            [step(0, "issued", "T1"), step(7, "no_show", "T1", wait_s=400)],
            {"issued": 1, "called": 1, "no_show": 1, "waiting_now": 0, "wait_n": 1, "wait_mean_s": 400.0},
        ),
        (
            # a ticket called then no-show leaves the queue; a served after it is ignored
            [step(0, "issued", "T1"), step(1, "called", "T1"), step(3, "no_show", "T1"), step(9, "served", "T1")],
            {"issued": 1, "called": 1, "no_show": 1, "served": 0, "waiting_now": 0, "in_service_now": 0},
        ),
        (
            # an unknown ticket served with no times: counted, nothing measured
            [step(3, "served", "Z1")],
            {"issued": 0, "called": 1, "served": 1, "wait_n": 0, "service_n": 0, "service_mean_s": None},
        ),
        (
            # a call before its issue time (clock skew): the wait is unknown, not negative
            [step(5, "issued", "T1"), step(2, "called", "T1")],
            {"called": 1, "wait_n": 0, "service_level_pct": None},
        ),
        (
            # an abandon after the target counts against the service level, before it does not
            [step(0, "issued", "T1"), step(0, "issued", "T2"), step(5, "abandoned", "T1"),
             step(11, "abandoned", "T2"), step(0, "issued", "T3"), step(12, "called", "T3")],
            {"sl_within_target": 0, "sl_answered": 1, "sl_abandoned_late": 1, "service_level_pct": 0.0},
        ),
        (
            # wait exactly at the target is within it
            [step(0, "issued", "T1"), step(10, "called", "T1")],
            {"sl_within_target": 1, "service_level_pct": 100.0},
        ),
    ],
)
def test_messy_orders(events: list[QueueEvent], expected: dict[str, Any]) -> None:
    got = run(events, target_wait_s=600).get()
    flat = {**got["total"], "ignored": got["ignored"]}
    assert {k: flat[k] for k in expected} == expected


def test_stale_tickets_expire_and_old_ids_can_be_reused() -> None:
    kpis = run([step(0, "issued", "A1"), step(1, "issued", "A2"), step(2, "called", "A2"), step(3, "served", "A2")],
               stale_after_ms=3_600_000)
    assert kpis.waiting_now() == 1
    kpis.advance(NINE_AM + 61 * MINUTE)  # A1 silent for an hour: its end event was lost
    total = kpis.get()["total"]
    assert (total["waiting_now"], total["expired"]) == (0, 1)
    kpis.update(step(200, "issued", "A2"))  # A2 ended long ago: the number is in use again
    assert kpis.get()["total"]["issued"] == 3
    assert kpis.waiting_now() == 1


def test_open_tickets_are_bounded() -> None:
    kpis = run([step(i, "issued", f"T{i}") for i in range(5)], max_open=3, max_closed=2)
    got = kpis.get()
    assert (got["total"]["waiting_now"], got["evicted"], got["total"]["issued"]) == (3, 2, 5)
    assert len(kpis.to_state()["open"]) == 3 and len(kpis.to_state()["ended"]) == 2
    kpis.update(step(9, "called", "T0"))  # remembered as ended: ignored, not a new ticket
    kpis.update(step(9, "called", "T4"))
    assert (kpis.waiting_now(), kpis.get()["total"]["called"]) == (2, 1)


def test_daily_restart() -> None:
    kpis = QueueKpis(tz="Europe/London", reset_at="04:00")
    for event in [step(0, "issued", "A1"), step(1, "issued", "A2"), step(2, "called", "A1", counter="c1"),
                  step(9, "served", "A1", counter="c1"), step(10, "issued", "A3")]:
        kpis.update(event)
    assert kpis.get()["total"]["issued"] == 3
    next_day = NINE_AM + 24 * 60 * MINUTE
    kpis.update(step(0, "issued", "A1", base=next_day))  # numbers restart: A1 is a new ticket
    got = kpis.get()
    assert got["total"]["issued"] == 1 and got["total"]["served"] == 0
    assert (got["reset_dropped"], got["total"]["waiting_now"]) == (2, 1)  # A2, A3 never ended yesterday
    assert got["last_reset_ms"] == NINE_AM + 18 * 60 * MINUTE  # 04:00 BST = 03:00Z on 2026-05-05
    kpis.update(step(-7 * 60, "served", "A2", base=next_day))  # 02:00Z, before the reset: late
    assert kpis.get()["late"] == 1 and kpis.get()["total"]["served"] == 0


# -- invariants -----------------------------------------------------------------------------------

TICKETS = [f"T{i}" for i in range(8)]
SERVICE_OF = {t: ("teller" if i % 3 else "advice") for i, t in enumerate(TICKETS)}
queue_events = st.lists(
    st.tuples(
        st.integers(0, 90 * MINUTE),
        st.sampled_from(["issued", "called", "served", "abandoned", "no_show"]),
        st.sampled_from(TICKETS),
        st.sampled_from([None, "c1", "c2"]),
        st.one_of(st.none(), st.floats(0, 3_600)),
        st.one_of(st.none(), st.floats(0, 3_600)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(queue_events)
def test_waiting_now_equals_brute_force_recount(events: list[tuple[Any, ...]]) -> None:
    kpis = QueueKpis()
    seen: dict[str, set[str]] = {}
    for ts, action, ticket, counter, wait_s, service_s in events:
        event = QueueEvent(event_id="e", store_id="s", ts_ms=NINE_AM + ts, region=None, zone=None, vertical=None,
                           action=action, ticket_id=ticket, service=SERVICE_OF[ticket], counter=counter,
                           customer_id=None, wait_s=wait_s, service_s=service_s)
        kpis.update(event)
        seen.setdefault(ticket, set()).add(action)
        waiting = [t for t, actions in seen.items()
                   if "issued" in actions and not actions & {"called", "served", "abandoned", "no_show"}]
        got = kpis.get()
        assert kpis.waiting_now() == got["total"]["waiting_now"] == len(waiting) >= 0
        for service, kpi in got["services"].items():
            assert kpi["waiting_now"] == sum(SERVICE_OF[t] == service for t in waiting)
            assert all(kpi[k] >= 0 for k in KPI_NAMES if isinstance(kpi[k], int))
        assert got["total"]["issued"] == sum("issued" in actions for actions in seen.values())
        ended = got["total"]["served"] + got["total"]["abandoned"] + got["total"]["no_show"]
        assert ended == sum(bool(actions & {"served", "abandoned", "no_show"}) for actions in seen.values())
        level = got["total"]["service_level_pct"]
        assert level is None or 0 <= level <= 100
        kpis = round_trip(kpis)  # every step through JSON, as a Faust table does


@settings(max_examples=100, deadline=None)
@given(queue_events)
def test_round_trip_is_lossless(events: list[tuple[Any, ...]]) -> None:
    params = {"max_open": 4, "max_closed": 3, "tz": "Europe/London"}
    kpis = QueueKpis(**params)
    for ts, action, ticket, counter, wait_s, service_s in events:
        kpis.update(QueueEvent(event_id="e", store_id="s", ts_ms=NINE_AM + ts * 30, region=None, zone=None,
                               vertical=None, action=action, ticket_id=ticket, service=SERVICE_OF[ticket],
                               counter=counter, customer_id=None, wait_s=wait_s, service_s=service_s))
        restored = round_trip(kpis, **params)
        assert restored.to_state() == kpis.to_state()
        assert restored.get() == kpis.get()


# -- shapes and errors ----------------------------------------------------------------------------


def test_unit_test_params_shared_checks() -> None:
    for params in QueueKpis._unit_test_params():
        kpis = QueueKpis(**params)
        empty = kpis.get()  # reading before data
        assert empty["services"] == {} and empty["total"]["waiting_now"] == 0 and empty["total"]["est_wait_s"] == 0.0
        for event in BRANCH_DAY:
            kpis.update(event)
        state = kpis.to_state()
        for clone in (copy.deepcopy(kpis), pickle.loads(pickle.dumps(kpis)), round_trip(kpis, **params)):
            assert clone.to_state() == state
            assert clone.get() == kpis.get()
        assert kpis.to_state() == state  # reading never mutates
    assert QueueKpis.from_state(None).to_state() == QueueKpis().to_state()


@pytest.mark.parametrize(
    "params",
    [{"target_wait_s": -1}, {"active_window_ms": 0}, {"stale_after_ms": 0}, {"max_open": 0}, {"max_closed": 0},
     {"tz": "Nowhere/Town"}],
)
def test_bad_parameters_raise(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        QueueKpis(**params)


def test_unknown_action_raises() -> None:
    with pytest.raises(ValueError, match="unknown queue action"):
        QueueKpis().update(step(0, "teleported", "T1"))


@pytest.mark.parametrize("seed", range(4))
def test_each_store_measures_its_estimated_wait_against_the_actual_waits(seed: int) -> None:
    # Reference: before each new ticket, the estimate the live KPIs show (get() at that moment);
    # once the ticket is called, its actual wait. The KPIs' own error fields must agree.
    rng = random.Random(seed)
    events = []
    for k in range(120):
        issued = rng.randrange(0, 3 * 3_600_000)
        service = rng.choice(["teller", "teller", "advice"])
        ticket = f"T{k}"
        events.append((issued, step(0, "issued", ticket, service)))
        wait_ms = rng.randrange(0, 900_000)
        if rng.random() < 0.1:
            events.append((issued + wait_ms, step(0, "abandoned", ticket, service, wait_s=wait_ms / 1000)))
            continue
        counter = f"c{rng.randrange(4)}"
        events.append((issued + wait_ms, step(0, "called", ticket, service, counter=counter, wait_s=wait_ms / 1000)))
        events.append((issued + wait_ms + rng.randrange(60_000, 600_000),
                       step(0, "served", ticket, service, counter=counter)))
    events.sort(key=lambda pair: pair[0])
    kpis = QueueKpis(target_wait_s=300)
    shown: dict[str, tuple[float | None, float | None]] = {}
    errors: dict[str, list[float]] = {"total": [], "teller": [], "advice": []}
    for ts_ms, event in events:
        event = dataclasses.replace(event, ts_ms=ts_ms)
        if event.action == "issued":
            kpis.advance(ts_ms)
            now = kpis.get()
            mine = now["services"].get(event.service, {}).get("est_wait_s")
            if event.service not in now["services"]:  # a service not seen yet has no service time
                mine = None
            shown[event.ticket_id] = (mine, now["total"]["est_wait_s"])
        elif event.action == "called":
            mine, total = shown[event.ticket_id]
            if mine is not None:
                errors[event.service].append(mine - event.wait_s)
            if total is not None:
                errors["total"].append(total - event.wait_s)
        kpis.update(event)
    got = kpis.get()
    for name, kpi in [("total", got["total"]), ("teller", got["services"]["teller"]),
                      ("advice", got["services"]["advice"])]:
        errs = errors[name]
        assert kpi["est_wait_checked"] == len(errs) > 10, name
        assert kpi["est_wait_mae_s"] == pytest.approx(sum(abs(e) for e in errs) / len(errs)), name
        assert kpi["est_wait_bias_s"] == pytest.approx(sum(errs) / len(errs)), name
    again = QueueKpis.from_state(kpis.to_state(), target_wait_s=300).get()
    assert again["total"]["est_wait_mae_s"] == got["total"]["est_wait_mae_s"]
