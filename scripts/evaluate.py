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


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("evaluate", help="score footfall's forecasters (and later alerts) on a CSV",
                            description="Online evaluation of footfall's operators on any CSV.")
    what = parser.add_subparsers(dest="what", metavar="WHAT")
    what.required = True
    fc = what.add_parser(
        "forecast", help="forecast a CSV's counts online and score every model",
        description="Bucket a CSV of timestamped counts, run every forecaster and the online selection one bucket "
        "at a time (each forecast made before its value is seen), and score them per horizon against the "
        "seasonal-naive baselines. Gaps stay gaps.",
    )
    fc.add_argument("--csv", type=Path, required=True, help="the CSV file")
    fc.add_argument("--timestamp-col", required=True, help="column with the time (ISO-8601; local time unless it "
                    "has an offset)")
    value = fc.add_mutually_exclusive_group(required=True)
    value.add_argument("--value-col", help="column with the count (summed per bucket; no row = a gap)")
    value.add_argument("--count-rows", action="store_true", help="count rows per bucket (no row = 0)")
    value.add_argument("--count-distinct", metavar="COL", help="count distinct values of COL per bucket (no row = 0)")
    fc.add_argument("--freq", default="30min", help="bucket length: 15min, 30min, 1h ... (default 30min)")
    fc.add_argument("--horizon-h", type=float, default=24.0, help="hours ahead to forecast (default 24)")
    fc.add_argument("--tz", default="UTC", help="time zone of timestamps without an offset (default UTC)")
    fc.add_argument("--holidays", type=Path, help="file of public holidays, one ISO date per line")
    fc.add_argument("--mode", choices=("best", "blend"), default="best",
                    help="publish the best candidate or an error-weighted blend (default best)")
    fc.add_argument("--out", type=Path, required=True, help="folder for the report, forecasts, table and plot")
    fc.set_defaults(func=run)


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
    print(f"{args.csv}: {len(series.values)} buckets of {args.freq} ({sum(v is None for v in series.values)} gaps), "
          f"horizon {horizon} buckets", file=sys.stderr)
    t0 = time.monotonic()
    result = evaluate(series, horizon, holidays, mode=args.mode, progress=Progress("forecasting"))
    args.out.mkdir(parents=True, exist_ok=True)
    source: dict[str, Any] = {"csv": str(args.csv), "timestamp_col": args.timestamp_col,
                              "value_col": args.value_col, "count_rows": args.count_rows,
                              "count_distinct": args.count_distinct, "freq": args.freq, "tz": args.tz,
                              "mode": args.mode, "holidays": len(holidays)}
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
