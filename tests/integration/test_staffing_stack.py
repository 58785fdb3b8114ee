"""Staffing advice through the real stack: a bank branch's tickets in, staffing records and the advice line out.

Every served ticket takes 5 minutes and nobody gives up, so the stage staffs with Erlang C on a
mean service time of exactly 300 s. Each staffing record is compared with the agents that
`staffing.erlang.required_agents` (checked against published values in test_erlang.py) gives for
the forecast the worker published at the same bucket, and the branch, served by 2 counters, gets
the advice line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import orjson
import pytest
import redis

from footfall.operators.staffing.erlang import required_agents
from footfall.schemas.keys import RedisKeys
from footfall.schemas.records import record_schema
from footfall.scripts.simulation import generate, make_stores, rostered, understaffed
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.integration.conftest import wait_until
from tests.integration.test_pipeline import send_all
from tests.integration.test_toy_stage import topic_records

pytestmark = pytest.mark.integration

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
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


def _ts_ms(ts: int | str) -> int:
    if isinstance(ts, int):
        return ts
    return int(dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)


def test_a_simulated_branch_left_short_gets_the_advice_line_within_a_bucket(services, worker_factory,
                                                                            unique_prefix):
    # A simulated branch (its own arrival profile, counters by its roster) for a week and a day, left
    # with one counter open at two busy afternoon hours on Mondays. On the second Monday, with a week
    # of tickets forecast, the advice line must come by the close of the period's second bucket (the
    # first may still see the closed counters finishing their customers). Left with its roster, the
    # same branch gets no advice in those buckets (checked by hand: 5 counters open, 4-6 needed).
    bank = rostered(dataclasses.replace(make_stores(2, seed=1)[1], base_rate_per_h=make_stores(2, seed=1)[1]
                                        .base_rate_per_h * 2), seed=1)
    monday = bank.roster[0]
    busiest = max((h for h in range(14, 18) if monday[h] >= 2 and monday[h + 1] >= 2), key=lambda h: monday[h])
    branch = understaffed(bank, hours=[busiest, busiest + 1], by=99, weekdays=[0])  # 1 counter open
    assert branch.roster[0][busiest] == 1 < bank.roster[0][busiest]
    zone = ZoneInfo(branch.timezone)
    start_ms = int(dt.datetime(2026, 1, 5, tzinfo=zone).timestamp() * 1000)  # a Monday, local midnight
    short_from = start_ms + 7 * DAY_MS + busiest * HOUR_MS  # the second Monday (no DST change in January)
    end_ms = short_from + 4 * HOUR_MS
    messages = list(generate([branch], start_ms=start_ms, end_ms=end_ms, seed=1, batch_size=20, chunk_ms=DAY_MS))
    events = [e for m in messages for e in (lambda v: v if isinstance(v, list) else [v])(orjson.loads(m.payload))]
    tickets = [e for e in events if e.get("kind") == "queue"]
    assert tickets, "the simulated branch issued no tickets"

    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    worker_factory(idle_timeout_s=0, forecast_horizon_h=2, target_wait_s=600).start()
    send_all(services.bootstrap, f"{unique_prefix}.events", [(m.store_id.encode(), m.payload) for m in messages])
    client = redis.Redis.from_url(services.redis_url)
    keys = RedisKeys(unique_prefix)

    def records() -> dict[int, dict[str, Any]]:
        return {r["made_at_ms"]: r for r in (orjson.loads(f[b"record"]) for _, f in
                                             client.xrange(keys.store_record_history(branch.store_id, "staffing")))}

    bucket_ms = 15 * MINUTE_MS
    wait_until(lambda: short_from + 3 * bucket_ms in records(), 180, "staffing records through the short hours")
    made = records()
    period = [made[t] for t in range(short_from, short_from + 8 * bucket_ms, bucket_ms) if t in made]
    assert [r["made_at_ms"] for r in period[:2]] == [short_from, short_from + bucket_ms]
    assert period[0]["advice"] or period[1]["advice"], [(r["counters_active"], r["points"][0]) for r in period]
    advised = next(r for r in period if r["advice"])
    assert advised["advice"].startswith(f"{advised['counters_active']} counter")
    assert advised["points"][0]["agents"] > advised["counters_active"]

    # Counters open at a bucket's close can only be counters serving a ticket then, or that called or
    # ended one within the last two mean service times (5-30 min) before the bucket's end. The close
    # comes with the first event past the end (its message's others at most the simulator's 10 s
    # linger later): everything up to then bounds the count from above.
    steps = sorted(((_ts_ms(e["ts"]), e) for e in tickets), key=lambda pair: pair[0])
    times = sorted(_ts_ms(e["ts"]) for e in events)
    for record in period:
        at_ms = record["made_at_ms"] + bucket_ms
        seen_until = next(t for t in times if t >= at_ms) + 10_000
        window_ms = 1000 * min(1800.0, max(300.0, 2 * record["aht_s"]))
        serving: dict[str, str] = {}
        recent = set()
        for ts_ms, e in steps:
            if ts_ms > seen_until:
                break
            if e.get("counter") is None:
                continue
            if e["action"] == "called":
                serving[e["ticket_id"]] = e["counter"]
            elif e["action"] in ("served", "no_show"):
                serving.pop(e["ticket_id"], None)
            if ts_ms >= at_ms - window_ms:
                recent.add(e["counter"])
        assert 1 <= record["counters_active"] <= len(set(serving.values()) | recent), record
    # And the short hours did build a queue: the tickets' waits show it.
    waits = [e["wait_s"] for ts, e in steps if e["action"] == "called" and short_from <= ts < short_from + 2 * HOUR_MS]
    assert waits and max(waits) > 600, waits
