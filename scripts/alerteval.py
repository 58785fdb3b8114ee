"""The offline alert evaluation behind `footfall evaluate alerts`: any CSV of counts against labelled windows.

Protocol (strict, online, as the worker runs it): the buckets are taken in time
order. At each bucket the `StoreWatch` judges the count against the forecast
made `lead` earlier by the worker's selection (`store_forecast.make_selector`,
whose horizon is the lead; its nearer horizons are the same forecasts), then the
selection learns the value the watch returns (the count, or clipped into its
interval while flagged), then forecasts the next buckets. No value is seen before
its forecast; labels are read only for scoring.

Scores: an alert's opening bucket is a NAB detection (rows are the buckets with a
value; `operators.evaluation.nab`), an alert's span (first to last flagged bucket) is an
event for precision and recall, and each window's delay is its first alert's
start minus its own.

Examples
--------
>>> day = [2.0, 10.0, 30.0, 8.0] * 40
>>> day[130] = 300.0  # a burst
>>> series = Series(starts=[i * 21_600_000 for i in range(160)], values=day, bucket_ms=21_600_000)
>>> result = run_alerts(series, lead_ms=21_600_000)
>>> [(a.kind, a.started_ms // 21_600_000) for a in result.opened]
[('arrivals_high', 130)]

"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import sys
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from footfall.operators.alerting.alerts import Alert
from footfall.operators.alerting.watch import StoreWatch
from footfall.operators.evaluation.nab import PROFILES, detection_delays, event_scores, nab_score
from footfall.operators.forecasting.store_forecast import make_selector
from footfall.scripts.forecasteval import Series, _parse_ts, series_summary

__all__ = ["AlertRun", "quiet_store_alerts", "read_windows", "report", "run_alerts"]

HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def read_windows(path: Path, start_col: str = "window_start", end_col: str = "window_end",
                 tz: str = "UTC") -> list[tuple[int, int]]:
    """Labelled windows `(start_ms, end_ms)` (inclusive) from a CSV; other columns are ignored."""
    zone = zoneinfo.ZoneInfo(tz)
    windows = []
    with open(path, newline="") as f:
        reader = csv.DictReader(line for line in f if not line.startswith("#"))
        missing = [c for c in (start_col, end_col) if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: no column {missing[0]!r}; columns are {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            try:
                start, end = _parse_ts(row[start_col], zone), _parse_ts(row[end_col], zone)
            except ValueError:
                raise ValueError(f"{path}:{line}: {row[start_col]!r} / {row[end_col]!r} are not timestamps") from None
            if end < start:
                raise ValueError(f"{path}:{line}: the window ends before it starts")
            windows.append((start, end))
    return windows


@dataclass
class AlertRun:
    """One series through the online protocol: the alerts and every bucket's judgement."""

    series: Series
    lead: int
    opened: list[Alert] = field(default_factory=list)
    spans: dict[str, list[int]] = field(default_factory=dict)  # alert id -> [first bucket start, last bucket end]
    changes: int = 0
    scores: list[float] = field(default_factory=list)  # per bucket, 0 for gaps and buckets without a forecast
    expected: list[tuple[float, float, float] | None] = field(default_factory=list)  # (mean, lo95, hi95)
    judged_from_ms: int | None = None  # the first bucket judged after the watch's warm-up

    def alert_spans(self) -> list[tuple[int, int]]:
        return sorted((a, b - 1) for a, b in self.spans.values())


