"""`footfall evaluate staffing` on a hand-made call log whose answers are worked out by hand, and on real records.

The hand-made log (one day, hours 09:00 and 10:00, UTC, fading 0 so the estimates are plain means):

    call  arrival   outcome    wait  service  agent  queued   in queue           in service
    c1    09:00:00  served        0      600  ANNA   no                          09:00:00-09:10:00
    c2    09:05:00  served        0     3300  BEN    no                          09:05:00-10:00:00
    c3    09:06:00  served      240      300  ANNA   yes      09:06:00-09:10:00  09:10:00-09:15:00
    c4    09:07:00  abandoned    60        -  -      yes      09:07:00-09:08:00
    c5    09:08:00  served      420     2760  ANNA   yes      09:08:00-09:15:00  09:15:00-10:01:00
    --    09:08:30  phantom     100        -  -      yes      (ignored)
    c7    10:30:00  served        0      100  CARL   no                          10:30:00-10:31:40
    c8    10:31:00  served       40      200  CARL   yes      10:31:00-10:31:40  10:31:40-10:35:00
    c10   10:31:20  served      220       60  CARL   yes      10:31:20-10:35:00  10:35:00-10:36:00
    c9    10:32:00  abandoned    30        -  -      yes      10:32:00-10:32:30

    09:00 [----c1----)                        ANNA
             [c2-------------------------------)  BEN (ends exactly at 10:00:00)
    queue:         [c3 c4 c5 ... 09:15)       someone waits 09:06-09:15 (540 s), 2 in service all along
    10:00  c5 ends 10:01 (after 10:00: not learned for the 10:00 interval)
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from footfall.operators.staffing import erlang
from footfall.scripts import staffingeval
from footfall.scripts.cli import main

HEADER = ("date", "arrival", "type", "priority", "outcome", "wait_s", "service_s", "server", "via_queue")
CALLS = [
    # arrival, outcome, wait_s, service_s, server, via_queue
    ("09:00:00", "served", 0, 600, "ANNA", 0),  # c1
    ("09:05:00", "served", 0, 3300, "BEN", 0),  # c2
    ("09:06:00", "served", 240, 300, "ANNA", 1),  # c3
    ("09:07:00", "abandoned", 60, 0, "NO_SERVER", 1),  # c4
    ("09:08:00", "served", 420, 2760, "ANNA", 1),  # c5
    ("09:08:30", "phantom", 100, 0, "NO_SERVER", 1),  # not a call
    ("10:30:00", "served", 0, 100, "CARL", 0),  # c7
    ("10:31:00", "served", 40, 200, "CARL", 1),  # c8
    ("10:31:20", "served", 220, 60, "CARL", 1),  # c10
    ("10:32:00", "abandoned", 30, 0, "NO_SERVER", 1),  # c9
]
DAY = "2026-03-01"
REAL = Path("/work/shared/data/bank_call_center")


def write_log(path: Path) -> Path:
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for arrival, outcome, wait, service, server, queued in CALLS:
            out.writerow((DAY, f"{DAY} {arrival}", "PS", 0, outcome, wait, service, server, queued))
    return path


def run_cli(calls: Path, out: Path, *extra: str) -> int:
    return main(["evaluate", "staffing", "--calls", str(calls), "--out", str(out), "--service-fading", "0",
                 "--patience-fading", "0", *extra])


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hand")
    assert run_cli(write_log(tmp / "calls.csv"), tmp / "out") == 0
    return tmp / "out"


def test_intervals_offered_and_actuals(hand):
    rows = read_rows(hand / "staffing.csv")
    assert [r["interval_start"] for r in rows] == [f"{DAY} 09:00:00", f"{DAY} 10:00:00"]
    nine, ten = rows
    # 09:00: c1..c5 (the phantom is not offered); c1 and c2 answered at once, c3 and c5 after 240 and 420 s
    assert (nine["offered"], nine["served"], nine["answered_in_time"], nine["abandoned"]) == ("5", "4", "2", "1")
    assert float(nine["sl_actual"]) == pytest.approx(2 / 5)
    assert float(nine["abandon_actual"]) == pytest.approx(1 / 5)
    # 10:00: c7, c8, c10, c9; only c7 (0 s) within 20 s
    assert (ten["offered"], ten["served"], ten["answered_in_time"], ten["abandoned"]) == ("4", "3", "1", "1")
    assert float(ten["sl_actual"]) == pytest.approx(1 / 4)
    assert float(ten["abandon_actual"]) == pytest.approx(1 / 4)


def test_agents_observed(hand):
    nine, ten = read_rows(hand / "staffing.csv")
    # Someone waits 09:06-09:15 (540 s): c1+c2 in service to 09:10, c3+c2 after: 2 agents all along.
    assert float(nine["agents_observed"]) == pytest.approx(2.0)
    assert float(nine["queued_share"]) == pytest.approx(540 / 3600)
    assert nine["agents_source"] == "queued"
    assert nine["distinct_servers"] == "2"  # ANNA, BEN
    assert float(nine["mean_busy_agents"]) == pytest.approx((600 + 3300 + 300 + 2700) / 3600)
    # Someone waits 10:31:00-10:35:00 (240 s): c7 then c8 in service, one at a time.
    assert float(ten["agents_observed"]) == pytest.approx(1.0)
    assert float(ten["queued_share"]) == pytest.approx(240 / 3600)
    # ANNA (c5 to 10:01) and CARL; BEN's c2 ended exactly at 10:00:00 and does not count.
    assert ten["distinct_servers"] == "2"
    assert float(ten["mean_busy_agents"]) == pytest.approx((60 + 100 + 200 + 60) / 3600)


def test_only_calls_ended_by_the_interval_start_are_learned(hand):
    nine, ten = read_rows(hand / "staffing.csv")
    # Nothing had ended by 09:00: no estimate, no prediction.
    assert nine["aht_s"] == nine["patience_s"] == nine["sl_predicted_at_observed"] == nine["model"] == ""
    # By 10:00:00: c1 (600 s), c3 (300 s) and c2 (3300 s, ended at 10:00:00 exactly); not c5 (ends 10:01).
    assert float(ten["aht_s"]) == pytest.approx((600 + 300 + 3300) / 3)  # 1400, not 1740 with c5
    # Waits c4 60 (hung up), c1 0, c3 240, c2 0 over one abandonment; not c5's 420.
    assert float(ten["patience_s"]) == pytest.approx(300.0)
    assert ten["model"] == "erlang_a"


def test_erlang_predictions_use_the_interval_figures(hand):
    _, ten = read_rows(hand / "staffing.csv")
    load = 4 * 1400 / 3600  # 4 offered calls of 1400 s in an hour
    at_one = erlang.erlang_a(load, 1, aht_s=1400, answer_s=20, patience_s=300)
    assert float(ten["sl_predicted_at_observed"]) == pytest.approx(at_one.service_level, rel=1e-5)
    assert float(ten["abandon_predicted_at_observed"]) == pytest.approx(at_one.abandon, rel=1e-5)
    at_two = erlang.erlang_a(load, 2, aht_s=1400, answer_s=20, patience_s=300)
    assert float(ten["sl_predicted_at_distinct"]) == pytest.approx(at_two.service_level, rel=1e-5)
    # 0.12 busy agents: below one agent, the prediction is the one-agent one.
    assert float(ten["sl_predicted_at_busy"]) == pytest.approx(at_one.service_level, rel=1e-5)
    advised = int(ten["agents_recommended"])
    assert erlang.erlang_a(load, advised, 1400, 20, 300).service_level >= 0.8
    assert erlang.erlang_a(load, advised - 1, 1400, 20, 300).service_level < 0.8


def test_wait_predictions(hand):
    rows = read_rows(hand / "wait_prediction.csv")
    served = [f"{DAY} {a}" for a, outcome, *_ in CALLS if outcome == "served"]
    assert len(rows) == len(served) * len(staffingeval.METHODS)
    pred = {(r["arrival"][11:], r["method"]): r for r in rows}
    for arrival in served:
        assert {m for (a, m) in pred if a == arrival[11:]} == set(staffingeval.METHODS)

    def p(arrival, method):
        text = pred[(arrival, method)]["predicted_wait_s"]
        return None if text == "" else float(text)

    # LES: the wait of the last caller to enter service before the arrival.
    assert p("09:00:00", "les") is None  # nobody has entered service yet
    assert p("09:08:00", "les") == 0.0  # c2 (direct) is the last; c3 only starts at 09:10
    assert p("10:30:00", "les") == 420.0  # c5, who entered service at 09:15 after 420 s
    assert p("10:31:20", "les") == 0.0  # c7; c8 starts at 10:31:40
    # The queue at c5's arrival: c4 hangs up at 09:08:00 exactly (ends come first): only c3 ahead.
    assert pred[("09:08:00", "les")]["queue_ahead"] == "1" and pred[("09:08:00", "les")]["in_service"] == "2"
    # No service had ended by 09:08: no service time, no queue-based prediction; the dashboard has none either.
    assert p("09:08:00", "queue_length") is None and p("09:08:00", "dashboard") is None
    # Direct calls: an agent was free.
    assert p("10:30:00", "queue_length") == p("10:30:00", "erlang_a") == 0.0
    # c8 at 10:31:00: ended by then c1, c3, c2, c5 (mean 1740 s); patience 720 / 1 = 720 s; c7 in service.
    assert p("10:31:00", "queue_length") == pytest.approx(1740.0)
    assert p("10:31:00", "erlang_a") == pytest.approx(1 / (1 / 1740 + 1 / 720), rel=1e-5)
    assert p("10:31:00", "erlang_a_offered") == pytest.approx(1740.0, rel=1e-5)
    assert p("10:31:00", "dashboard") == 0.0  # nobody waiting
    # c10 at 10:31:20: c8 ahead, c7 in service.
    assert p("10:31:20", "queue_length") == pytest.approx(2 * 1740.0)
    assert p("10:31:20", "erlang_a") == pytest.approx(1 / (1 / 1740 + 1 / 720) + 1 / (1 / 1740 + 2 / 720), rel=1e-5)
    # Dashboard: 1 waiting x mean service today (1740 s) / counters active in 30 min (CARL; ANNA last at 10:01:00).
    assert p("10:31:20", "dashboard") == pytest.approx(1740.0)
    actual = {r["arrival"][11:]: float(r["actual_wait_s"]) for r in rows}
    assert actual["10:31:20"] == 220.0 and actual["09:08:00"] == 420.0


def test_other_column_names_give_the_same_answers(tmp_path, hand):
    path = tmp_path / "renamed.csv"
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(("when", "result", "queue_s", "talk_s", "agent", "joined_queue"))
        for arrival, outcome, wait, service, server, queued in CALLS:
            result = {"served": "ANSWERED", "abandoned": "HUNG_UP", "phantom": "GHOST"}[outcome]
            out.writerow((f"{DAY}T{arrival}", result, wait, service, "-" if server == "NO_SERVER" else server, queued))
    code = run_cli(path, tmp_path / "out", "--arrival-col", "when", "--outcome-col", "result", "--wait-col",
                   "queue_s", "--service-col", "talk_s", "--server-col", "agent", "--queued-col", "joined_queue",
                   "--served-value", "ANSWERED", "--abandoned-value", "HUNG_UP", "--ignore-outcomes", "GHOST",
                   "--no-server", "-")
    assert code == 0
    mine, theirs = read_rows(tmp_path / "out" / "staffing.csv"), read_rows(hand / "staffing.csv")
    keys = ("offered", "agents_observed", "sl_actual", "abandon_actual", "aht_s", "patience_s", "distinct_servers",
            "sl_predicted_at_observed", "agents_recommended")
    assert [[r[k] for k in keys] for r in mine] == [[r[k] for k in keys] for r in theirs]


def test_missing_column_is_a_clean_error(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("arrival,outcome\n2026-03-01 09:00:00,served\n")
    assert run_cli(path, tmp_path / "out") == 2
    assert "no column" in capsys.readouterr().err


def test_erlang_a_wait_given_queue_matches_a_simulation():
    # 3 callers ahead, 2 agents busy (mean service 200 s), mean patience 100 s: the offered wait is a sum
    # of exponentials of rates 2/200 + j/100, j = 3..0; a caller is served when their own patience outlasts it.
    rng = np.random.default_rng(7)
    n = 400_000
    rates = [2 / 200 + j / 100 for j in range(4)]
    offered_wait = sum(rng.exponential(1 / r, n) for r in rates)
    patience = rng.exponential(100.0, n)
    served = offered_wait < patience
    assert staffingeval.erlang_a_wait_s(3, 2, 200, 100, served=False) == pytest.approx(offered_wait.mean(), rel=0.01)
    assert staffingeval.erlang_a_wait_s(3, 2, 200, 100) == pytest.approx(offered_wait[served].mean(), rel=0.01)


@pytest.mark.skipif(not (REAL / "calls_1999H1.csv").exists(), reason="the bank call-centre data is not here")
def test_busiest_week_of_the_real_records(tmp_path):
    # 1999-05-22 (the day before, for calls still in service at midnight) to 1999-05-29: about 11,000 calls.
    days = {f"1999-05-{d:02d}" for d in range(22, 30)}
    with open(REAL / "calls_1999H1.csv", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        raw = [row for row in reader if row[0] in days]
    path = tmp_path / "week.csv"
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(raw)
    code = main(["evaluate", "staffing", "--calls", str(path), "--tz", "Asia/Jerusalem", "--out", str(tmp_path / "o")])
    assert code == 0
    staffing = read_rows(tmp_path / "o" / "staffing.csv")
    waits = read_rows(tmp_path / "o" / "wait_prediction.csv")
    assert set(staffingeval.STAFFING_COLUMNS) <= set(staffing[0])
    assert list(waits[0])[:4] == ["arrival", "predicted_wait_s", "actual_wait_s", "method"]
    outcome = header.index("outcome")
    served = sum(row[outcome] == "served" for row in raw)
    abandoned = sum(row[outcome] == "abandoned" for row in raw)
    assert sum(int(r["offered"]) for r in staffing) == served + abandoned  # phantoms left out
    # Every served call: one row per method, and a prediction from each once any service has ended.
    assert len(waits) == served * len(staffingeval.METHODS)
    per_call: dict[tuple[str, str], set[str]] = {}
    for r in waits:
        per_call.setdefault((r["arrival"], r["actual_wait_s"]), set()).add(r["method"])
    assert all(methods == set(staffingeval.METHODS) for methods in per_call.values())
    # Blank only before the first service ended (the dashboard, restarting each day at 04:00, may also have
    # no service time in the morning's first minutes; LES none before the first service start).
    model_based = ("queue_length", "erlang_a", "erlang_a_offered")
    blank = [r for r in waits[2000 * len(staffingeval.METHODS):] if r["predicted_wait_s"] == ""
             and r["method"] in model_based]
    assert blank == []
    # Against the provider-derived hourly file: offered, answered within 20 s, abandonment, distinct agents.
    reference = {r["hour_start"]: r for r in read_rows(REAL / "busiest_week_hourly.csv")}
    by_start = {r["interval_start"]: r for r in staffing}
    checked = 0
    for start, ref in reference.items():
        if int(ref["arrivals"]) == 0:
            assert start not in by_start
            continue
        mine = by_start[start]
        assert int(mine["offered"]) == int(ref["arrivals"])
        assert float(mine["sl_actual"]) == pytest.approx(float(ref["share_answered_within_20s"]), abs=1e-4)
        assert float(mine["abandon_actual"]) == pytest.approx(float(ref["abandon_rate"]), abs=1e-4)
        assert int(mine["distinct_servers"]) == int(ref["distinct_servers_active"])
        checked += 1
    assert checked > 100
    doc = json.loads((tmp_path / "o" / "staffing_report.json").read_text())
    assert set(doc["wait_prediction"]["queued"]["methods"]) == set(staffingeval.METHODS)
    assert doc["calls"]["ignored"]["phantom"] == sum(row[outcome] == "phantom" for row in raw)
    assert math.isfinite(doc["hourly"]["erlang_all"]["sl_mae"])
    assert (tmp_path / "o" / "staffing_plot.png").stat().st_size > 10_000
