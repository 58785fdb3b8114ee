"""`footfall evaluate alerts` end to end on small CSVs whose anomalies are known."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math

from footfall.scripts.alerteval import quiet_store_alerts, read_windows, run_alerts
from footfall.scripts.cli import main
from footfall.scripts.forecasteval import Series


def write_csv(path, rows, header):
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(rows)


START = dt.datetime(2026, 3, 2)  # a Monday


def hourly(weeks, burst_at, drop_day):
    """Hourly counts with a daily shape; a burst at hour `burst_at` and a day at 30 % on day `drop_day`."""
    rows = []
    for i in range(weeks * 168):
        moment = START + dt.timedelta(hours=i)
        level = 40 + 30 * math.sin(math.pi * max(0, moment.hour - 7) / 14) if 7 <= moment.hour < 21 else 4
        value = round(level + (3 if i % 3 == 0 else -2 if i % 3 == 1 else 0))
        if i == burst_at:
            value *= 8
        if i // 24 == drop_day:
            value = round(0.3 * value)
        rows.append((moment.isoformat(sep=" "), value))
    return rows


def test_end_to_end_scores_against_known_windows(tmp_path):
    burst, drop = 21 * 24 + 12, 25  # hour 12 of day 21; all of day 25 (both after the two-week warm-up)
    data = tmp_path / "counts.csv"
    write_csv(data, hourly(4, burst, drop), ("timestamp", "count"))
    labels = tmp_path / "labels.csv"
    b = START + dt.timedelta(hours=burst)
    d0, d1 = START + dt.timedelta(days=drop), START + dt.timedelta(days=drop, hours=23)
    write_csv(labels, [("x", f"{b:%Y-%m-%d %H:%M}", f"{b:%Y-%m-%d %H:%M}"),
                       ("x", f"{d0:%Y-%m-%d %H:%M}", f"{d1:%Y-%m-%d %H:%M}")], ("file", "window_start", "window_end"))
    out = tmp_path / "report"
    code = main(["evaluate", "alerts", "--csv", str(data), "--timestamp-col", "timestamp", "--value-col", "count",
                 "--labels", str(labels), "--freq", "1h", "--lead-h", "3", "--out", str(out)])
    assert code == 0
    doc = json.loads((out / "alerts_report.json").read_text())
    assert doc["buckets"] == 4 * 168 and doc["windows"] == 2 and doc["lead_buckets"] == 3
    assert set(doc["nab"]) >= {"standard", "reward_low_FP_rate", "reward_low_FN_rate", "per_window"}
    assert doc["events"]["detected_windows"] == 2 and doc["events"]["recall"] == 1.0
    assert doc["nab"]["standard"]["detected_windows"] == 2
    delays = doc["delays"]
    assert delays[0]["delay_buckets"] == 0.0  # the burst is flagged in its own bucket
    assert 0 <= delays[1]["delay_buckets"] <= 12  # the low day within half a day
    with open(out / "alerts.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["timestamp", "kind", "severity", "score", "observed", "expected_lo", "expected_hi"]
    assert len(rows) == doc["alerts"] and rows[0]["kind"] in {"arrivals_high", "arrivals_low"}
    assert "| standard |" in (out / "alerts_report.md").read_text()
    assert (out / "alerts_plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_windows_inside_the_warm_up_cap_the_recall(tmp_path):
    burst = 21 * 24 + 12
    data = tmp_path / "counts.csv"
    write_csv(data, hourly(4, burst, drop_day=99), ("timestamp", "count"))
    early = START + dt.timedelta(days=3, hours=12)  # inside the two-week warm-up: no detector set up so can see it
    b = START + dt.timedelta(hours=burst)
    labels = tmp_path / "labels.csv"
    write_csv(labels, [(f"{early:%Y-%m-%d %H:%M}", f"{early:%Y-%m-%d %H:%M}"),
                       (f"{b:%Y-%m-%d %H:%M}", f"{b:%Y-%m-%d %H:%M}")], ("window_start", "window_end"))
    out = tmp_path / "report"
    assert main(["evaluate", "alerts", "--csv", str(data), "--timestamp-col", "timestamp", "--value-col", "count",
                 "--labels", str(labels), "--freq", "1h", "--lead-h", "3", "--detector", "generic",
                 "--out", str(out)]) == 0
    doc = json.loads((out / "alerts_report.json").read_text())
    assert dt.datetime.fromisoformat(doc["judged_from"]).replace(tzinfo=None) >= START + dt.timedelta(days=14)
    assert doc["events"]["windows_after_warmup"] == 1 and doc["events"]["recall_ceiling"] == 0.5
    assert doc["events"]["recall"] <= doc["events"]["recall_ceiling"]
    assert doc["source"]["detector"] == "generic" and doc["source"]["detector_settings"]["point"] == 8.0
    assert "recall can reach at most 0.50" in (out / "alerts_report.md").read_text()


def test_labels_in_another_shape_and_bad_input(tmp_path, capsys):
    events = tmp_path / "events.csv"
    write_csv(events, [("2005-07-26", "2005-07-26 11:00:00", "2005-07-26 14:00:00", "10; event")],
              ("date", "begin_timestamp", "end_timestamp", "event_name"))
    windows = read_windows(events, "begin_timestamp", "end_timestamp", tz="America/Los_Angeles")
    start = int(dt.datetime(2005, 7, 26, 18, tzinfo=dt.UTC).timestamp() * 1000)  # 11:00 PDT
    assert windows == [(start, start + 3 * 3_600_000)]
    data = tmp_path / "c.csv"
    write_csv(data, [("2005-07-26 10:00:00", 1)], ("timestamp", "in_count"))
    code = main(["evaluate", "alerts", "--csv", str(data), "--timestamp-col", "timestamp", "--value-col", "in_count",
                 "--labels", str(events), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "no column 'window_start'" in capsys.readouterr().err


def test_protocol_forecasts_learn_the_clipped_value():
    # Six-hour buckets, a daily shape of four; one burst. The selection learns the value the watch returns,
    # so the next day's daily-naive forecast for that slot is the clipped value, not the burst.
    day = [2.0, 10.0, 30.0, 8.0]
    values = day * 40
    values[130] = 300.0
    series = Series([i * 21_600_000 for i in range(160)], values, 21_600_000)
    run = run_alerts(series, lead_ms=21_600_000, warmup_ms=4 * 21_600_000)
    assert [a.started_ms // 21_600_000 for a in run.opened] == [130]
    assert run.expected[134] is not None and run.expected[134][0] < 60  # the slot's forecast a day later
    assert run.scores[130] >= 1 and max(run.scores[:130]) < 1


def test_quiet_simulated_stores_raise_few_alerts():
    doc = quiet_store_alerts(n_stores=2, weeks=1, warmup_weeks=2, bucket_ms=3_600_000)
    assert set(doc["stores"]) == {"retail-001", "bank-002"}
    assert all(s["arrivals"] > 100 for s in doc["stores"].values())
    assert doc["max_alerts_per_store_week"] <= 1
