"""Live KPIs on real Kafka and Redis: simulated duplicate, late and out-of-order events, all brute-forced.

The simulator sends per store in one partition, so the order the worker sees is
the send order; the model here replays that order with the documented rules (a
repeated id is a duplicate; an event whose bucket the watermark has closed is
late) and recomputes every bucket, KPI, window and occupancy from the events it
kept, without `operators/`.
"""

from __future__ import annotations

import datetime as dt
import math
import signal
import time
from collections import Counter
from typing import Any

import orjson
import pytest
import redis

from footfall.schemas.keys import CHAIN, RedisKeys
from footfall.scripts.simulation import DEFAULT_REGIONS, generate, make_stores
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.integration.conftest import wait_until
from tests.integration.flowdata import _ts_ms
from tests.integration.test_pipeline import read_topic, redis_buckets, send_all

pytestmark = pytest.mark.integration

MIN = 60_000
BUCKET_MS = 15 * MIN
GRACE_MS = 5 * MIN
SLOT_MS = 10_000


def model(stream: list[dict[str, Any]]) -> dict[str, Any]:
    """The documented rules, applied to one store's events in send order."""
    seen: set[str] = set()
    watermark = None
    kept, fates = [], Counter()
    for ev in stream:
        if ev["event_id"] in seen:
            fates["duplicates"] += 1
            continue
        seen.add(ev["event_id"])
        ts = _ts_ms(ev["ts"])
        start = ts - ts % BUCKET_MS
        if watermark is not None and watermark >= start + BUCKET_MS + GRACE_MS:
            fates["late"] += 1
            continue
        kept.append((ts, ev))
        watermark = ts if watermark is None else max(watermark, ts)
    buckets: dict[int, dict[str, Any]] = {}
    occupancy = 0
    arrivals_at: list[tuple[int, int]] = []
    for ts, ev in kept:
        b = buckets.setdefault(ts - ts % BUCKET_MS, {"arrivals": 0, "departures": 0, "transactions": 0,
                                                     "sales": 0.0, "tickets_issued": 0, "events": 0, "dwell": []})
        b["events"] += 1
        entries = exits = 0
        if ev["kind"] == "door":
            if "direction" in ev:
                entries, exits = int(ev["direction"] == "in"), int(ev["direction"] == "out")
            else:
                entries, exits = ev["count_in"], ev["count_out"]
        elif ev["kind"] == "visit":
            entries, exits = int(ev["action"] == "arrive"), int(ev["action"] == "leave")
            if ev["action"] == "leave" and ev.get("dwell_s") is not None:
                b["dwell"].append(ev["dwell_s"])
        elif ev["kind"] == "pos":
            b["transactions"] += 1
            b["sales"] += ev["amount"]
        elif ev["kind"] == "queue":
            b["tickets_issued"] += ev["action"] == "issued"
        b["arrivals"] += entries
        b["departures"] += exits
        arrivals_at.append((ts, entries))
        occupancy = max(0, occupancy + entries - exits)
    newest_slot = watermark // SLOT_MS
    arrivals_15m = sum(n for ts, n in arrivals_at if newest_slot - ts // SLOT_MS < 15 * MIN // SLOT_MS)
    return {"fates": fates, "buckets": buckets, "watermark": watermark, "occupancy": occupancy,
            "arrivals_15m": arrivals_15m}


def linear_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def test_kpis_and_counters_equal_the_brute_force_model(services, worker_factory, unique_prefix):
    # Four stores in Paris and London on a Wednesday morning, open and busy, with retries (duplicates),
    # buffers uploaded 3 hours late and events held back up to 2 minutes (within the 5 minute grace).
    stores = make_stores(4, seed=5, regions=DEFAULT_REGIONS[:2])
    start_ms = int(dt.datetime(2026, 3, 4, 9, 0, tzinfo=dt.UTC).timestamp() * 1000)
    sim = list(generate(stores, start_ms=start_ms, end_ms=start_ms + 4 * 60 * MIN, seed=5, batch_size=1,
                        duplicate_fraction=0.03, late_fraction=0.01, reorder_fraction=0.05, reorder_max_ms=2 * MIN))
    streams: dict[str, list[dict[str, Any]]] = {s.store_id: [] for s in stores}
    injected: dict[str, Counter[str]] = {s.store_id: Counter() for s in stores}
    for m in sim:
        streams[m.store_id].append(orjson.loads(m.payload))
        injected[m.store_id].update(duplicates=m.duplicates, late=m.late)
    expected = {store_id: model(stream) for store_id, stream in streams.items()}
    for store_id in streams:
        # The model agrees with what the simulator injected: its late events are late, its repeats duplicates.
        assert expected[store_id]["fates"]["late"] == injected[store_id]["late"]
        assert expected[store_id]["fates"]["duplicates"] == injected[store_id]["duplicates"]
    assert sum(i["late"] for i in injected.values()) > 5 and sum(i["duplicates"] for i in injected.values()) > 20
    messages = [(m.store_id.encode(), m.payload) for m in sim]
    # Days and daily resets are local: the stores' zones, and a reset time far from the morning simulated.
    zones = ",".join(f"{s.store_id}={s.timezone}" for s in stores)
    reset_at = "20:00"
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    worker = worker_factory(grace_s=GRACE_MS // 1000, idle_timeout_s=0, reset_at=reset_at,
                            store_timezones=zones).start()
    client = redis.Redis.from_url(services.redis_url)
    keys = RedisKeys(unique_prefix)
    # Half the traffic, a restart (SIGTERM) in the middle of open buckets, then the rest: duplicates of
    # events sent before the restart must still be recognised, buckets must close exact.
    half = len(messages) // 2
    send_all(services.bootstrap, f"{unique_prefix}.events", messages[:half])
    wait_until(lambda: int(client.hget(keys.stats, "messages") or 0) >= half, 90,
               "the first half applied")
    assert worker.stop(signal.SIGTERM) == 0
    worker.start()
    send_all(services.bootstrap, f"{unique_prefix}.events", messages[half:])
    kept_total = sum(b["events"] for e in expected.values() for b in e["buckets"].values())

    def counted() -> int:
        return int(client.hget(keys.stats, "events") or 0)

    wait_until(lambda: counted() >= kept_total, 90, f"{kept_total} events counted (so far {counted()})")
    time.sleep(2 * 1.0)  # one more flush of the live records

    stats = {k.decode(): int(v) for k, v in client.hgetall(keys.stats).items()}
    assert stats["events"] == kept_total
    assert stats["late"] == sum(i["late"] for i in injected.values())
    assert stats["duplicates"] == sum(i["duplicates"] for i in injected.values())
    dead = read_topic(services.bootstrap, f"{unique_prefix}.dead-letter")
    late_letters = [r for r in dead if dict(r.headers).get("footfall.reason") == b"late"]
    assert len(late_letters) == stats["late"]

    found = redis_buckets(client, unique_prefix)
    for store_id, want in expected.items():
        wm = want["watermark"]
        for start, b in want["buckets"].items():
            got = found[(store_id, start)]
            assert got["status"] == ("closed" if wm >= start + BUCKET_MS + GRACE_MS else "open")
            for name in ("arrivals", "departures", "transactions", "tickets_issued"):
                assert got[name] == b[name], (store_id, start, name)
            assert got["sales"] == pytest.approx(b["sales"], abs=0.011)
            if b["arrivals"]:
                assert got["conversion_rate"] == pytest.approx(b["transactions"] / b["arrivals"])
                assert got["sales_per_visitor"] == pytest.approx(b["sales"] / b["arrivals"])
            else:
                assert got["conversion_rate"] is None and got["sales_per_visitor"] is None
            if b["dwell"]:
                assert got["dwell_n"] == len(b["dwell"])
                assert got["dwell_mean_s"] == pytest.approx(sum(b["dwell"]) / len(b["dwell"]))
                assert got["dwell_p50_s"] == pytest.approx(linear_quantile(b["dwell"], 0.5), rel=0.03)
                assert got["dwell_p90_s"] == pytest.approx(linear_quantile(b["dwell"], 0.9), rel=0.03)
            else:
                assert got["dwell_n"] == 0 and got["dwell_mean_s"] is None
        live = orjson.loads(client.hget(keys.store_live(store_id), "occupancy"))
        assert live["occupancy"] == want["occupancy"]
        windows = orjson.loads(client.hget(keys.store_live(store_id), "windows"))
        assert windows["15m"]["arrivals"] == want["arrivals_15m"]
        assert int(client.hget(keys.store_live(store_id), "duplicates")) == injected[store_id]["duplicates"]
        assert int(client.hget(keys.store_live(store_id), "late")) == injected[store_id]["late"]
    # Live roll-ups: each region's and the chain's stores now are the sums of the model's stores.
    region_of = {s.store_id: s.region for s in stores}
    groups = [("region", r, [k for k, v in region_of.items() if v == r]) for r in sorted(set(region_of.values()))]
    groups.append(("chain", CHAIN, list(region_of)))
    for level, key, members in groups:
        totals = {k.decode(): int(v) for k, v in
                  client.hgetall(keys.rollup_totals(level, key, "live")).items()}
        assert totals["stores"] == len(members), (level, key)
        assert totals["occupancy"] == sum(expected[m]["occupancy"] for m in members), (level, key)
        assert totals["arrivals_15m"] == sum(expected[m]["arrivals_15m"] for m in members), (level, key)
        assert totals["duplicates"] == sum(injected[m]["duplicates"] for m in members), (level, key)
        published = client.hget(keys.rollup_live(level, key), "occupancy")
        assert published is not None and int(published) == totals["occupancy"]
