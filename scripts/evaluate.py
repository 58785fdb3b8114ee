"""`footfall evaluate forecast`: footfall's forecasters, online, on any CSV of timestamped counts.

Writes `DIR/forecast_report.json` (per model and horizon: mae, rmse, mase, smape,
coverage80, coverage95), `DIR/forecasts.csv` (every published forecast, so anyone
can rescore it), `DIR/forecast_report.md` (the overall table) and
`DIR/forecast_plot.png` (actual against forecast with intervals). The protocol is
in `scripts/forecasteval.py`.

Examples
--------
::

    footfall evaluate forecast --csv ../shared/data/calit2/calit2_counts.csv \\
        --timestamp-col timestamp --value-col in_count --freq 30min --out run/eval/calit2
    footfall evaluate forecast --csv ../shared/data/bread_basket/bread_basket_transactions.csv \\
        --timestamp-col timestamp_local --count-distinct transaction --freq 1h --out run/eval/bread
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["parse_freq_ms", "register", "run"]

_FREQ = re.compile(r"(\d+)\s*(min|m|h|s)")


def parse_freq_ms(text: str) -> int:
    """`30min`, `1h`, `900s` -> milliseconds; the bucket must divide a day.

    >>> parse_freq_ms("30min"), parse_freq_ms("1h"), parse_freq_ms("900s")
    (1800000, 3600000, 900000)

    """
    match = _FREQ.fullmatch(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r}: expected a length such as 15min, 30min, 1h")
    n, unit = int(match.group(1)), match.group(2)
    ms = n * {"s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000}[unit]
    if ms <= 0 or 86_400_000 % ms:
        raise ValueError(f"{text!r}: the bucket must divide a day")
    return ms


def _add_series_args(parser: argparse.ArgumentParser) -> None:
    """The CSV and how its rows become counts per bucket: the same for every evaluation."""
    parser.add_argument("--csv", type=Path, required=True, help="the CSV file")
    parser.add_argument("--timestamp-col", required=True, help="column with the time (ISO-8601; local time unless "
                        "it has an offset)")
    value = parser.add_mutually_exclusive_group(required=True)
    value.add_argument("--value-col", help="column with the count (summed per bucket; no row = a gap)")
    value.add_argument("--count-rows", action="store_true", help="count rows per bucket (no row = 0)")
    value.add_argument("--count-distinct", metavar="COL", help="count distinct values of COL per bucket (no row = 0)")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("evaluate", help="score footfall's forecasters and alerts on a CSV",
                            description="Online evaluation of footfall's operators on any CSV.")
    what = parser.add_subparsers(dest="what", metavar="WHAT")
    what.required = True
    fc = what.add_parser(
        "forecast", help="forecast a CSV's counts online and score every model",
        description="Bucket a CSV of timestamped counts, run every forecaster and the online selection one bucket "
        "at a time (each forecast made before its value is seen), and score them per horizon against the "
        "seasonal-naive baselines. Gaps stay gaps.",
    )
    _add_series_args(fc)
    fc.add_argument("--freq", default="30min", help="bucket length: 15min, 30min, 1h ... (default 30min)")
    fc.add_argument("--horizon-h", type=float, default=24.0, help="hours ahead to forecast (default 24)")
    fc.add_argument("--tz", default="UTC", help="time zone of timestamps without an offset (default UTC)")
    fc.add_argument("--holidays", type=Path, help="file of public holidays, one ISO date per line")
    fc.add_argument("--mode", choices=("best", "blend"), default="best",
                    help="publish the best candidate or an error-weighted blend (default best)")
    fc.add_argument("--vertical", choices=("retail", "bank", "telecom"), default="retail",
                    help="whose hour-of-week profile the cold-start candidate uses (default retail)")
    fc.add_argument("--replay", action="store_true",
                    help="instead: replay the series through the real stack (FOOTFALL_BROKER, FOOTFALL_REDIS_URL) "
                    "and check that the worker's published forecasts equal the offline ones")
    fc.add_argument("--all-horizons", action="store_true",
                    help="score every horizon, not only the log-spaced ones the worker scores")
    fc.add_argument("--out", type=Path, required=True, help="folder for the report, forecasts, table and plot")
    fc.set_defaults(func=run)
    _register_alerts(what)
    from footfall.scripts.staffingeval import register as register_staffing

    register_staffing(what)
    from footfall.scripts.segmentseval import register as register_segments

    register_segments(what)
    from footfall.scripts.peerseval import register as register_peers

    register_peers(what)


def run(args: argparse.Namespace) -> int:
    from footfall.scripts.forecasteval import (
        Progress,
        evaluate,
        iter_holidays,
        markdown_table,
        plot,
        read_series,
        report,
        write_forecasts_csv,
    )

    try:
        freq_ms = parse_freq_ms(args.freq)
        series = read_series(args.csv, args.timestamp_col, args.value_col, freq_ms, tz=args.tz,
                             distinct_col=args.count_distinct)
        holidays = list(iter_holidays(args.holidays))
    except (OSError, ValueError) as exc:
        print(f"footfall evaluate forecast: {exc}", file=sys.stderr)
        return 2
    horizon = max(1, round(args.horizon_h * 3_600_000 / freq_ms))
    if args.replay:
        return _run_replay(args, series, freq_ms)
    print(f"{args.csv}: {len(series.values)} buckets of {args.freq} ({sum(v is None for v in series.values)} gaps), "
          f"horizon {horizon} buckets", file=sys.stderr)
    t0 = time.monotonic()
    result = evaluate(series, horizon, holidays, mode=args.mode, progress=Progress("forecasting"),
                      vertical=args.vertical, all_horizons=args.all_horizons)
    args.out.mkdir(parents=True, exist_ok=True)
    source: dict[str, Any] = {"csv": str(args.csv), "timestamp_col": args.timestamp_col,
                              "value_col": args.value_col, "count_rows": args.count_rows,
                              "count_distinct": args.count_distinct, "freq": args.freq, "tz": args.tz,
                              "mode": args.mode, "holidays": len(holidays), "vertical": args.vertical,
                              "scored_horizons": "all" if args.all_horizons else "log-spaced"}
    doc = report(result, source)
    doc["elapsed_s"] = round(time.monotonic() - t0, 1)
    (args.out / "forecast_report.json").write_text(json.dumps(doc, indent=2) + "\n")
    write_forecasts_csv(result, args.out / "forecasts.csv")
    table = markdown_table(doc)
    (args.out / "forecast_report.md").write_text(table)
    plotted = plot(result, args.out / "forecast_plot.png", last_buckets=14 * 86_400_000 // freq_ms)
    print(table)
    print(f"written: {args.out}/forecast_report.json, forecasts.csv, forecast_report.md"
          + (", forecast_plot.png" if plotted else " (no plot: matplotlib is not installed)"), file=sys.stderr)
    return 0


def _run_replay(args: argparse.Namespace, series: Any, freq_ms: int) -> int:
    from footfall.scripts.forecastreplay import run_replay

    try:
        comparison = run_replay(series.starts, series.values, freq_ms, args.horizon_h, args.tz, args.vertical,
                                args.holidays, args.out)
    except Exception as exc:  # the stack, the worker or the data: say which, no traceback
        print(f"footfall evaluate forecast --replay: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    doc = {"source": {"csv": str(args.csv), "value_col": args.value_col, "freq": args.freq, "tz": args.tz,
                      "vertical": args.vertical, "horizon_h": args.horizon_h},
           "comparison": comparison.summary()}
    (args.out / "replay_report.json").write_text(json.dumps(doc, indent=2) + "\n")
    verdict = "equal" if comparison.ok else "NOT equal"
    print(f"{comparison.compared} of {comparison.offline} offline forecasts compared with the published ones: "
          f"{comparison.equal} equal, {len(comparison.missing)} never published, largest difference "
          f"{comparison.max_abs_diff:.2g}: {verdict} (report: {args.out}/replay_report.json)")
    return 0 if comparison.ok else 1


def _register_alerts(what: argparse._SubParsersAction) -> None:
    al = what.add_parser(
        "alerts", help="run footfall's alerts online on a CSV's counts and score them against labelled windows",
        description="Bucket a CSV of timestamped counts, run the worker's forecasts and StoreWatch one bucket at a "
        "time (each bucket judged against the forecast made --lead-h before it, then learned), and score the "
        "alerts against labelled windows: NAB (three profiles), event-level precision/recall/F1, delays.",
    )
    _add_series_args(al)
    al.add_argument("--labels", type=Path, required=True, help="CSV of labelled windows (other columns ignored)")
    al.add_argument("--labels-start-col", default="window_start", help="window start column (default window_start)")
    al.add_argument("--labels-end-col", default="window_end", help="window end column (default window_end)")
    al.add_argument("--freq", default="30min", help="bucket length: 15min, 30min, 1h ... (default 30min)")
    al.add_argument("--tz", default="UTC", help="time zone of timestamps without an offset (default UTC)")
    al.add_argument("--holidays", type=Path, help="file of public holidays, one ISO date per line")
    al.add_argument("--vertical", choices=("retail", "bank", "telecom"), default="retail",
                    help="whose hour-of-week profile the cold-start candidate uses (default retail)")
    al.add_argument("--lead-h", type=float, default=6.0, help="judge each bucket against the forecast made this "
                    "many hours before it (default 6)")
    al.add_argument("--detector", choices=("store", "generic"), default="store",
                    help="residual detector settings: the worker's for store counts (store, default: point 4, "
                    "CUSUM k 1 h 12, confirmed by the bucket itself) or the detector's own for large, smooth "
                    "series (generic: point 8, CUSUM k 2 h 24)")
    al.add_argument("--point", type=float, help="override: distance beyond the 95 %% interval, in robust scale "
                    "units, that alone is an alert")
    al.add_argument("--cusum-k", type=float, help="override: CUSUM allowance per bucket")
    al.add_argument("--cusum-h", type=float, help="override: CUSUM alert level")
    al.add_argument("--out", type=Path, required=True, help="folder for the report, alerts, summary and plot")
    al.set_defaults(func=run_alerts_command)


def detector_settings(name: str, **overrides: float | None) -> dict[str, Any]:
    """The residual detector's parameters: the worker's (`store`) or the detector's own (`generic`), overridden.

    >>> detector_settings("generic", point=6.0, cusum_k=None)
    {'point': 6.0, 'cusum_k': 2.0, 'cusum_h': 24.0}
    >>> detector_settings("store")["point"]
    4.0

    """
    from footfall.operators.alerting.detectors import ResidualDetector
    from footfall.operators.pipeline.store_models import DETECTOR

    own = ResidualDetector()
    settings = dict(DETECTOR) if name == "store" else {"point": own.point, "cusum_k": own.cusum_k,
                                                        "cusum_h": own.cusum_h}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return settings


def run_alerts_command(args: argparse.Namespace) -> int:
    from footfall.scripts.alerteval import markdown_summary, plot, read_windows, report, run_alerts, write_alerts_csv
    from footfall.scripts.forecasteval import Progress, iter_holidays, read_series

    try:
        freq_ms = parse_freq_ms(args.freq)
        series = read_series(args.csv, args.timestamp_col, args.value_col, freq_ms, tz=args.tz,
                             distinct_col=args.count_distinct)
        windows = read_windows(args.labels, args.labels_start_col, args.labels_end_col, tz=args.tz)
        holidays = list(iter_holidays(args.holidays))
    except (OSError, ValueError) as exc:
        print(f"footfall evaluate alerts: {exc}", file=sys.stderr)
        return 2
    lead_ms = max(freq_ms, round(args.lead_h * 3_600_000))
    print(f"{args.csv}: {len(series.values)} buckets of {args.freq} ({sum(v is None for v in series.values)} gaps), "
          f"{len(windows)} labelled windows", file=sys.stderr)
    t0 = time.monotonic()
    detector = detector_settings(args.detector, point=args.point, cusum_k=args.cusum_k, cusum_h=args.cusum_h)
    result = run_alerts(series, lead_ms=lead_ms, vertical=args.vertical, holidays=holidays,
                        progress=Progress("alerting"), detector=detector)
    args.out.mkdir(parents=True, exist_ok=True)
    source: dict[str, Any] = {"csv": str(args.csv), "timestamp_col": args.timestamp_col, "value_col": args.value_col,
                              "count_rows": args.count_rows, "count_distinct": args.count_distinct,
                              "labels": str(args.labels), "freq": args.freq, "tz": args.tz,
                              "vertical": args.vertical, "lead_h": args.lead_h, "detector": args.detector,
                              "detector_settings": detector, "holidays": len(holidays)}
    doc = report(result, windows, source)
    doc["elapsed_s"] = round(time.monotonic() - t0, 1)
    (args.out / "alerts_report.json").write_text(json.dumps(doc, indent=2) + "\n")
    write_alerts_csv(result, args.out / "alerts.csv")
    summary = markdown_summary(doc)
    (args.out / "alerts_report.md").write_text(summary)
    plotted = plot(result, windows, args.out / "alerts_plot.png")
    print(summary)
    print(f"written: {args.out}/alerts_report.json, alerts.csv, alerts_report.md"
          + (", alerts_plot.png" if plotted else " (no plot: matplotlib is not installed)"), file=sys.stderr)
    return 0
