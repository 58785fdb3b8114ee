"""`footfall evaluate peers` on a small planted wide CSV: the groups, their stability, the files."""

from __future__ import annotations

import csv
import datetime as dt
import json

import numpy as np

from footfall.scripts.cli import main
from footfall.scripts.peerseval import mask_zero_runs, read_hourly

SHAPES = {"office": (8, 17), "bar": (21, 23)}


def _write_csv(path, days: int = 75) -> None:
    rng = np.random.default_rng(0)
    sensors = [f"{kind} {i}" for kind in SHAPES for i in range(3)]
    start = dt.datetime(2025, 1, 1)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["timestamp_local", "label", *sensors])
        for h in range(days * 24):
            t = start + dt.timedelta(hours=h)
            row = []
            for s in sensors:
                peaks = SHAPES[s.split()[0]]
                level = 5 + 100 * (t.hour in peaks) * (1.5 if t.weekday() < 5 else 0.3)
                row.append(str(int(rng.poisson(level))))
            if h % 50 == 0:
                row[0] = ""  # blank: missing
            writer.writerow([t.isoformat(sep=" "), f"{t:%H}:00-{t:%H}:59", *row])


def test_read_hourly_keeps_numeric_columns_and_blanks(tmp_path):
    path = tmp_path / "counts.csv"
    _write_csv(path, days=3)
    table = read_hourly(path, "timestamp_local", "UTC")
    assert table.sensors == ["office 0", "office 1", "office 2", "bar 0", "bar 1", "bar 2"]
    assert np.isnan(table.counts[0, 0]) and np.isnan(table.counts[50, 0]) and not np.isnan(table.counts[1, 0])
    assert np.all(np.diff(table.starts_ms) == 3_600_000)


def test_zero_runs_become_missing():
    counts = np.array([[0, 1], [0, 0], [0, 0], [5, 0]], dtype=float)
    masked, n = mask_zero_runs(counts, 3)
    assert n == 6 and np.isnan(masked[:3, 0]).all() and np.isnan(masked[1:, 1]).all() and masked[0, 1] == 1


def test_planted_groups_are_stable_month_to_month(tmp_path, capsys):
    path = tmp_path / "counts.csv"
    _write_csv(path)
    out = tmp_path / "out"
    assert main(["evaluate", "peers", "--counts", str(path), "--out", str(out), "--tz", "Pacific/Auckland"]) == 0
    doc = json.loads((out / "peers.json").read_text())
    assert [m["month"] for m in doc["months"]] == ["2025-01", "2025-02", "2025-03"]
    for month in doc["months"]:
        assert month["k"] == 2
        assert sorted(sorted(g["members"]) for g in month["groups"].values()) == [
            ["bar 0", "bar 1", "bar 2"], ["office 0", "office 1", "office 2"]]
    assert doc["summary"]["ari_mean"] == 1.0 and doc["summary"]["share_same_id_min"] == 1.0
    descriptions = {g["members"][0]: g["description"] for g in doc["months"][-1]["groups"].values()}
    assert descriptions["office 0"].startswith("weekday, commute peaks 8h and 17h")
    assert "evening/night" in descriptions["bar 0"]
    rows = list(csv.DictReader((out / "peers_by_month.csv").open()))
    assert len(rows) == 3 * 6
    assert "ARI month to month mean 1.0" in capsys.readouterr().out
