"""CSV replay: events carry exactly the file's counts, gaps stay gaps, local times become the right UTC."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import zoneinfo
from pathlib import Path

import orjson
import pytest

from footfall.schemas import Limits, decode_message
from footfall.scripts import cli
from footfall.scripts.replay import (
    ReplayStats,
    infer_interval_s,
    local_to_utc_ms,
    rows_to_events,
    store_ids_for,
    transactions_to_events,
)
from tests import SHARED_DATA

DATA = SHARED_DATA
CALIT2 = DATA / "calit2" / "calit2_counts.csv"
BANK_CALLS = DATA / "bank_calls" / "bank_calls_5min.csv"
AUCKLAND = DATA / "auckland_pedestrians" / "auckland_hourly_counts.csv"
BREAD = DATA / "bread_basket" / "bread_basket_transactions.csv"
NYC_TAXI = DATA / "nab_nyc_taxi" / "nyc_taxi.csv"

needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared data sets not present")


def read_rows(path: Path, limit: int | None = None) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(itertools.islice(csv.DictReader(f), limit))


def utc(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp() * 1000)


def all_valid(events) -> bool:
    limits = Limits(min_ts_ms=0, max_future_ms=0)
    return all(
        not decode_message(orjson.dumps(e.event), now_ms=2_000_000_000_000, limits=limits).rejects for e in events
    )


# -- totals against the files ------------------------------------------------------------------


@needs_data
def test_calit2_events_carry_the_files_in_and_out_totals():
    rows = read_rows(CALIT2)
    stats = ReplayStats()
    events = list(rows_to_events(rows, timestamp_col="timestamp", value_cols=["in_count"], out_col="out_count",
                                 store_id="calit2", interval_s=1800, timezone="America/Los_Angeles", stats=stats))
    assert len(events) == sum(1 for r in rows if r["in_count"].strip())
    assert sum(e.event["count_in"] for e in events) == sum(int(r["in_count"]) for r in rows)
    assert sum(e.event["count_out"] for e in events) == sum(int(r["out_count"]) for r in rows)
    assert (stats.rows, stats.events, stats.count_in) == (len(rows), len(events), sum(int(r["in_count"]) for r in rows))
    assert len({e.event["event_id"] for e in events}) == len(events)
    assert all_valid(events[:500])


@needs_data
def test_bank_calls_events_carry_the_files_total():
    rows = read_rows(BANK_CALLS)
    events = list(rows_to_events(rows, timestamp_col="timestamp_local", value_cols=["calls"], store_id="bank-calls",
                                 interval_s=300, vertical="bank"))
    assert len(events) == len(rows)
    assert sum(e.event["count_in"] for e in events) == sum(int(r["calls"]) for r in rows)
    assert {e.event["count_out"] for e in events} == {0}
    # The first slot: 07:00 bank clock, read as UTC (the default zone).
    assert events[0].event["ts"] == "2003-03-03T07:00:00Z"


@needs_data
def test_auckland_sensors_become_one_store_each_and_empty_cells_are_skipped():
    rows = read_rows(AUCKLAND, limit=30_000)  # up to 2022-06: some sensors are still empty
    columns = ["45 Queen Street", "107 Quay Street", "188 Quay Street Lower Albert (EW)", "150 K Road"]
    stats = ReplayStats()
    events = list(rows_to_events(rows, timestamp_col="timestamp_local", value_cols=columns, store_id="akl",
                                 interval_s=3600, timezone="Pacific/Auckland", stats=stats))
    ids = store_ids_for(columns, "akl")
    for column, store_id in zip(columns, ids, strict=True):
        mine = [e for e in events if e.store_id == store_id]
        filled = [r[column] for r in rows if r[column].strip()]
        assert len(mine) == len(filled)
        assert sum(e.event["count_in"] for e in mine) == sum(int(v) for v in filled)
    assert stats.empty_cells == sum(1 for r in rows for c in columns if not r[c].strip()) > 0
    assert "akl-188-quay-street-lower-albert-ew" in ids


@needs_data
def test_bread_basket_transactions_become_one_pos_event_each():
    rows = read_rows(BREAD)
    stats = ReplayStats()
    events = list(transactions_to_events(rows, timestamp_col="timestamp_local", id_col="transaction",
                                         store_id="bread-basket", timezone="Europe/London", stats=stats))
    lines_per_tx: dict[str, int] = {}
    for r in rows:
        lines_per_tx[r["transaction"]] = lines_per_tx.get(r["transaction"], 0) + 1
    assert len(events) == len(lines_per_tx)
    assert {e.event["transaction_id"]: e.event["items"] for e in events} == lines_per_tx
    assert stats.items == len(rows)
    assert all(e.event["amount"] == 0.0 and e.event["kind"] == "pos" for e in events)
    assert all_valid(events[:500])


# -- gaps and bad cells ------------------------------------------------------------------------


def test_gaps_stay_gaps(tmp_path: Path):
    path = tmp_path / "gaps.csv"
    path.write_text(
        "when,in,out\n"
        "2024-05-01 10:00:00,4,1\n"
        "2024-05-01 10:15:00,,2\n"      # no count in: skipped
        "2024-05-01 10:30:00,6,\n"      # no count out: 0
        "2024-05-01 10:45:00,NA,0\n"    # a 'missing' marker counts as empty
        "2024-05-01 11:00:00,0,0\n"     # a real zero is kept
    )
    stats = ReplayStats()
    events = list(rows_to_events(read_rows(path), timestamp_col="when", value_cols=["in"], out_col="out",
                                 store_id="shop", interval_s=900, stats=stats))
    assert [(e.event["event_id"], e.event["count_in"], e.event["count_out"]) for e in events] == [
        ("shop-1", 4, 1), ("shop-3", 6, 0), ("shop-5", 0, 0),
    ]
    assert (stats.rows, stats.events, stats.empty_cells, stats.bad_values) == (5, 3, 2, 0)


def test_bad_cells_are_counted_not_fatal(tmp_path: Path):
    rows = [
        {"t": "2024-05-01 10:00", "n": "abc"},
        {"t": "2024-05-01 10:15", "n": "-3"},
        {"t": "2024-05-01 10:30", "n": "2.5"},
        {"t": "yesterday", "n": "3"},
        {"t": "2024-05-01 11:00", "n": "7.0"},
    ]
    stats = ReplayStats()
    events = list(rows_to_events(rows, timestamp_col="t", value_cols=["n"], store_id="s", interval_s=900, stats=stats))
    assert [e.event["count_in"] for e in events] == [7]
    assert (stats.bad_values, stats.bad_timestamps) == (3, 1)


# -- time zones --------------------------------------------------------------------------------


@pytest.mark.parametrize("zone, local, expected_utc", [
    # London, clocks forward at 01:00 GMT on 2017-03-26 (01:00-02:00 local does not exist).
    ("Europe/London", "2017-03-26 00:30:00", "2017-03-26 00:30"),
    ("Europe/London", "2017-03-26 01:00:00", "2017-03-26 01:00"),  # does not exist: fold=0 reads it as GMT
    ("Europe/London", "2017-03-26 01:30:00", "2017-03-26 01:30"),  # idem
    ("Europe/London", "2017-03-26 02:00:00", "2017-03-26 01:00"),  # BST: UTC+1
    ("Europe/London", "2017-03-26 02:30:00", "2017-03-26 01:30"),
    # London, clocks back at 01:00 GMT on 2017-10-29 (01:00-02:00 local happens twice).
    ("Europe/London", "2017-10-29 00:30:00", "2017-10-28 23:30"),
    ("Europe/London", "2017-10-29 01:30:00", "2017-10-29 00:30"),  # ambiguous: fold=0 is the first, BST
    ("Europe/London", "2017-10-29 02:30:00", "2017-10-29 02:30"),
    # Auckland, clocks forward at 02:00 NZST on 2019-09-29 (NZST UTC+12 -> NZDT UTC+13).
    ("Pacific/Auckland", "2019-09-29 01:00:00", "2019-09-28 13:00"),
    ("Pacific/Auckland", "2019-09-29 02:00:00", "2019-09-28 14:00"),  # does not exist: read as NZST
    ("Pacific/Auckland", "2019-09-29 03:00:00", "2019-09-28 14:00"),
    # Auckland, clocks back at 03:00 NZDT on 2019-04-07.
    ("Pacific/Auckland", "2019-04-07 02:30:00", "2019-04-06 13:30"),  # ambiguous: first, NZDT
    ("Pacific/Auckland", "2019-04-07 03:30:00", "2019-04-06 15:30"),
    # An explicit offset wins over the zone.
    ("Pacific/Auckland", "2019-04-07 03:30:00+00:00", "2019-04-07 03:30"),
])
def test_local_times_become_utc_on_daylight_saving_days(zone, local, expected_utc):
    assert local_to_utc_ms(local, zoneinfo.ZoneInfo(zone)) == utc(expected_utc)


def test_replayed_events_on_a_dst_day_carry_utc_timestamps():
    rows = [{"t": f"2017-03-26 0{h}:00:00", "n": "1"} for h in range(4)]
    events = list(rows_to_events(rows, timestamp_col="t", value_cols=["n"], store_id="s", interval_s=3600,
                                 timezone="Europe/London"))
    assert [e.event["ts"] for e in events] == [
        "2017-03-26T00:00:00Z", "2017-03-26T01:00:00Z", "2017-03-26T01:00:00Z", "2017-03-26T02:00:00Z",
    ]


def test_timestamps_that_end_the_interval_are_moved_to_its_start():
    rows = [{"t": "2005-07-24 00:30:00", "n": "2"}]
    [event] = rows_to_events(rows, timestamp_col="t", value_cols=["n"], store_id="s", interval_s=1800,
                             timezone="America/Los_Angeles", timestamp_marks="end")
    assert event.event["ts"] == "2005-07-24T07:00:00Z"  # 00:00 PDT = 07:00 UTC


# -- interval inference ------------------------------------------------------------------------


@needs_data
@pytest.mark.parametrize("path, column, expected_s", [
    (CALIT2, "timestamp", 1800),
    (BANK_CALLS, "timestamp_local", 300),     # nights and weekends missing: still the 5-minute step
    (AUCKLAND, "timestamp_local", 3600),
    (NYC_TAXI, "timestamp", 1800),
])
def test_interval_is_the_most_common_step_of_the_file(path, column, expected_s):
    assert infer_interval_s(r[column] for r in read_rows(path, limit=10_000)) == expected_s


def test_interval_inference_ignores_gaps_and_ties_go_to_the_shorter_step():
    assert infer_interval_s(["2024-01-01 00:00", "2024-01-01 00:10", "2024-01-01 00:20", "2024-01-01 05:00",
                             "2024-01-01 05:10"]) == 600
    assert infer_interval_s(["2024-01-01 00:00", "2024-01-01 00:05", "2024-01-01 00:15"]) == 300
    with pytest.raises(ValueError):
        infer_interval_s(["2024-01-01 00:00"])


# -- store ids and the command line ------------------------------------------------------------


def test_store_ids_stay_valid_and_distinct():
    long = ["A" * 80 + " one", "A" * 80 + " two"]
    ids = store_ids_for(long, "prefix")
    assert len(set(ids)) == 2 and all(len(i) <= 64 for i in ids)
    with pytest.raises(ValueError):
        store_ids_for(["Queen St", "queen-st"], "akl")


def test_cli_dry_run_prints_one_message_per_batch(tmp_path: Path, capsysbinary):
    path = tmp_path / "counts.csv"
    path.write_text("ts,a,b\n" + "".join(f"2024-05-01 10:{m:02d}:00,{m},{'' if m % 3 else m}\n" for m in range(10)))
    code = cli.main(["replay", "--csv", str(path), "--timestamp-col", "ts", "--value-col", "a", "--value-col", "b",
                     "--store-id", "shop", "--batch", "3", "--dry-run", "--no-progress"])
    assert code == 0
    lines = capsysbinary.readouterr().out.splitlines()
    batches = [(key.decode(), orjson.loads(payload)) for key, payload in (line.split(b"\t", 1) for line in lines)]
    per_store = {key: [e for k, batch in batches if k == key for e in batch] for key, _ in batches}
    assert {k: len(v) for k, v in per_store.items()} == {"shop-a": 10, "shop-b": 4}
    assert sum(e["count_in"] for e in per_store["shop-a"]) == sum(range(10))
    assert all(len(batch) <= 3 for _, batch in batches)
    assert {e["interval_s"] for v in per_store.values() for e in v} == {60}
