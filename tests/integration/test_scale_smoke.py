"""`footfall scale` in a tiny configuration (20 stores, 60x, 40 s) on the session's broker and Redis.

Not a scale test: it checks that the harness runs the simulator and one worker, and reports
plausible numbers (finite staleness, a live worker's CPU and RSS, events offered and applied,
changelog bytes, no rebalance).
"""

from __future__ import annotations

import math

import pytest

from footfall.scripts import cli
from footfall.scripts.scale import ScaleConfig, format_report, run_scale

pytestmark = pytest.mark.integration


def test_cli_parses_scale_options():
    args = cli.build_parser().parse_args(["scale", "--stores", "50", "--speed", "24", "--minutes", "1.5"])
    assert (args.stores, args.speed, args.minutes, args.bucket_s) == (50, 24.0, 1.5, 900)
    assert args.func.__module__ == "footfall.scripts.scale"


def test_tiny_scale_run_reports_plausible_numbers(services, tmp_path):
    config = ScaleConfig(stores=20, speed=60, minutes=40 / 60)
    report = run_scale(config, broker=services.bootstrap, redis_url=services.redis_url, run_dir=tmp_path / "scale")
    shown = format_report(report)

    assert report.error is None, shown
    assert report.live_records > 0 and report.stores_in_redis > 0, shown
    p50, p99, top = (report.stale_ms[k] for k in ("p50", "p99", "max"))
    assert p50 is not None and p99 is not None and math.isfinite(p99) and 0 <= p50 <= p99 <= top < 30_000, shown
    assert report.rss_mb_peak is not None and report.rss_mb_peak > 0, shown
    assert report.cpu_pct_mean is not None and report.cpu_pct_mean > 0, shown
    assert report.offered_events > 0 and 0 < report.applied_events <= report.offered_events, shown
    assert len(report.boundaries) >= 2 and len(report.changelog_bytes_per_boundary) == len(report.boundaries), shown
    assert report.changelog_bytes > 0, shown
    assert not report.left_group and report.rebalances == 0, shown
    assert "staleness p50 / p99 / max (ms)" in shown and "rebalances / left its group" in shown, shown
