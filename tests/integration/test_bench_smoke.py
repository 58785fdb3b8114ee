"""`footfall bench` in a tiny configuration on the session's broker and Redis.

Not a speed test (speed lives in the bench itself): it checks that every pipeline
runs in both modes, that the measurements are sane, and that no pipeline lost or
double-counted an event on its way to Redis (counted from the per-bucket records,
not from any pipeline's own counter).
"""

from __future__ import annotations

import pytest

from footfall.scripts import cli
from footfall.scripts.bench import MODES, PIPELINES, BenchConfig, format_report, run_bench

pytestmark = pytest.mark.integration


def test_cli_parses_bench_options():
    args = cli.build_parser().parse_args(["bench", "--only", "a,c", "--events", "50", "--json", "out.json"])
    assert args.only == "a,c" and args.events == 50 and args.func.__module__ == "footfall.scripts.bench"


def test_tiny_bench_runs_every_pipeline_and_loses_no_event(services, tmp_path):
    config = BenchConfig(events=300, batch_events=2_000, stores=4, rate=200, paced_s=1.5, stall_timeout_s=30)
    report = run_bench(config, broker=services.bootstrap, redis_url=services.redis_url, run_dir=tmp_path / "bench")
    shown = format_report(report)

    assert {(r.pipeline, r.mode) for r in report.results} == {(p, m) for p in PIPELINES for m in MODES}, shown
    for r in report.results:
        where = f"{r.pipeline} {r.mode}\n{shown}"
        assert r.error is None, where
        assert r.events_per_s is not None and r.events_per_s > 0, where
        assert r.p50_ms is not None and r.p99_ms is not None and 0 < r.p50_ms <= r.p99_ms, where
        if r.pipeline == "c":
            # The worker coalesces live records (one per store and bucket per second): fewer, not none.
            assert 0 < r.latency_samples <= r.paced_messages, where
        else:
            # Every paced message was seen on the live channel, so the latency covers all of them.
            assert r.latency_samples == r.paced_messages > 0, where
        assert r.events_produced == config.backlog_events(r.mode) + r.paced_events, where
        # The check that matters: what reached Redis's bucket records is exactly what was produced.
        assert r.events_in_redis == r.events_produced, where
        assert r.stats_events == r.events_produced, where
        assert r.peak_rss_mb is not None and r.peak_rss_mb > 0, where
    ratios = report.ratios()
    assert all(v is not None and v > 0 for mode in ratios.values() for v in mode.values()), shown
