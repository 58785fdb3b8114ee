"""Live KPIs on real Kafka and Redis: injected late, duplicate and out-of-order events, every figure brute-forced.

The traffic is sent per store in one partition, so the order the worker sees is
the order below; the model here replays that order with the documented rules (a
repeated id is a duplicate; an event whose bucket the watermark has closed is
late) and recomputes every bucket, KPI, window and occupancy from the events it
kept, without `operators/`.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import signal
import time
import uuid
from collections import Counter
from typing import Any

import orjson
import pytest
import redis

from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.integration.conftest import wait_until
from tests.integration.test_pipeline import read_topic, redis_buckets, send_all

pytestmark = pytest.mark.integration

MIN = 60_000
BUCKET_MS = 15 * MIN
GRACE_MS = 5 * MIN
SLOT_MS = 10_000


def _event(rng: random.Random, store_id: str, vertical: str, ts_ms: int) -> dict[str, Any]:
    base = {"event_id": uuid.UUID(int=rng.getrandbits(128)).hex, "store_id": store_id, "schema_version": 1,
            "region": "north", "vertical": vertical, "ts": ts_ms}
    r = rng.random()
    if vertical == "bank" and r < 0.5:
        return {**base, "kind": "queue", "action": "issued", "ticket_id": f"T{rng.getrandbits(40)}",
                "service": rng.choice(["teller", "advice"])}
    if r < 0.35:
        return {**base, "kind": "door", "door_id": rng.choice(["main", "side"]), "sensor_id": "c1",
                "direction": rng.choice(["in", "in", "out"])}
    if r < 0.6:
        action = rng.choice(["arrive", "leave"])
        ev = {**base, "kind": "visit", "action": action, "visit_id": f"v{rng.getrandbits(32)}"}
        if action == "leave":
            ev["dwell_s"] = round(rng.uniform(30, 2400), 1)
        return ev
    return {**base, "kind": "pos", "transaction_id": f"t{rng.getrandbits(32)}", "amount": round(rng.uniform(1, 300), 2),
            "items": rng.randint(1, 6)}


def make_store_stream(rng: random.Random, store_id: str, vertical: str, start_ms: int, n: int) -> tuple[list, Counter]:
    """Events of one store in send order, with out-of-order pairs, duplicates and late events mixed in."""
    clock = start_ms
    stream: list[dict[str, Any]] = []
    injected: Counter[str] = Counter()
    late_ids: set[str] = set()
    for _ in range(n):
        clock += rng.randint(1_000, 30_000)
        event = _event(rng, store_id, vertical, clock)
        r = rng.random()
        if r < 0.08 and stream:
            # Out of order: up to 2 minutes before the previous event (well within grace).
            event["ts"] = clock - rng.randint(1, 2 * MIN)
            injected["out_of_order"] += 1
        stream.append(event)
        if r > 0.95:
            # A duplicate: an event sent in the last few minutes, sent again unchanged.
            # (Never of a late one: those are older than the duplicate horizon, forgotten.)
            stream.append(dict(rng.choice([e for e in stream[-10:] if e["event_id"] not in late_ids])))
            injected["duplicates"] += 1
        elif 0.90 < r <= 0.93 and clock - start_ms > 40 * MIN:
            # Late: 30-40 minutes behind, its bucket closed long ago (bucket 15 min + grace 5 min).
            stream.append(_event(rng, store_id, vertical, clock - rng.randint(30 * MIN, 40 * MIN)))
            late_ids.add(stream[-1]["event_id"])
            injected["late"] += 1
    return stream, injected


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
        start = ev["ts"] - ev["ts"] % BUCKET_MS
        if watermark is not None and watermark >= start + BUCKET_MS + GRACE_MS:
            fates["late"] += 1
            continue
        kept.append(ev)
        watermark = ev["ts"] if watermark is None else max(watermark, ev["ts"])
    buckets: dict[int, dict[str, Any]] = {}
    occupancy = 0
    for ev in kept:
        b = buckets.setdefault(ev["ts"] - ev["ts"] % BUCKET_MS, {"arrivals": 0, "departures": 0, "transactions": 0,
                                                                 "sales": 0.0, "tickets_issued": 0, "dwell": []})
        entries = exits = 0
        if ev["kind"] == "door":
            entries, exits = ev["direction"] == "in", ev["direction"] == "out"
        elif ev["kind"] == "visit":
            entries, exits = ev["action"] == "arrive", ev["action"] == "leave"
            if "dwell_s" in ev:
                b["dwell"].append(ev["dwell_s"])
        elif ev["kind"] == "pos":
            b["transactions"] += 1
            b["sales"] += ev["amount"]
        elif ev["kind"] == "queue":
            b["tickets_issued"] += 1
        b["arrivals"] += entries
        b["departures"] += exits
        occupancy = max(0, occupancy + entries - exits)
    newest_slot = watermark // SLOT_MS
    in_15m = [ev for ev in kept if newest_slot - ev["ts"] // SLOT_MS < 15 * MIN // SLOT_MS]
    arrivals_15m = sum((ev["kind"] == "door" and ev["direction"] == "in") or (ev["kind"] == "visit" and
                                                                             ev["action"] == "arrive")
                       for ev in in_15m)
    return {"fates": fates, "buckets": buckets, "watermark": watermark, "occupancy": occupancy,
            "arrivals_15m": arrivals_15m}


def linear_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def test_kpis_and_counters_equal_the_brute_force_model(services, worker_factory, unique_prefix):
    rng = random.Random(11)
    now = dt.datetime.now(dt.UTC)
    start_ms = int((now - dt.timedelta(hours=5)).timestamp() * 1000)
    start_ms -= start_ms % BUCKET_MS
    # The daily reset 12 hours away from the data, so occupancy runs through without one.
    reset_at = f"{(now.hour + 12) % 24:02d}:00"
    stores = {"retail-a": "retail", "bank-b": "bank", "telecom-c": "telecom"}
    streams, injected, expected = {}, {}, {}
    for store_id, vertical in stores.items():
        streams[store_id], injected[store_id] = make_store_stream(rng, store_id, vertical, start_ms, 500)
        expected[store_id] = model(streams[store_id])
        # The model agrees with what was injected: the generator's late events are late, its repeats duplicates.
        assert expected[store_id]["fates"]["late"] == injected[store_id]["late"] > 0
        assert expected[store_id]["fates"]["duplicates"] == injected[store_id]["duplicates"] > 0
    messages = []
    for store_id, stream in streams.items():
        i = 0
        while i < len(stream):
            n = 1 if rng.random() < 0.7 else rng.randint(2, 8)
            chunk = stream[i:i + n]
            i += n
            messages.append((store_id.encode(), orjson.dumps(chunk if n > 1 else chunk[0])))
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    worker = worker_factory(grace_s=GRACE_MS // 1000, idle_timeout_s=0, reset_at=reset_at).start()
    client = redis.Redis.from_url(services.redis_url)
    # Half the traffic, a restart (SIGTERM) in the middle of open buckets, then the rest: duplicates of
    # events sent before the restart must still be recognised, buckets must close exact.
    half = len(messages) // 2
    send_all(services.bootstrap, f"{unique_prefix}.events", messages[:half])
    wait_until(lambda: int(client.hget(f"{unique_prefix}:stats", "messages") or 0) >= half, 90,
               "the first half applied")
    assert worker.stop(signal.SIGTERM) == 0
    worker.start()
    send_all(services.bootstrap, f"{unique_prefix}.events", messages[half:])
    kept_total = sum(len(stream) - sum(e["fates"].values()) for stream, e in
                     zip(streams.values(), expected.values(), strict=True))

    def counted() -> int:
        return int(client.hget(f"{unique_prefix}:stats", "events") or 0)

    wait_until(lambda: counted() >= kept_total, 90, f"{kept_total} events counted (so far {counted()})")
    time.sleep(2 * 1.0)  # one more flush of the live records

    stats = {k.decode(): int(v) for k, v in client.hgetall(f"{unique_prefix}:stats").items()}
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
        live = orjson.loads(client.hget(f"{unique_prefix}:store:{store_id}:live", "occupancy"))
        assert live["occupancy"] == want["occupancy"]
        windows = orjson.loads(client.hget(f"{unique_prefix}:store:{store_id}:live", "windows"))
        assert windows["15m"]["arrivals"] == want["arrivals_15m"]
        assert int(client.hget(f"{unique_prefix}:store:{store_id}:live", "duplicates")) == injected[store_id][
            "duplicates"]
        assert int(client.hget(f"{unique_prefix}:store:{store_id}:live", "late")) == injected[store_id]["late"]
