"""The worker's /metrics text, read back by Prometheus' own parser, and the health verdict."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from footfall.stream.metrics import WorkerSnapshot, health, prometheus_text


def snapshot(**changes) -> WorkerSnapshot:
    base = {"totals": {"events": 1_000, "late": 3, "duplicates": 5, "flush_failed": 1},
            "dead_letters": {"malformed_json": 2, 'odd "reason"\n': 1}, "stores_in_memory": 12,
            "pending_records": 4, "pending_sends": 1, "next_offsets": {0: 100, 1: 250, 2: 7},
            "end_offsets": {0: 100, 1: 260, 2: None}, "flush_count": 10, "flush_seconds_sum": 0.5,
            "last_flush_seconds": 0.04, "checkpoint_age_s": 2.0}
    return WorkerSnapshot(**{**base, **changes})


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_text_parses_with_prometheus_and_carries_every_figure():
    got = samples(prometheus_text(snapshot()))
    assert got[("footfall_events_total", ())] == 1_000
    assert got[("footfall_worker_counts_total", (("name", "late"),))] == 3
    assert got[("footfall_dead_letters_total", (("reason", "malformed_json"),))] == 2
    assert got[("footfall_dead_letters_total", (("reason", 'odd "reason"\n'),))] == 1  # escaped and read back
    assert got[("footfall_stores_in_memory", ())] == 12
    assert got[("footfall_pending_records", ())] == 4
    # Lag per partition whose end is known: end - next offset.
    lags = {dict(labels)["partition"]: v for (name, labels), v in got.items() if name == "footfall_consumer_lag"}
    assert lags == {"0": 0, "1": 10}
    assert got[("footfall_flush_seconds_count", ())] == 10
    assert got[("footfall_flush_seconds_sum", ())] == pytest.approx(0.5)
    assert got[("footfall_checkpoint_age_seconds", ())] == 2.0
    none_yet = samples(prometheus_text(snapshot(checkpoint_age_s=None, last_flush_seconds=None)))
    assert math.isnan(none_yet[("footfall_checkpoint_age_seconds", ())])


@pytest.mark.parametrize(("age", "lag_end", "pending", "healthy"), [
    (2.0, 260, 4, True),  # checkpoints advancing
    (31.0, 260, 4, False),  # work waits, no checkpoint for 31 s
    (31.0, 250, 0, True),  # nothing to do: quiet is not broken
    (None, 250, 0, True),  # a fresh worker with nothing to do
    (None, 251, 0, False),  # input waits and no checkpoint ever
    (31.0, 250, 1, False),  # records wait
])
def test_health_fails_only_when_work_waits_and_checkpoints_stop(age, lag_end, pending, healthy):
    snap = snapshot(checkpoint_age_s=age, end_offsets={1: lag_end}, pending_records=pending, pending_sends=0)
    ok, why = health(snap, max_checkpoint_age_s=30)
    assert ok is healthy, why
