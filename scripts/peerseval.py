"""`footfall evaluate peers`: peer groups of sensors (or stores) by their hour-of-week shape, month by month.

Input: a wide hourly CSV, one row per hour (`--timestamp-col`, local wall-clock time or with
an offset), then one column per sensor, each treated as a store; a blank cell is missing,
not zero. Columns with a non-numeric value (labels such as `source_date`) are not sensors.
A run of `--zero-run-h` or more consecutive exact zeros in one sensor is read as an outage
(missing): a city-centre counter reporting nobody for a whole day is down, not empty.

Protocol, per calendar month (local time):

1. each sensor's `peers.profile.HourOfWeekProfile` (6 weeks, so the month whole) takes the
   month's hours; its shares are the month's shape;
2. `peers.peer_groups.PeerGroups` regroups once at the month's last day (k-means, k given or
   by silhouette; sensors with fewer than `--min-cells` of 168 cells seen are left out), with
   ids carried over from the previous month by member overlap;
3. stability: the adjusted Rand index between consecutive months' groupings (sensors grouped
   in both) and the share of those sensors that kept their group id;
4. references: each sensor's complete days (every hour present) in month m are compared with
   the median of its peers under month m-1's groups (known when the day starts; the sensor
   itself left out) and with the median of all other sensors. Two figures, each a mean
   absolute % difference `|value / median - 1|` over sensor-days: on raw day totals, and on
   level-indexed totals (the day over the sensor's mean complete day in month m-1), which asks
   whether the peers move like the sensor rather than whether they are as busy.

Writes `DIR/peers.json` (per month: groups with members and a description of the centre's
shape, k, silhouette, ARI and share staying; the summary; the reference comparison) and
`DIR/peers_by_month.csv` (month, sensor, group id, cells seen, its group's description).

Example::

    footfall evaluate peers --counts ../shared/data/auckland_pedestrians/auckland_hourly_counts.csv \\
        --tz Pacific/Auckland --out run/eval/peers
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from footfall.operators.peers.agreement import adjusted_rand_index, share_same_id
from footfall.operators.peers.compare import compare_day
from footfall.operators.peers.describe import describe_shape
from footfall.operators.peers.peer_groups import PeerGroups
from footfall.operators.peers.profile import HOUR_MS, HourOfWeekProfile

__all__ = ["HourlyTable", "evaluate", "mask_zero_runs", "read_hourly", "register", "run"]


@dataclass
class HourlyTable:
    """Hourly counts: `starts_ms` (UTC epoch ms, one per row), `sensors`, `counts` (rows x sensors, NaN missing)."""

    starts_ms: np.ndarray
    sensors: list[str]
    counts: np.ndarray


def _to_ms(text: str, zone: ZoneInfo) -> int:
    stamp = dt.datetime.fromisoformat(text.strip())
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=zone)  # fold=0: an ambiguous wall time is its first occurrence
    return int(stamp.timestamp() * 1000)


def read_hourly(path: Path, timestamp_col: str, tz: str) -> HourlyTable:
    """Read a wide hourly CSV; sensor columns are those whose non-blank cells are all numbers."""
    zone = ZoneInfo(tz)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or timestamp_col not in reader.fieldnames:
            raise ValueError(f"{path}: no column {timestamp_col!r}")
        rows = list(reader)
    columns = [c for c in reader.fieldnames if c != timestamp_col]
    sensors = []
    for column in columns:
        try:
            numbers = [float(r[column]) for r in rows if r[column].strip()]
        except ValueError:
            continue  # a label column
        if numbers:
            sensors.append(column)
    counts = np.array([[float(r[s]) if r[s].strip() else np.nan for s in sensors] for r in rows]).reshape(
        len(rows), len(sensors))
    starts = np.array([_to_ms(r[timestamp_col], zone) for r in rows], dtype=np.int64)
    order = np.argsort(starts, kind="stable")
    return HourlyTable(starts[order], sensors, counts[order])


def mask_zero_runs(counts: np.ndarray, min_run: int) -> tuple[np.ndarray, int]:
    """Runs of at least `min_run` consecutive zeros (down a column) set to NaN; returns `(counts, cells masked)`.

    >>> x = np.array([[1.0], [0.0], [0.0], [0.0], [2.0], [0.0]])
    >>> masked, n = mask_zero_runs(x, 3)
    >>> masked.ravel().tolist(), n
    ([1.0, nan, nan, nan, 2.0, 0.0], 3)

    """
    out = counts.copy()
    if min_run <= 0:
        return out, 0
    masked = 0
    for j in range(out.shape[1]):
        zero = np.concatenate([[False], out[:, j] == 0, [False]])
        edges = np.flatnonzero(np.diff(zero.astype(np.int8)))
        for start, end in zip(edges[::2], edges[1::2], strict=True):
            if end - start >= min_run:
                out[start:end, j] = np.nan
                masked += int(end - start)
    return out, masked


def _month(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _mapd(ratios: list[float]) -> float | None:
    return round(100 * float(np.mean(np.abs(np.array(ratios) - 1))), 2) if ratios else None


def evaluate(table: HourlyTable, tz: str, k: int | None = None, seed: int = 0, min_cells: int = 84,
             progress: bool = True) -> dict[str, Any]:
    """Groups per month, their stability, and the peer and all-sensor references (see the module docstring)."""
    zone = ZoneInfo(tz)
    days = [dt.datetime.fromtimestamp(ms / 1000, zone).date() for ms in table.starts_ms.tolist()]
    months: dict[str, list[int]] = {}
    for i, day in enumerate(days):
        months.setdefault(_month(day), []).append(i)
    peers = PeerGroups(k=k, seed=seed, min_cells_seen=min_cells)
    out_months: list[dict[str, Any]] = []
    skipped: list[str] = []
    rows_csv: list[dict[str, Any]] = []
    previous: dict[str, int] | None = None
    previous_level: dict[str, float] = {}
    ratios: dict[str, dict[str, list[float]]] = {"raw": {"peers": [], "all": []}, "indexed": {"peers": [], "all": []}}
    per_sensor: dict[str, dict[str, list[float]]] = {s: {"peers": [], "all": []} for s in table.sensors}
    for month, index in months.items():
        profiles = {s: HourOfWeekProfile(tz=tz, weeks=6) for s in table.sensors}
        for i in index:
            start = int(table.starts_ms[i])
            for j, s in enumerate(table.sensors):
                value = table.counts[i, j]
                profiles[s].update(start, None if np.isnan(value) else float(value), HOUR_MS)
        shares = {s: p.shares() for s, p in profiles.items()}
        cells_seen = {s: int((~np.isnan(v)).sum()) for s, v in shares.items()}
        # Complete days of the month: every hour of the local day present.
        by_day: dict[dt.date, list[int]] = {}
        for i in index:
            by_day.setdefault(days[i], []).append(i)
        totals: dict[dt.date, dict[str, float | None]] = {}
        for day, rows in by_day.items():
            block = table.counts[rows]
            complete = len(rows) >= 23
            totals[day] = {s: (float(block[:, j].sum()) if complete and not np.isnan(block[:, j]).any() else None)
                           for j, s in enumerate(table.sensors)}
        if previous:  # score month m's days against month m-1's groups and levels
            everyone = dict.fromkeys(previous, 0)
            for values in totals.values():
                indexed = {s: (v / previous_level[s] if v is not None and previous_level.get(s) else None)
                           for s, v in values.items() if s in previous}
                for kind, vals in (("raw", {s: values[s] for s in previous}), ("indexed", indexed)):
                    by_peers, by_all = compare_day(vals, previous), compare_day(vals, everyone)
                    for s, c in by_peers.items():
                        other = by_all[s]
                        if c.ratio is None or other.ratio is None:
                            continue  # compared only where both references exist
                        ratios[kind]["peers"].append(c.ratio)
                        ratios[kind]["all"].append(other.ratio)
                        if kind == "indexed":
                            per_sensor[s]["peers"].append(c.ratio)
                            per_sensor[s]["all"].append(other.ratio)
        if not peers.usable(shares):  # a month too short for any shape (a file's last few hours, say)
            skipped.append(month)
            continue
        labels = peers.update(shares, max(by_day))
        groups = {}
        for gid, members in peers.members().items():
            centre = np.mean([np.nan_to_num(shares[s]) / np.nansum(shares[s]) for s in members], axis=0)
            groups[str(gid)] = {"members": members, "description": describe_shape(centre)}
        common = sorted(set(labels) & set(previous or {}))
        ari = (adjusted_rand_index([previous[s] for s in common], [labels[s] for s in common])  # type: ignore[index]
               if previous and len(common) >= 2 else None)
        staying = share_same_id(previous, labels) if previous else None
        out_months.append({
            "month": month, "sensors_grouped": len(labels), "k": len(groups),
            "silhouette": round(peers.last.silhouette, 4) if peers.last else None,
            "ari_vs_previous": None if ari is None else round(ari, 4),
            "share_same_id": None if staying is None else round(staying, 4),
            "left_out": sorted(s for s in table.sensors if s not in labels), "groups": groups,
        })
        for s in table.sensors:
            gid = labels.get(s)
            rows_csv.append({"month": month, "sensor": s, "group": "" if gid is None else gid,
                             "cells_seen": cells_seen[s],
                             "group_description": "" if gid is None else groups[str(gid)]["description"]})
        previous = labels
        previous_level = {}
        for s in table.sensors:
            complete = [v[s] for v in totals.values() if v[s] is not None]
            previous_level[s] = float(np.mean(complete)) if complete else 0.0
        if progress:
            print(f"{month}: k={len(groups)} grouped={len(labels)}", file=sys.stderr)
    aris = [m["ari_vs_previous"] for m in out_months if m["ari_vs_previous"] is not None]
    stays = [m["share_same_id"] for m in out_months if m["share_same_id"] is not None]
    ks = [m["k"] for m in out_months]
    summary = {
        "months": len(out_months), "months_skipped": skipped,
        "k_per_month": {str(k): ks.count(k) for k in sorted(set(ks))},
        "ari_mean": round(float(np.mean(aris)), 4) if aris else None,
        "ari_min": round(float(np.min(aris)), 4) if aris else None,
        "ari_median": round(float(np.median(aris)), 4) if aris else None,
        "share_same_id_mean": round(float(np.mean(stays)), 4) if stays else None,
        "share_same_id_min": round(float(np.min(stays)), 4) if stays else None,
    }
    reference = {kind: {"sensor_days": len(r["peers"]), "mapd_peer_median_pct": _mapd(r["peers"]),
                        "mapd_all_median_pct": _mapd(r["all"])} for kind, r in ratios.items()}
    reference["indexed_per_sensor"] = {
        s: {"days": len(r["peers"]), "mapd_peer_median_pct": _mapd(r["peers"]), "mapd_all_median_pct": _mapd(r["all"])}
        for s, r in per_sensor.items()}
    better = [v for v in reference["indexed_per_sensor"].values() if v["days"]]
    reference["indexed_sensors_peer_better"] = sum(bool(v["mapd_peer_median_pct"] < v["mapd_all_median_pct"])
                                                   for v in better)
    reference["indexed_sensors_scored"] = len(better)
    return {"summary": summary, "reference": reference, "months": out_months, "rows": rows_csv}


def register(what: argparse._SubParsersAction) -> None:
    """Add `footfall evaluate peers` to the `evaluate` subcommands."""
    p = what.add_parser(
        "peers", help="group a wide hourly CSV's sensors by their hour-of-week shape, month by month",
        description="Treat each sensor column of a wide hourly CSV as a store: each calendar month, its "
        "hour-of-week profile (shares), peer groups by k-means (k given or by silhouette), ids carried over by "
        "member overlap; month-to-month stability (adjusted Rand index, share keeping its id); each sensor's "
        "days against its peer group's median and against all sensors' median.",
    )
    p.add_argument("--counts", type=Path, required=True, help="wide hourly CSV: a timestamp column, then one column "
                   "per sensor (blank = missing)")
    p.add_argument("--out", type=Path, default=Path("run/eval/peers"), help="folder for peers.json and "
                   "peers_by_month.csv (default run/eval/peers)")
    p.add_argument("--k", type=int, help="groups per month (default: chosen by silhouette over 2..6)")
    p.add_argument("--timestamp-col", default="timestamp_local", help="the time column (default timestamp_local)")
    p.add_argument("--tz", default="UTC", help="the sensors' time zone, in which naive timestamps are read and "
                   "profiles kept (default UTC: the wall clock as written)")
    p.add_argument("--zero-run-h", type=int, default=24, help="read runs of this many consecutive zero hours or more "
                   "as an outage (missing); 0 keeps every zero (default 24)")
    p.add_argument("--min-cells", type=int, default=84, help="hour-of-week cells a sensor needs seen in a month to "
                   "be grouped (default 84 of 168)")
    p.add_argument("--seed", type=int, default=0, help="k-means++ seed (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        table = read_hourly(args.counts, args.timestamp_col, args.tz)
    except (OSError, ValueError) as exc:
        print(f"footfall evaluate peers: {exc}", file=sys.stderr)
        return 2
    if args.k is not None and args.k < 1:
        print("footfall evaluate peers: --k must be at least 1", file=sys.stderr)
        return 2
    counts, masked = mask_zero_runs(table.counts, args.zero_run_h)
    table = HourlyTable(table.starts_ms, table.sensors, counts)
    print(f"{args.counts}: {len(table.starts_ms)} hours, {len(table.sensors)} sensors, {masked} zero-run cells read "
          "as missing", file=sys.stderr)
    t0 = time.monotonic()
    result = evaluate(table, args.tz, k=args.k, seed=args.seed, min_cells=args.min_cells)
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {"source": {"counts": str(args.counts), "timestamp_col": args.timestamp_col, "tz": args.tz,
                      "k": args.k, "seed": args.seed, "zero_run_h": args.zero_run_h, "min_cells": args.min_cells,
                      "zero_run_cells_masked": masked, "sensors": table.sensors},
           "summary": result["summary"], "reference": result["reference"], "months": result["months"],
           "elapsed_s": round(time.monotonic() - t0, 1)}
    (args.out / "peers.json").write_text(json.dumps(doc, indent=2) + "\n")
    with (args.out / "peers_by_month.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["month", "sensor", "group", "cells_seen", "group_description"])
        writer.writeheader()
        writer.writerows(result["rows"])
    for m in result["months"]:
        head = (f"{m['month']}  k={m['k']}  silhouette={m['silhouette']}  ARI={m['ari_vs_previous']}  "
                f"same id={m['share_same_id']}")
        print(head)
        for gid, g in m["groups"].items():
            print(f"  group {gid}: {g['description']}\n    {', '.join(g['members'])}")
        if m["left_out"]:
            print(f"  left out: {', '.join(m['left_out'])}")
    s, r = result["summary"], result["reference"]
    skipped = f" ({', '.join(s['months_skipped'])} skipped: too short)" if s["months_skipped"] else ""
    print(f"\n{s['months']} months{skipped}; k per month {s['k_per_month']}; ARI month to month mean {s['ari_mean']} "
          f"min {s['ari_min']} median {s['ari_median']}; share keeping its group id mean {s['share_same_id_mean']} "
          f"min {s['share_same_id_min']}")
    for kind in ("raw", "indexed"):
        print(f"{kind} day totals ({r[kind]['sensor_days']} sensor-days): mean abs % difference to the peer-group "
              f"median {r[kind]['mapd_peer_median_pct']}%, to the all-sensor median {r[kind]['mapd_all_median_pct']}%")
    print(f"indexed: peer median the closer reference for {r['indexed_sensors_peer_better']} of "
          f"{r['indexed_sensors_scored']} sensors")
    print(f"written: {args.out}/peers.json, peers_by_month.csv", file=sys.stderr)
    return 0
