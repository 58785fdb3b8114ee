"""Staffing advice through the real stack: a bank branch's tickets in, staffing records and the advice line out.

Every served ticket takes 5 minutes and nobody gives up, so the stage staffs with Erlang C on a
mean service time of exactly 300 s. Each staffing record is compared with the agents that
`staffing.erlang.required_agents` (checked against published values in test_erlang.py) gives for
the forecast the worker published at the same bucket, and the branch, served by 2 counters, gets
the advice line.
"""

from __future__ import annotations

import time
from typing import Any

import jsonschema
import orjson
import pytest
import redis

from footfall.operators.staffing.erlang import required_agents
from footfall.schemas.keys import RedisKeys
from footfall.schemas.records import record_schema
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.integration.conftest import wait_until
from tests.integration.test_pipeline import send_all
from tests.integration.test_toy_stage import topic_records

pytestmark = pytest.mark.integration

MINUTE_MS = 60_000
STORE = "bank-staff-1"


def tickets(t0: int, minutes: int, per_minute: int = 3) -> list[dict[str, Any]]:
    events = []
    for m in range(minutes):
        for i in range(per_minute):
            ticket, ts = f"T{m}-{i}", t0 + m * MINUTE_MS + i * 1_000
            base = {"store_id": STORE, "kind": "queue", "schema_version": 1, "vertical": "bank", "region": "south",
                    "ticket_id": ticket, "service": "teller"}
            events.append({**base, "event_id": f"{ticket}-i", "ts": ts, "action": "issued"})
            events.append({**base, "event_id": f"{ticket}-s", "ts": ts + 30_000, "action": "served",
                           "counter": str(1 + i % 2), "wait_s": 20.0, "service_s": 300.0})
    return events


def test_a_branch_gets_staffing_records_and_the_advice_line(services, worker_factory, unique_prefix):
    t0 = (int(time.time() * 1000) - 2 * 3_600_000) // MINUTE_MS * MINUTE_MS
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    worker_factory(bucket_s=60, grace_s=0, idle_timeout_s=0, forecast_horizon_h=0.1, target_wait_s=60).start()
    send_all(services.bootstrap, f"{unique_prefix}.events",
             [(STORE.encode(), orjson.dumps(e)) for e in tickets(t0, 8)])
    client = redis.Redis.from_url(services.redis_url)
    keys = RedisKeys(unique_prefix)

    def history() -> list[dict[str, Any]]:
        return [orjson.loads(f[b"record"]) for _, f in client.xrange(keys.store_record_history(STORE, "staffing"))]

    wait_until(lambda: len(history()) >= 5, 90, "staffing records of the closed buckets")
    forecasts = {r["made_at_ms"]: r for r in (orjson.loads(f[b"record"]) for _, f in
                                              client.xrange(keys.store_forecast_history(STORE)))
                 if r["series"] == "tickets_issued"}
    schema = record_schema("staffing")
    records = history()
    for record in records:
        jsonschema.validate(record, schema)
        forecast = forecasts[record["made_at_ms"]]
        assert record["model"] == "erlang_c" and record["patience_s"] is None and record["aht_s"] == 300.0
        assert record["counters_active"] == 2
        assert [p["target_ms"] for p in record["points"]] == [p["target_ms"] for p in forecast["points"]]
        for point, predicted in zip(record["points"], forecast["points"], strict=True):
            arrivals = round(max(0.0, predicted["hi80"]), 1)
            want = required_agents(arrivals, interval_s=60, aht_s=300, answer_s=60, target_sl=0.8)
            assert (point["arrivals"], point["agents"]) == (arrivals, want.agents), point
            assert point["service_level"] == pytest.approx(want.service_level)
        first = record["points"][0]
        if first["agents"] > 2:  # 2 counters cannot carry the next minute's load: the advice says so
            assert record["advice"] and record["advice"].startswith("2 counters open, service level heading to")
        else:
            assert record["advice"] is None
    assert any(r["advice"] for r in records)
    latest = orjson.loads(client.get(keys.store_record(STORE, "staffing")))
    assert latest["made_at_ms"] == max(r["made_at_ms"] for r in records)
    on_topic = topic_records(services.bootstrap, f"{unique_prefix}.staffing", len(records))
    assert {r["made_at_ms"] for r in on_topic} == {r["made_at_ms"] for r in records}
