"""`footfall peers` against a real Redis: insights records in, peers records and groups out, ids stable.

Planted: stores of two hour-of-week shapes (daytime, evening) of different sizes, their insights
records valid against the committed insights schema. Oracles: the planted shapes (adjusted Rand
index) and brute-force medians of the other members' totals. Kafka is not used.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import jsonschema
import orjson
import pytest
import redis

from footfall.operators.segments.ari import adjusted_rand_index
from footfall.schemas.jsonschema import record_schema_path
from footfall.schemas.keys import RedisKeys
from footfall.scripts.cli import main

INSIGHTS = jsonschema.Draft202012Validator(json.loads(record_schema_path("insights").read_text()),
                                           format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
PEERS = jsonschema.Draft202012Validator(json.loads(record_schema_path("peers").read_text()),
                                        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
GROUPS = jsonschema.Draft202012Validator(json.loads(record_schema_path("peer_groups").read_text()),
                                         format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def versus(total: int | None) -> dict[str, Any]:
    return {"total": total, "last_week": None, "last_week_change": None, "last_week_change_pct": None,
            "last_year": None, "last_year_change": None, "last_year_change_pct": None}


def insights(store_id: str, shape: str, day: dt.date, rng: random.Random) -> dict[str, Any]:
    """A store's insights record: a daytime (9-17h) or evening (18-23h) heatmap of its own size, noisy."""
    scale = 1 + 5 * rng.random()
    mean: list[list[float | None]] = []
    for _ in range(7):
        row: list[float | None] = []
        for h in range(24):
            busy = 9 <= h < 17 if shape == "day" else h >= 18
            row.append(None if h < 2 and shape == "day" else round(scale * ((15 if busy else 1) + rng.random()), 3))
        mean.append(row)
    start_ms = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp() * 1000)
    return {
        "type": "insights", "store_id": store_id, "region": "north", "vertical": "retail", "tz": "UTC",
        "day": day.isoformat(), "day_start_ms": start_ms, "day_end_ms": start_ms + 86_400_000,
        "made_at_ms": start_ms + 86_400_000, "series": ["arrivals", "transactions"],
        "heatmap_from": (day - dt.timedelta(days=27)).isoformat(),
        "heatmap": {"arrivals": {"mean": mean, "weeks": [[4] * 24 for _ in range(7)]},
                    "transactions": {"mean": [[None] * 24 for _ in range(7)], "weeks": [[0] * 24 for _ in range(7)]}},
        "today": {"arrivals": versus(int(scale * 200) + rng.randint(0, 50)), "transactions": versus(None)},
        "week": None, "emitted_at_ms": start_ms + 86_400_000,
    }


def median(values: list[float]) -> float | None:
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return None
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def write(client: redis.Redis, keys: RedisKeys, records: dict[str, dict[str, Any]]) -> None:
    for store_id, record in records.items():
        assert list(INSIGHTS.iter_errors(record)) == [], store_id
        client.set(keys.store_record(store_id, "insights"), orjson.dumps(record))


def read_peers(client: redis.Redis, keys: RedisKeys, stores: list[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for store_id in stores:
        raw = client.get(keys.store_record(store_id, "peers"))
        assert raw is not None, store_id
        out[store_id] = orjson.loads(raw)
        assert list(PEERS.iter_errors(out[store_id])) == [], store_id
    return out


def check_against_planted(peers: dict[str, dict[str, Any]], records: dict[str, dict[str, Any]],
                          shapes: dict[str, str]) -> None:
    stores = sorted(records)
    assert adjusted_rand_index([shapes[s] for s in stores], [peers[s]["group_id"] for s in stores]) == 1.0
    for store_id, record in peers.items():
        others = [s for s in stores if s != store_id and shapes[s] == shapes[store_id]]
        want = median([records[s]["today"]["arrivals"]["total"] for s in others])
        total = records[store_id]["today"]["arrivals"]["total"]
        assert record["arrivals"] == total
        assert record["peer_median_arrivals"] == want
        assert record["vs_peers_pct"] == pytest.approx(100 * (total / want - 1), abs=0.005)
        assert sorted(record["peers"]) == others
        assert record["day"] == records[store_id]["day"]


def test_peers_command_groups_compares_and_keeps_ids(services, unique_prefix: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    keys = RedisKeys(unique_prefix)
    client = redis.Redis.from_url(services.redis_url)
    rng = random.Random(11)
    day = dt.date(2026, 3, 4)
    shapes = {f"store-{i:02d}": "day" if i % 2 else "evening" for i in range(1, 9)}
    records = {s: insights(s, shape, day, rng) for s, shape in shapes.items()}
    sparse = insights("store-sparse", "day", day, rng)
    sparse["heatmap"]["arrivals"]["mean"] = [[None] * 24 for _ in range(5)] + sparse["heatmap"]["arrivals"]["mean"][5:]
    write(client, keys, {**records, "store-sparse": sparse})
    client.set(keys.store_record("store-history", "insights-history"), b"not matched by the scan")
    sub = client.pubsub()
    sub.subscribe(keys.record_channel("peers", "store-01"))
    sub.get_message(timeout=5)  # the subscribe confirmation

    assert main(["peers", "--redis-url", services.redis_url, "--prefix", unique_prefix]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"peers {day.isoformat()}: 9 stores read, 8 grouped, 1 left out; k=2"), line

    peers = read_peers(client, keys, sorted(records))
    check_against_planted(peers, records, shapes)
    assert client.get(keys.store_record("store-sparse", "peers")) is None
    groups = orjson.loads(client.get(keys.peers_groups))
    assert list(GROUPS.iter_errors(groups)) == []
    assert groups["k"] == 2 and set(groups["left_out"]) == {"store-sparse"}
    assert sorted(sorted(g["stores"]) for g in groups["groups"]) == sorted(
        [sorted(s for s in shapes if shapes[s] == "day"), sorted(s for s in shapes if shapes[s] == "evening")])
    message = sub.get_message(timeout=5)
    assert message is not None and orjson.loads(message["data"]) == peers["store-01"]
    sub.close()
    assert client.get(keys.peers_state) is not None
    first_ids = {s: r["group_id"] for s, r in peers.items()}

    # Next day, with a new evening store whose id sorts first: a fresh grouping would number its group 0.
    next_day = day + dt.timedelta(days=1)
    records2 = {s: insights(s, shape, next_day, rng) for s, shape in shapes.items()}
    records2["store-00"] = insights("store-00", "evening", next_day, rng)
    shapes2 = {**shapes, "store-00": "evening"}
    write(client, keys, records2)
    assert main(["peers", "--redis-url", services.redis_url, "--prefix", unique_prefix]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"peers {next_day.isoformat()}: 10 stores read, 9 grouped, 1 left out; k=2"), line
    peers2 = read_peers(client, keys, sorted(records2))
    check_against_planted(peers2, records2, shapes2)
    assert {s: peers2[s]["group_id"] for s in shapes} == first_ids
    assert peers2["store-00"]["group_id"] == first_ids["store-02"]  # joined the evening group's id
    assert first_ids["store-01"] == 0 and peers2["store-00"]["group_id"] == 1
    client.close()


def test_peers_command_on_an_empty_prefix_says_so(services, unique_prefix: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["peers", "--redis-url", services.redis_url, "--prefix", unique_prefix]) == 0
    assert capsys.readouterr().out.strip() == "peers -: 0 stores read, 0 grouped, 0 left out; k=0; groups none"
