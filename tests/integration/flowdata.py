"""Test traffic for the pipeline tests, and the brute-force totals it must produce.

The reference here is written apart from `operators/`: plain loops over the
event dicts the test sends, so a bug in the operators cannot hide in both.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

BUCKET_MS = 900_000
#: Every raw identifier the tests send starts with this, so outputs can be searched for it.
RAW_ID_MARK = "RAWID-"

COMPARED = (
    "arrivals", "departures", "transactions", "items", "tickets_issued", "tickets_called", "tickets_served",
    "tickets_abandoned", "tickets_no_show", "heartbeats", "events",
)


@dataclass
class Traffic:
    """Messages to send (key, value) and what the worker must make of them."""

    messages: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    valid_events: list[dict[str, Any]] = field(default_factory=list)
    expected_rejects: int = 0
    raw_identifiers: set[str] = field(default_factory=set)

    def expected_buckets(self) -> dict[tuple[str, int], dict[str, Any]]:
        return brute_force_buckets(self.valid_events)


def _iso(ts_ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).isoformat()


def make_valid_traffic(
    rng: random.Random, *, stores: int, events_per_store: int, start_ms: int, span_ms: int,
    batch_fraction: float = 0.4, miskeyed_fraction: float = 0.02, last_at_span_end: bool = False,
) -> Traffic:
    """Valid events of every kind from stores of all three verticals, in per-store time order.

    `last_at_span_end`: each store's last event a second before the span's end. An idle store's event
    time runs on with the wall clock from its last event, so a span ending on a bucket boundary then has
    every last bucket closed by an idle tick within seconds, not after the random gap (up to minutes).
    """
    traffic = Traffic()
    verticals = ["retail", "bank", "telecom"]
    for s in range(stores):
        vertical = verticals[s % 3]
        store_id = f"{vertical}-{s:03d}"
        region = f"region-{s % 2}"
        times = sorted(start_ms + rng.randrange(span_ms) for _ in range(events_per_store))
        if last_at_span_end:
            times[-1] = start_ms + span_ms - 1_000
        events = [_event(rng, store_id, vertical, region, ts, traffic) for ts in times]
        traffic.valid_events.extend(events)
        i = 0
        while i < len(events):
            if rng.random() < batch_fraction:
                n = rng.randint(2, 25)
                chunk = events[i : i + n]
                i += n
                value = orjson.dumps(chunk)
            else:
                value = orjson.dumps(events[i])
                i += 1
            key = store_id.encode()
            if rng.random() < miskeyed_fraction:
                key = rng.choice([b"other-store", None])
            traffic.messages.append((key, value))
    return traffic


def _event(rng: random.Random, store_id: str, vertical: str, region: str, ts_ms: int, traffic: Traffic) -> dict:
    base: dict[str, Any] = {
        "event_id": uuid.UUID(int=rng.getrandbits(128)).hex, "store_id": store_id, "schema_version": 1,
        "region": region, "vertical": vertical,
        # Both time forms producers may use.
        "ts": ts_ms if rng.random() < 0.5 else _iso(ts_ms),
    }

    def raw_id() -> str:
        value = f"{RAW_ID_MARK}{rng.getrandbits(48):012x}"
        traffic.raw_identifiers.add(value)
        return value

    r = rng.random()
    if r < 0.08:
        return {**base, "kind": "heartbeat", "sensor_id": "c1", "status": "ok", "device_id": raw_id()}
    if vertical == "retail":
        if r < 0.45:
            return {**base, "kind": "door", "door_id": "main", "sensor_id": "c1",
                    "direction": rng.choice(["in", "out"])}
        if r < 0.7:
            return {**base, "kind": "door", "door_id": "side", "sensor_id": "c2", "count_in": rng.randint(0, 30),
                    "count_out": rng.randint(0, 30), "interval_s": 60}
        return {**base, "kind": "pos", "transaction_id": f"t{rng.getrandbits(32)}",
                "amount": round(rng.uniform(1, 200), 2), "items": rng.randint(1, 9), "currency": "EUR",
                "customer_id": raw_id()}
    if vertical == "bank":
        if r < 0.4:
            return {**base, "kind": "door", "door_id": "main", "sensor_id": "c1",
                    "direction": rng.choice(["in", "out"])}
        action = rng.choice(["issued", "issued", "called", "served", "abandoned", "no_show"])
        ev = {**base, "kind": "queue", "action": action, "ticket_id": f"A{rng.randint(1, 999)}",
              "service": rng.choice(["teller", "advice"]), "customer_id": raw_id()}
        if action in ("called", "served", "abandoned"):
            ev["wait_s"] = round(rng.uniform(0, 900), 1)
        if action == "served":
            ev["service_s"] = round(rng.uniform(60, 900), 1)
        return ev
    if r < 0.75:
        action = rng.choice(["arrive", "leave"])
        ev = {**base, "kind": "visit", "action": action, "visit_id": f"v{rng.getrandbits(32)}",
              "visitor_id": raw_id()}
        if action == "leave":
            ev["dwell_s"] = round(rng.uniform(30, 3600), 1)
        return ev
    return {**base, "kind": "pos", "transaction_id": f"t{rng.getrandbits(32)}", "amount": round(rng.uniform(5, 900), 2),
            "items": rng.randint(1, 3), "customer_id": raw_id()}


def _ts_ms(ts: Any) -> int:
    import datetime as dt

    if isinstance(ts, int):
        return ts
    return round(dt.datetime.fromisoformat(ts).timestamp() * 1000)


def brute_force_buckets(events: list[dict[str, Any]], bucket_ms: int = BUCKET_MS) -> dict[tuple[str, int], dict]:
    """Totals per (store, bucket start ms), straight from the definitions in the README."""
    out: dict[tuple[str, int], dict[str, Any]] = defaultdict(lambda: dict.fromkeys(COMPARED, 0) | {"sales": 0.0})
    for ev in events:
        ts = _ts_ms(ev["ts"])
        row = out[(ev["store_id"], ts - ts % bucket_ms)]
        row["events"] += 1
        kind = ev["kind"]
        if kind == "door":
            if "direction" in ev:
                row["arrivals"] += ev["direction"] == "in"
                row["departures"] += ev["direction"] == "out"
            else:
                row["arrivals"] += ev["count_in"]
                row["departures"] += ev["count_out"]
        elif kind == "visit":
            row["arrivals"] += ev["action"] == "arrive"
            row["departures"] += ev["action"] == "leave"
        elif kind == "pos":
            row["transactions"] += 1
            row["items"] += ev["items"]
            row["sales"] += ev["amount"]
        elif kind == "queue":
            row[f"tickets_{ev['action']}"] += 1
        elif kind == "heartbeat":
            row["heartbeats"] += 1
    return dict(out)


def _good_door(rng: random.Random, store_id: str, ts_ms: int) -> dict[str, Any]:
    return {"event_id": uuid.UUID(int=rng.getrandbits(128)).hex, "store_id": store_id, "kind": "door",
            "ts": ts_ms, "schema_version": 1, "door_id": "d", "sensor_id": "c", "direction": "in"}


def make_malformed(rng: random.Random, n: int, store_id: str, ts_ms: int, now_ms: int, traffic: Traffic) -> None:
    """Append at least `n` bad inputs (single messages and bad batch elements) to `traffic`."""
    made = 0
    while made < n:
        case = made % 16
        good = _good_door(rng, store_id, ts_ms + made)
        bad = dict(good)
        if case == 0:
            payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 60))) + b"\xff\xfe"  # not UTF-8
        elif case == 1:
            payload = b'{"event_id": "x", "store_id": ' + str(made).encode()  # truncated JSON
        elif case == 2:
            payload = rng.choice([b"42", b'"a string"', b"null", b"true", b"3.5"])  # not an object
        elif case == 3:
            bad.pop(rng.choice(["event_id", "store_id", "kind", "ts", "schema_version", "door_id"]))
            bad["customer_id"] = f"{RAW_ID_MARK}bad{made}"  # a raw id inside a bad event: must not leak
            traffic.raw_identifiers.add(bad["customer_id"])
            payload = orjson.dumps(bad)
        elif case == 4:
            bad[rng.choice(["store_id", "event_id", "door_id"])] = rng.choice([12, [1], {"a": 1}, True])
            payload = orjson.dumps(bad)
        elif case == 5:
            bad.pop("direction")
            bad.update(count_in=-rng.randint(1, 100), count_out=0, interval_s=60)  # negative count
            payload = orjson.dumps(bad)
        elif case == 6:
            payload = orjson.dumps(bad).replace(b'"direction":"in"', b'"count_in":NaN,"count_out":0,"interval_s":60')
        elif case == 7:
            bad["store_id"] = "s" * rng.randint(65, 5000)  # huge string
            payload = orjson.dumps(bad)
        elif case == 8:
            bad["event_id"] = "e" * 200_000
            payload = orjson.dumps(bad)
        elif case == 9:
            bad["ts"] = now_ms + rng.randint(2, 1000) * 86_400_000  # far future
            payload = orjson.dumps(bad)
        elif case == 10:
            bad["ts"] = rng.choice([0, 86_400_000, "1990-05-01T00:00:00Z", "1969-12-31T23:59:59+00:00"])  # far past
            payload = orjson.dumps(bad)
        elif case == 11:
            bad["ts"] = rng.choice(["yesterday", "2026-13-45T00:00:00Z", "2026-01-01T10:00:00", 1.5e12, None])
            payload = orjson.dumps(bad)
        elif case == 12:
            bad["kind"] = rng.choice(["teleport", "", "DOOR"])
            payload = orjson.dumps(bad)
        elif case == 13:
            bad["schema_version"] = rng.choice([0, 99, "1", -1])
            payload = orjson.dumps(bad)
        elif case == 14:
            payload = rng.choice([b"", b"[]", b"   ", b"{}"])
        else:
            # A batch mixing good and bad elements: only the bad ones are rejected.
            bad_elements = [dict(good, direction="sideways"), "not an object", dict(good, sensor_id=None)]
            goods = [_good_door(rng, store_id, ts_ms + made + k) for k in range(3)]
            batch = goods + bad_elements
            rng.shuffle(batch)
            traffic.messages.append((store_id.encode(), orjson.dumps(batch)))
            traffic.valid_events.extend(goods)
            traffic.expected_rejects += len(bad_elements)
            made += len(bad_elements)
            continue
        traffic.messages.append((store_id.encode(), payload))
        traffic.expected_rejects += 1
        made += 1
