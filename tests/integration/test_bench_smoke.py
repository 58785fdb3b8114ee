"""`footfall bench` in a tiny configuration on the session's broker and Redis.

Not a speed test (speed lives in the bench itself): it checks that every pipeline
runs in both modes and writes coalesced, that the report has its measurements
and ratios, that every paced message was timed into Redis, and that no pipeline
lost or double-counted an event on its way to Redis (counted from the per-bucket
records in the history streams, not from any pipeline's own counter); and that a
lost event fails the run loudly.
"""

from __future__ import annotations

import pytest

from footfall.scripts import bench, cli
from footfall.scripts.bench import DEFAULT_PIPELINES, FLUSH_S, MODES, BenchConfig, format_report, run_bench

pytestmark = pytest.mark.integration


def test_cli_parses_bench_options():
    args = cli.build_parser().parse_args(
        ["bench", "--only", "a,c", "--events", "50", "--pace", "0.25", "--json", "out.json"])
    assert args.only == "a,c" and args.events == 50 and args.pace == 0.25
    assert args.func.__module__ == "footfall.scripts.bench"


def test_tiny_bench_runs_every_pipeline_and_counts_every_event(services, tmp_path):
    config = BenchConfig(events=300, batch_events=2_000, stores=4, paced_s=1.5, stall_timeout_s=30)
    report = run_bench(config, broker=services.bootstrap, redis_url=services.redis_url, run_dir=tmp_path / "bench")
    shown = format_report(report)

    assert {(r.pipeline, r.mode) for r in report.results} == {(p, m) for p in DEFAULT_PIPELINES for m in MODES}, shown
    for r in report.results:
        where = f"{r.pipeline} {r.mode}\n{shown}"
        assert r.error is None, where
        assert r.events_per_s is not None and r.events_per_s > 0, where
        assert r.cpu_us_per_event is not None and r.cpu_us_per_event > 0, where
        assert r.flushes >= 1 and r.flush_counts[-1][1] == r.backlog_events, where
        # The latency phase runs at half of what the pipeline just measured.
        assert r.paced_target_events_per_s == pytest.approx(config.pace * r.events_per_s), where
        assert r.paced_events_per_s is not None and r.paced_events_per_s > 0, where
        assert r.p50_ms is not None and r.p99_ms is not None and 0 < r.p50_ms <= r.p99_ms, where
        # Coalesced: a message waits for the next flush, never much longer than one interval (and the flush).
        assert r.p50_ms < FLUSH_S * 1000 * 2 + 2_000, where
        # Every paced message was timed, not only those that happened to be last before a flush.
        assert r.latency_samples == r.paced_messages > 0, where
        assert r.events_produced == config.backlog_events(r.mode) + r.paced_events, where
        # The check that matters: what reached Redis's bucket records is exactly what was produced.
        assert r.events_in_redis == r.stats_events == r.events_produced, where
        assert r.counts_match, where
        assert r.peak_rss_mb is not None and r.peak_rss_mb > 0, where
    for measure in ("events_per_s", "cpu_us_per_event"):
        ratios = report.ratios(measure)
        assert set(ratios) == set(MODES), shown
        assert all(set(mode) == {"c/a", "c/b"} and all(v is not None and v > 0 for v in mode.values())
                   for mode in ratios.values()), shown
    # The printed report: the table, one row per result, the ratios per mode and the machine's load.
    lines = shown.splitlines()
    header = next(line for line in lines if line.startswith("pipeline "))
    for column in ("events/s", "CPU us/ev", "paced ev/s", "p50 ms", "p99 ms", "lat n", "counted"):
        assert column in header, shown
    rows = [line for line in lines if line[:2] in {f"{p} " for p in DEFAULT_PIPELINES}]
    assert len(rows) == len(report.results) and all(row.endswith(" ok") for row in rows), shown
    for mode in MODES:
        assert any(line.startswith(f"{mode}: events/s c/a = ") and "CPU per event c/a = " in line
                   for line in lines), shown
    assert "load average" in shown and "MISMATCH" not in shown and "ERROR" not in shown, shown
    assert report.to_json()["ratios"]["events_per_s"] == report.ratios(), shown


def test_an_event_missing_in_redis_fails_the_run(services, tmp_path, monkeypatch):
    counted = bench.events_in_redis

    async def one_short(client, settings):
        return await counted(client, settings) - 1

    monkeypatch.setattr(bench, "events_in_redis", one_short)
    config = BenchConfig(events=200, stores=2, paced_s=1.0, pipelines=("a",), modes=("single",), stall_timeout_s=30)
    report = run_bench(config, broker=services.bootstrap, redis_url=services.redis_url, run_dir=tmp_path / "bench")
    shown = format_report(report)

    [result] = report.results
    assert not result.counts_match, shown
    assert result.error is not None and "NOT EVERY EVENT COUNTED" in result.error, shown
    assert "MISMATCH" in shown and "ERROR: NOT EVERY EVENT COUNTED" in shown, shown
