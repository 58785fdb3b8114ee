"""`footfall evaluate forecast` end to end on small CSVs whose right answers are known."""

from __future__ import annotations

import csv
import datetime as dt
import json

import pytest

from footfall.scripts.cli import main
from footfall.scripts.forecasteval import read_series


def write_csv(path, rows, header=("timestamp", "count")):
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(rows)


def hourly_weekly_pattern(weeks: int, skip: set[int] = frozenset()):
    start = dt.datetime(2026, 3, 2)  # a Monday, local time
    rows = []
    for i in range(weeks * 168):
        if i in skip:
            continue
        moment = start + dt.timedelta(hours=i)
        value = 0 if moment.hour < 8 or moment.hour >= 20 else 10 + moment.hour + 5 * (moment.weekday() == 5)
        rows.append((moment.isoformat(sep=" "), value))
    return rows


def test_a_missing_row_is_a_gap_and_rows_or_distinct_ids_count(tmp_path):
    path = tmp_path / "c.csv"
    write_csv(path, [("2026-03-02 00:10", 4), ("2026-03-02 00:50", 1), ("2026-03-02 02:30", 7)])
    series = read_series(path, "timestamp", "count", 3_600_000)
    assert series.values == [5.0, None, 7.0]
    write_csv(path, [("2026-03-02 00:10", "t1"), ("2026-03-02 00:50", "t1"), ("2026-03-02 00:55", "t2"),
                     ("2026-03-02 02:30", "t3")], header=("timestamp", "transaction"))
    assert read_series(path, "timestamp", None, 3_600_000, distinct_col="transaction").values == [2.0, 0.0, 1.0]
    assert read_series(path, "timestamp", None, 3_600_000).values == [3.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="no column 'nope'"):
        read_series(path, "timestamp", "nope", 3_600_000)


def test_evaluate_writes_every_output_and_scores_a_perfect_weekly_series(tmp_path):
    path = tmp_path / "weekly.csv"
    gaps = {500, 501, 502}
    write_csv(path, hourly_weekly_pattern(weeks=4, skip=gaps))
    out = tmp_path / "report"
    code = main(["evaluate", "forecast", "--csv", str(path), "--timestamp-col", "timestamp", "--value-col", "count",
                 "--freq", "1h", "--horizon-h", "6", "--out", str(out)])
    assert code == 0
    doc = json.loads((out / "forecast_report.json").read_text())
    assert doc["buckets"] == 4 * 168 and doc["gaps"] == 3 and doc["horizon_buckets"] == 6
    weekly = doc["models"]["seasonal_naive_weekly"]
    # The series repeats every week: a week-old value is exact wherever it exists.
    assert weekly["overall"]["mae"] == 0.0 and weekly["overall"]["n"] > 0
    assert set(weekly["per_horizon"]) == {str(h) for h in range(1, 7)}
    # Every published forecast is a row; none targets a gap with a score, and the file can be rescored.
    with open(out / "forecasts.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["made_at", "target_time", "horizon", "model", "forecast", "lo80", "hi80", "lo95", "hi95"]
    assert len(rows) == sum(doc["published_models"].values())
    assert all(float(r["lo95"]) <= float(r["lo80"]) <= float(r["hi80"]) <= float(r["hi95"]) for r in rows)
    assert "| selected |" in (out / "forecast_report.md").read_text()
    assert (out / "forecast_plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    write_csv(path, [("yesterday", 1)])
    code = main(["evaluate", "forecast", "--csv", str(path), "--timestamp-col", "timestamp", "--value-col", "count",
                 "--out", str(tmp_path / "o")])
    assert code == 2
    assert "'yesterday' is not a timestamp" in capsys.readouterr().err
    code = main(["evaluate", "forecast", "--csv", str(path), "--timestamp-col", "timestamp", "--value-col", "count",
                 "--freq", "7min", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "must divide a day" in capsys.readouterr().err
