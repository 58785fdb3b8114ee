"""The online forecast evaluation behind `footfall evaluate forecast`: any CSV of timestamped counts.

Protocol (strict, online): the buckets are taken in time order; after each
closed bucket every candidate learns it, then forecasts the next `horizon`
buckets, and the selector publishes one forecast (`operators.forecasting.forecast_select`).
A forecast is scored only when its bucket's value arrives, against that value;
gaps (buckets with no data) are never filled with zeros, never learned as data
and never scored. MASE divides each mean absolute error by the in-sample MAE of
the daily seasonal naive over the whole series (one scale per series, so the
ranking of candidates is that of their MAE).

Every candidate is scored with its own empirical intervals (the same method as
the published forecast's), so coverage is comparable across candidates.

Examples
--------
>>> day = [2.0, 10.0, 30.0, 8.0]
>>> series = Series(starts=[i * 21_600_000 for i in range(40)], values=day * 10, bucket_ms=21_600_000)
>>> result = evaluate(series, horizon=2, min_scored=4)
>>> result.scores["seasonal_naive_daily"].overall(result.scale)["mae"]
0.0
>>> result.published_models.most_common(2)  # the vertical's profile fills in while the naive warms up
[('seasonal_naive_daily', 65), ('vertical_profile', 9)]

"""

from __future__ import annotations

import csv
import datetime as dt
import math
import sys
import zoneinfo
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from footfall.operators.evaluation.forecast_metrics import HorizonScores, seasonal_naive_scale
from footfall.operators.forecasting.forecast_select import ResidualIntervals
from footfall.operators.forecasting.store_forecast import make_selector

__all__ = ["Series", "evaluate", "read_series"]

DAY_MS = 86_400_000
SELECTED = "selected"


@dataclass
class Series:
    """Buckets of a count series: `values[i]` (None: a gap) for the bucket starting at `starts[i]`."""

    starts: list[int]
    values: list[float | None]
    bucket_ms: int
    tz: str = "UTC"

    def __post_init__(self) -> None:
        if len(self.starts) != len(self.values):
            raise ValueError("starts and values must have the same length")


def _parse_ts(text: str, zone: zoneinfo.ZoneInfo) -> int:
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return round(parsed.timestamp() * 1000)