def run_alerts(series: Series, lead_ms: int = 6 * HOUR_MS, vertical: str | None = "retail",
               holidays: Iterable[dt.date] = (), store_id: str = "store", series_name: str = "arrivals",
               progress: Callable[[int, int], None] | None = None, detector: Mapping[str, Any] | None = None,
               **watch_options: Any) -> AlertRun:
    """Run the online protocol over `series` (see the module docstring).

    `detector` holds the residual detector's parameters (`detectors.ResidualDetector`), e.g. the
    worker's `store_models.DETECTOR`; without it the watch's own (`point`, `cusum_k`, `cusum_h`).
    """
    watch = StoreWatch(store_id, series_name, series.bucket_ms, series.tz, lead_ms=lead_ms,
                       detector_settings=detector, **watch_options)
    selector = make_selector(series.bucket_ms, watch.lead, series.tz, vertical, holidays)
    run = AlertRun(series, watch.lead)
    total = len(series.starts)
    for i, (start, y) in enumerate(zip(series.starts, series.values, strict=True)):
        end = start + series.bucket_ms
        outcome = watch.learn_bucket(start, end, y)
        if run.judged_from_ms is None and watch.judged > watch.warmup:
            run.judged_from_ms = start
        run.scores.append(outcome.score)
        e = outcome.expected
        run.expected.append(None if e is None else (e.mean, e.lo95, e.hi95))
        for change in outcome.changes:
            run.changes += 1
            if change.state == "opened":
                run.opened.append(change)
                run.spans[change.alert_id] = [change.started_ms, change.bucket_end_ms]
            elif change.alert_id in run.spans:
                run.spans[change.alert_id][1] = max(run.spans[change.alert_id][1], change.bucket_end_ms)
        selector.learn_one(outcome.learn_value, start)
        forecast = selector.forecast()
        if forecast is not None:
            watch.note_forecast(forecast)
        if progress is not None:
            progress(i + 1, total)
    return run


def _iso(ts_ms: int, tz: str) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, zoneinfo.ZoneInfo(tz)).isoformat()


def report(run: AlertRun, windows: Sequence[tuple[int, int]], source: dict[str, Any]) -> dict[str, Any]:
    """The JSON report: NAB scores (three profiles), event-level scores, delays per window, alert counts."""
    s = run.series
    rows = [t for t, v in zip(s.starts, s.values, strict=True) if v is not None]
    row_set = set(rows)
    detections = sorted({a.started_ms for a in run.opened if a.started_ms in row_set})
    scored = [w for w in windows if any(w[0] <= t <= w[1] for t in rows)]
    nab = {}
    for profile in PROFILES:
        result = nab_score(rows, scored, detections, profile=profile)
        nab[profile] = result.summary()
        if profile == "standard":
            nab["per_window"] = [{"start": _iso(w.start, s.tz), "end": _iso(w.end, s.tz),
                                  "first_detection": None if w.detected_at is None else _iso(w.detected_at, s.tz),
                                  "credit": w.credit} for w in result.windows]
    spans = run.alert_spans()
    events = event_scores(spans, windows).summary()
    # Windows over before the warm-up ended cannot be detected: the recall no detector set up like
    # this one can pass.
    judged = [w for w in windows if run.judged_from_ms is not None and w[1] >= run.judged_from_ms]
    events["windows_after_warmup"] = len(judged)
    events["recall_ceiling"] = len(judged) / len(windows) if windows else None
    delays = []
    for d in detection_delays(spans, windows, s.bucket_ms):
        delays.append({"window_start": _iso(int(d["window_start"] or 0), s.tz),  # type: ignore[arg-type]
                       "window_end": _iso(int(d["window_end"] or 0), s.tz),  # type: ignore[arg-type]
                       "first_alert": None if d["first_alert"] is None else _iso(int(d["first_alert"]), s.tz),
                       "delay_ms": d["delay_ms"], "delay_buckets": d["delay_buckets"]})
    weeks = (s.starts[-1] - s.starts[0] + s.bucket_ms) / (7 * DAY_MS)
    by_kind: dict[str, int] = {}
    for a in run.opened:
        by_kind[a.kind] = by_kind.get(a.kind, 0) + 1
    return {
        "source": source,
        "bucket_s": s.bucket_ms // 1000,
        "lead_buckets": run.lead,
        **series_summary(s),
        "protocol": "online: each bucket judged against the forecast made lead buckets before it, then learned "
                    "(clipped into its 95 % interval while flagged); labels used only for scoring",
        "windows": len(windows),
        "judged_from": None if run.judged_from_ms is None else _iso(run.judged_from_ms, s.tz),
        "alerts": len(run.opened),
        "alerts_by_kind": by_kind,
        "alerts_per_week": len(run.opened) / weeks if weeks else None,
        "alert_changes": run.changes,
        "nab": nab,
        "nab_rows": len(rows),
        "nab_detections": len(detections),
        "events": events,
        "delays": delays,
    }


def write_alerts_csv(run: AlertRun, path: Path) -> None:
    tz = run.series.tz
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["timestamp", "kind", "severity", "score", "observed", "expected_lo", "expected_hi"])
        for a in run.opened:
            out.writerow([_iso(a.started_ms, tz), a.kind, a.severity, f"{a.score:.3f}",
                          "" if a.observed is None else f"{a.observed:g}",
                          "" if a.expected_lo is None else f"{a.expected_lo:.1f}",
                          "" if a.expected_hi is None else f"{a.expected_hi:.1f}"])


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def markdown_summary(doc: dict[str, Any]) -> str:
    """The report in a few lines and one table per score family."""
    lines = [f"Alerts on {doc['source'].get('csv')} ({doc['buckets']} buckets of {doc['bucket_s']} s, "
             f"{doc['gaps']} gaps; judged against the forecast made {doc['lead_buckets']} buckets earlier)", "",
             f"{doc['alerts']} alerts ({_fmt(doc['alerts_per_week'], '.2f')} per week) against {doc['windows']} "
             "labelled windows.", "",
             "| NAB profile | raw | normalised | windows detected | false positives |",
             "|---|---:|---:|---:|---:|"]
    for profile in PROFILES:
        n = doc["nab"][profile]
        lines.append(f"| {profile} | {n['raw']:.3f} | {n['normalized']:.1f} | {n['detected_windows']}/{n['windows']} "
                     f"| {n['false_positives']} |")
    e = doc["events"]
    lines += ["", "| events | alerts | hits | false | windows detected | precision | recall | F1 |",
              "|---|---:|---:|---:|---:|---:|---:|---:|",
              f"| all | {e['alerts']} | {e['hits']} | {e['false_alerts']} | {e['detected_windows']}/{e['windows']} | "
              f"{_fmt(e['precision'], '.2f')} | {_fmt(e['recall'], '.2f')} | {_fmt(e['f1'], '.2f')} |", "",
              f"{e['windows_after_warmup']} of {e['windows']} windows end after the warm-up: recall can reach at "
              f"most {_fmt(e['recall_ceiling'], '.2f')}.", "",
              "| window | first alert | delay (buckets) |", "|---|---|---:|"]
    for d in doc["delays"]:
        lines.append(f"| {d['window_start'][:16]} - {d['window_end'][:16]} | "
                     f"{'missed' if d['first_alert'] is None else d['first_alert'][:16]} | "
                     f"{_fmt(d['delay_buckets'], '.1f')} |")
    return "\n".join(lines) + "\n"