def read_series(
    path: Path, timestamp_col: str, value_col: str | None, freq_ms: int, tz: str = "UTC",
    distinct_col: str | None = None,
) -> Series:
    """Bucket a CSV into a series.

    With `value_col`, a bucket's value is the sum of that column over its rows, and
    a bucket with no row (or only empty cells) is a gap. Without it, a bucket's value
    is its number of rows (of distinct `distinct_col` values, e.g. till transactions
    from item rows), and buckets between the first and the last row with none are 0.
    Local timestamps without an offset are read in `tz`.
    """
    zone = zoneinfo.ZoneInfo(tz)
    sums: dict[int, float] = {}
    distinct: dict[int, set[str]] = {}
    counted: Counter[int] = Counter()
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in (timestamp_col, value_col, distinct_col) if c and c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: no column {missing[0]!r}; columns are {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            try:
                ts = _parse_ts(row[timestamp_col], zone)
            except ValueError:
                raise ValueError(f"{path}:{line}: {timestamp_col}={row[timestamp_col]!r} is not a timestamp") from None
            start = ts - ts % freq_ms
            if value_col is not None:
                cell = (row[value_col] or "").strip()
                if cell:
                    try:
                        sums[start] = sums.get(start, 0.0) + float(cell)
                    except ValueError:
                        raise ValueError(f"{path}:{line}: {value_col}={cell!r} is not a number") from None
            elif distinct_col is not None:
                distinct.setdefault(start, set()).add(row[distinct_col])
            else:
                counted[start] += 1
    observed = sums if value_col is not None else (
        {k: float(len(v)) for k, v in distinct.items()} if distinct_col else {k: float(n) for k, n in counted.items()})
    if not observed:
        raise ValueError(f"{path}: no values")
    first, last = min(observed), max(observed)
    starts = list(range(first, last + freq_ms, freq_ms))
    empty = None if value_col is not None else 0.0
    return Series(starts, [observed.get(s, empty) for s in starts], freq_ms, tz)


@dataclass
class EvaluationResult:
    series: Series
    horizon: int
    scale: float | None
    scores: dict[str, HorizonScores]
    common: dict[str, HorizonScores]
    published_models: Counter[str] = field(default_factory=Counter)
    forecasts: list[tuple[int, int, int, str, float, float, float, float, float]] = field(default_factory=list)


def evaluate(
    series: Series, horizon: int, holidays: Iterable[dt.date] = (), mode: str = "best", min_scored: int | None = None,
    progress: Callable[[int, int], None] | None = None, vertical: str | None = None, all_horizons: bool = False,
) -> EvaluationResult:
    """Run the online protocol over `series` (see the module docstring), with the worker's selection."""
    daily = max(1, DAY_MS // series.bucket_ms)
    selector = make_selector(series.bucket_ms, horizon, series.tz, vertical, holidays, mode=mode,
                             all_horizons=all_horizons)
    if min_scored is not None:
        selector.min_scored = min_scored
    candidates = selector.candidates
    names = [c.name for c in candidates]
    scores = {name: HorizonScores(horizon) for name in [*names, SELECTED]}
    # The same, only over the forecasts every model made: a like-for-like comparison (warm-ups differ).
    common = {name: HorizonScores(horizon) for name in [*names, SELECTED]}
    intervals = {name: ResidualIntervals(horizon) for name in names}
    result = EvaluationResult(series, horizon, seasonal_naive_scale(series.values, daily), scores, common)
    # target bucket -> [(horizon, {name: forecast}, published (value, lo80, hi80, lo95, hi95) or None)]
    pending: dict[int, list[tuple[int, dict[str, float | None], tuple[float, ...] | None]]] = {}
    total = len(series.starts)
    for i, (start, y) in enumerate(zip(series.starts, series.values, strict=True)):
        for h, by_name, published in pending.pop(start, []):
            if y is None:
                continue
            everyone = published is not None and all(f is not None for f in by_name.values())
            for name, f in by_name.items():
                if f is not None:
                    lo80, hi80, lo95, hi95 = intervals[name].interval(h, f)
                    scores[name].add(h, y, f, lo80, hi80, lo95, hi95)
                    if everyone:
                        common[name].add(h, y, f, lo80, hi80, lo95, hi95)
                    intervals[name].add(h, y - f, f)
            if published is not None:
                scores[SELECTED].add(h, y, *published)
                if everyone:
                    common[SELECTED].add(h, y, *published)
        selector.learn_one(y, start)
        forecast = selector.forecast()
        latest = selector.candidate_forecasts()
        for h in range(1, horizon + 1):
            target = start + h * series.bucket_ms
            published = None
            if forecast is not None:
                j = h - 1
                published = (forecast.values[j], forecast.lo80[j], forecast.hi80[j], forecast.lo95[j],
                             forecast.hi95[j])
                result.forecasts.append((start, target, h, forecast.models[j], *published))
                result.published_models[forecast.models[j]] += 1
            pending.setdefault(target, []).append((h, {n: latest[n][h - 1] for n in names}, published))
        if progress is not None:
            progress(i + 1, total)
    return result


# -- reports ----------------------------------------------------------------------------------------


def _iso(ts_ms: int, tz: str) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, zoneinfo.ZoneInfo(tz)).isoformat()


def series_summary(s: Series) -> dict[str, Any]:
    """What a report says of its series: buckets, gaps, first and last bucket (local time)."""
    return {
        "buckets": len(s.values),
        "gaps": sum(v is None for v in s.values),
        "first_bucket": _iso(s.starts[0], s.tz),
        "last_bucket": _iso(s.starts[-1], s.tz),
    }


def report(result: EvaluationResult, source: dict[str, Any]) -> dict[str, Any]:
    """The JSON report: per model, per horizon and overall, the scores; what was published."""
    models = {}
    for name, scores in result.scores.items():
        models[name] = {
            "overall": scores.overall(result.scale),
            "common": result.common[name].overall(result.scale),
            "per_horizon": {str(h): v for h, v in scores.result(result.scale).items()},
            "per_horizon_common": {str(h): v for h, v in result.common[name].result(result.scale).items()},
        }
    s = result.series
    return {
        "source": source,
        "bucket_s": s.bucket_ms // 1000,
        "horizon_buckets": result.horizon,
        **series_summary(s),
        "mase_scale": result.scale,
        "mase_scale_is": "in-sample MAE of the daily seasonal naive over the whole series",
        "protocol": "online: each forecast made before its value is seen, scored when its bucket arrives; "
                    "gaps never filled, learned or scored",
        "published_models": dict(result.published_models.most_common()),
        "common_is": "scored only where every model, baselines included, had a forecast",
        "models": models,
        "baselines": ["seasonal_naive_daily", "seasonal_naive_weekly"],
        "selected": SELECTED,
    }


def write_forecasts_csv(result: EvaluationResult, path: Path) -> None:
    tz = result.series.tz
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["made_at", "target_time", "horizon", "model", "forecast", "lo80", "hi80", "lo95", "hi95"])
        for made, target, h, model, value, lo80, hi80, lo95, hi95 in result.forecasts:
            out.writerow([_iso(made, tz), _iso(target, tz), h, model, f"{value:.4f}", f"{lo80:.4f}", f"{hi80:.4f}",
                          f"{lo95:.4f}", f"{hi95:.4f}"])


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def markdown_table(doc: dict[str, Any]) -> str:
    """Scores per model over the forecasts every model made (like for like), best MASE first."""
    rows = sorted(doc["models"].items(), key=lambda kv: (kv[1]["common"].get("mase") is None,
                                                         kv[1]["common"].get("mase") or 0))
    scale = _fmt(doc["mase_scale"], ".3f")
    lines = [f"Forecasts of {doc['source'].get('csv')} ({doc['buckets']} buckets of {doc['bucket_s']} s, "
             f"{doc['gaps']} gaps; horizon {doc['horizon_buckets']} buckets; MASE scale {scale})",
             "",
             "| model | n | MAE | RMSE | MASE | sMAPE % | coverage 80 % | coverage 95 % |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in rows:
        o = m["common"]
        lines.append(f"| {name} | {o.get('n', 0)} | {_fmt(o.get('mae'), '.2f')} | {_fmt(o.get('rmse'), '.2f')} | "
                     f"{_fmt(o.get('mase'), '.3f')} | {_fmt(o.get('smape'), '.1f')} | "
                     f"{_fmt(o.get('coverage80'), '.1%')} | {_fmt(o.get('coverage95'), '.1%')} |")
    return "\n".join(lines) + "\n"


def plot(result: EvaluationResult, path: Path, last_buckets: int = 14 * 48) -> bool:
    """Actual against the one-bucket-ahead published forecast with its intervals (False without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    s = result.series
    one_ahead = {target: (value, lo80, hi80, lo95, hi95)
                 for _, target, h, _, value, lo80, hi80, lo95, hi95 in result.forecasts if h == 1}
    starts = s.starts[-last_buckets:]
    times = [dt.datetime.fromtimestamp(t / 1000, zoneinfo.ZoneInfo(s.tz)) for t in starts]
    actual = s.values[len(s.starts) - len(starts):]
    fc = [one_ahead.get(t) for t in starts]
    fig, ax = plt.subplots(figsize=(14, 4.5), dpi=100)
    ax.fill_between(times, [r[3] if r else math.nan for r in fc], [r[4] if r else math.nan for r in fc],
                    color="tab:orange", alpha=0.15, label="95 % interval")
    ax.fill_between(times, [r[1] if r else math.nan for r in fc], [r[2] if r else math.nan for r in fc],
                    color="tab:orange", alpha=0.3, label="80 % interval")
    ax.plot(times, [r[0] if r else math.nan for r in fc], color="tab:orange", lw=1, label="forecast (1 bucket ahead)")
    ax.plot(times, [math.nan if v is None else v for v in actual], color="black", lw=0.8, label="actual")
    ax.set_ylabel("count per bucket")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"last {len(starts)} buckets: actual vs published forecast")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


class Progress:
    """A tqdm progress bar on stderr for long runs (updated every few seconds when not a terminal)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=self.label, unit="bucket", file=sys.stderr,
                             mininterval=0.5 if sys.stderr.isatty() else 5.0)
        self._bar.update(done - self._bar.n)
        if done >= total:
            self._bar.close()


def iter_holidays(path: Path | None) -> Iterator[dt.date]:
    """Dates of a holiday calendar: one ISO date per line (`#` comments allowed)."""
    if path is None:
        return
    for line in path.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            yield dt.date.fromisoformat(text)