def plot(run: AlertRun, windows: Sequence[tuple[int, int]], path: Path) -> bool:
    """The series with the labelled windows shaded and the alerts marked (False without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    s = run.series
    zone = zoneinfo.ZoneInfo(s.tz)
    times = [dt.datetime.fromtimestamp(t / 1000, zone) for t in s.starts]
    fig, ax = plt.subplots(figsize=(16, 5), dpi=100)
    ax.plot(times, [math.nan if v is None else v for v in s.values], color="black", lw=0.5, label="count")
    hi = [math.nan if e is None else e[2] for e in run.expected]
    lo = [math.nan if e is None else e[1] for e in run.expected]
    ax.fill_between(times, lo, hi, color="tab:blue", alpha=0.15, lw=0, label="95 % interval (forecast)")
    for i, (a, b) in enumerate(windows):
        ax.axvspan(dt.datetime.fromtimestamp(a / 1000, zone), dt.datetime.fromtimestamp(b / 1000, zone),
                   color="tab:orange", alpha=0.25, lw=0, label="labelled window" if i == 0 else None)
    index = {t: i for i, t in enumerate(s.starts)}
    for i, alert in enumerate(run.opened):
        j = index.get(alert.started_ms)
        if j is None or s.values[j] is None:
            continue
        color = {"critical": "tab:red", "warning": "tab:purple"}.get(alert.severity, "tab:gray")
        ax.plot([times[j]], [s.values[j]], marker="v", color=color, ms=7, ls="none",
                label="alert opened" if i == 0 else None)
    ax.set_ylabel("count per bucket")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"{len(run.opened)} alerts, {len(windows)} labelled windows")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def quiet_store_alerts(n_stores: int = 6, weeks: int = 4, seed: int = 11, bucket_ms: int = 1_800_000,
                       start_ms: int = 1_767_571_200_000, warmup_weeks: int = 2,
                       **watch_options: Any) -> dict[str, Any]:
    """False alerts on quiet simulated stores: arrivals per bucket, alerts per store-week after the warm-up.

    Each store gets `warmup_weeks + weeks` of normal traffic; alerts are counted
    over the last `weeks` (the watch does not alert while warming up). The
    simulator (`scripts.simulation`) draws arrivals as a Poisson process
    following each store's opening hours, daily shape and weekday factors, with
    no injected anomaly: every alert is a false one.
    """
    from footfall.scripts.simulation import generate, make_stores

    stores = make_stores(n_stores, seed=seed)
    end_ms = start_ms + (warmup_weeks + weeks) * 7 * DAY_MS
    watch_options.setdefault("warmup_ms", warmup_weeks * 7 * DAY_MS)
    counts: dict[str, dict[int, float]] = {s.store_id: {} for s in stores}
    for message in generate(stores, start_ms=start_ms, end_ms=end_ms, seed=seed, chunk_ms=DAY_MS):
        for event in _events(message.payload):
            bucket = _arrival_bucket(event, bucket_ms)
            if bucket is not None:
                store = counts[event["store_id"]]
                store[bucket[0]] = store.get(bucket[0], 0.0) + bucket[1]
    per_store = {}
    for store in stores:
        starts = list(range(start_ms - start_ms % bucket_ms, end_ms, bucket_ms))
        series = Series(starts, [counts[store.store_id].get(t, 0.0) for t in starts], bucket_ms, store.timezone)
        run = run_alerts(series, vertical=store.vertical, store_id=store.store_id, **watch_options)
        per_store[store.store_id] = {"alerts": len(run.opened), "per_week": len(run.opened) / weeks,
                                     "kinds": sorted({a.kind for a in run.opened}),
                                     "arrivals": sum(series.values)}  # type: ignore[arg-type]
    worst = max(v["per_week"] for v in per_store.values())
    mean = sum(v["per_week"] for v in per_store.values()) / len(per_store)
    return {"stores": per_store, "weeks": weeks, "bucket_s": bucket_ms // 1000, "seed": seed,
            "warmup_weeks": warmup_weeks, "mean_alerts_per_store_week": mean, "max_alerts_per_store_week": worst}


def _events(payload: bytes) -> list[dict[str, Any]]:
    import orjson

    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return []
    items = data if isinstance(data, list) else [data]
    return [e for e in items if isinstance(e, dict)]


def _arrival_bucket(event: dict[str, Any], bucket_ms: int) -> tuple[int, float] | None:
    """`(bucket start, arrivals)` of a door `in` (or interval `count_in`) or a visit `arrive` event."""
    kind = event.get("kind")
    if kind == "door":
        n = 1.0 if event.get("direction") == "in" else float(event.get("count_in") or 0)
    elif kind == "visit":
        n = 1.0 if event.get("status", event.get("action")) == "arrive" else 0.0
    else:
        return None
    ts = event.get("ts")
    if n <= 0 or ts is None:
        return None
    ts_ms = ts if isinstance(ts, int) else _parse_ts(str(ts), zoneinfo.ZoneInfo("UTC"))
    return ts_ms - ts_ms % bucket_ms, n


def main(argv: list[str] | None = None) -> int:
    """`python -m footfall.scripts.alerteval --stores 6 --weeks 4`: false alerts on quiet simulated stores."""
    parser = argparse.ArgumentParser(description="False alerts of StoreWatch on quiet simulated stores "
                                     "(normal traffic only, so every alert is false).")
    parser.add_argument("--stores", type=int, default=6, help="simulated stores (default 6)")
    parser.add_argument("--weeks", type=int, default=4, help="weeks of traffic per store (default 4)")
    parser.add_argument("--seed", type=int, default=11, help="simulation seed (default 11)")
    parser.add_argument("--freq-min", type=int, default=30, help="bucket length in minutes (default 30)")
    args = parser.parse_args(argv)
    doc = quiet_store_alerts(args.stores, args.weeks, args.seed, args.freq_min * 60_000)
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
