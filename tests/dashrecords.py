"""Records in the worker's shapes (live, bucket, forecast, alert, insights, segments, quality) for the dashboard.

Live and bucket records go to Redis through the worker's own `RedisSink`, so the keys, hashes,
roll-ups and pub/sub messages are exactly the worker's; forecasts and alerts are written in the
layout their stages publish (a hash per store, a pub/sub channel). Insights, segments and quality
records (built here checked against their committed JSON Schema, `validated`) go through the sink too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import json
import random
from typing import Any

import jsonschema
import orjson
import redis

from footfall.schemas.jsonschema import record_schema_path
from footfall.schemas.keys import RedisKeys
from footfall.stream.settings import Settings
from footfall.stream.sinks import RedisSink

BUCKET_MS = 900_000


def publish(settings: Settings, records: list[dict[str, Any]]) -> None:
    """Write live and bucket records with the worker's own sink.

    On a loop of its own in a thread of its own: a caller may hold a running loop (Playwright's sync API does).
    """
    async def main() -> None:
        sink = RedisSink(settings)
        try:
            assert await sink.publish(records)
        finally:
            await sink.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, main()).result(timeout=60)


def day_of(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).date().isoformat()


def live_record(store_id: str, *, region: str, vertical: str, as_of_ms: int, rng: random.Random,
                emitted_at_ms: int | None = None) -> dict[str, Any]:
    """A store's live record (UTC store), with a queue for banks and telecom shops."""
    a15 = rng.randrange(0, 80)
    today = rng.randrange(100, 3000)
    tx = rng.randrange(0, today // 3)
    queue = None
    if vertical in ("bank", "telecom"):
        waiting = rng.randrange(0, 25)
        queue = {"services": {}, "as_of_ms": as_of_ms, "total": {
            "issued": rng.randrange(50, 400), "waiting_now": waiting, "in_service_now": rng.randrange(0, 5),
            "counters_active": rng.randrange(1, 6), "est_wait_s": float(waiting * rng.randrange(30, 120)),
            "service_level_pct": round(rng.uniform(60, 100), 2), "wait_p90_s": rng.uniform(60, 900)}}
    return {
        "type": "live", "store_id": store_id, "region": region, "vertical": vertical, "tz": "UTC",
        "as_of_ms": as_of_ms, "day": day_of(as_of_ms),
        "windows": {"5m": {"arrivals": a15 // 3, "departures": 0, "transactions": 0, "tickets_issued": 0},
                    "15m": {"arrivals": a15, "departures": a15 // 2, "transactions": a15 // 4, "tickets_issued": 0},
                    "60m": {"arrivals": a15 * 4, "departures": 0, "transactions": 0, "tickets_issued": 0}},
        "occupancy": {"occupancy": rng.randrange(0, 120), "drift": 0, "reset_residual": None,
                      "last_reset_ms": None, "next_reset_ms": None, "late": 0},
        "today": {"arrivals": today, "visitors": today, "transactions": tx, "sales": round(tx * 23.5, 2),
                  "conversion_rate": tx / today},
        "same_day_last_week": {"arrivals": today + 40, "visitors": today + 40, "transactions": tx,
                               "sales": 0.0, "conversion_rate": tx / (today + 40)},
        "queue": queue, "duplicates": 0, "late": 0,
        "emitted_at_ms": emitted_at_ms if emitted_at_ms is not None else as_of_ms,
    }


def bucket_record(store_id: str, *, region: str, vertical: str, start_ms: int, arrivals: int,
                  last_week: int | None, closed: bool) -> dict[str, Any]:
    """A bucket record with the fields the dashboard and the roll-ups read."""
    record: dict[str, Any] = {
        "type": "bucket", "store_id": store_id, "region": region, "vertical": vertical, "tz": "UTC",
        "day": day_of(start_ms), "bucket_start": dt.datetime.fromtimestamp(start_ms / 1000, dt.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"),
        "bucket_start_ms": start_ms, "bucket_s": BUCKET_MS // 1000, "status": "closed" if closed else "open",
        "arrivals": arrivals, "departures": arrivals, "visitors": arrivals, "transactions": arrivals // 4,
        "sales": 0.0, "emitted_at_ms": start_ms,
    }
    if closed:
        record["compare"] = {"arrivals": {"value": arrivals, "last_week": last_week}}
    return record


def forecast_record(store_id: str, made_at_ms: int, horizons: int = 8) -> dict[str, Any]:
    points = []
    for h in range(1, horizons + 1):
        value = 40.0 + 5 * h
        points.append({"target_ms": made_at_ms + h * BUCKET_MS, "h": h, "forecast": value,
                       "lo80": value - 8, "hi80": value + 8, "lo95": value - 14, "hi95": value + 14})
    return {"type": "forecast", "store_id": store_id, "series": "arrivals", "made_at_ms": made_at_ms,
            "bucket_ms": BUCKET_MS, "model": "calendar_regression", "cold": False, "points": points}


def alert_record(store_id: str, alert_id: str, *, severity: str = "warning", state: str = "opened",
                 kind: str = "surge", at_ms: int = 0, explanation: str = "") -> dict[str, Any]:
    return {"type": "alert", "alert_id": alert_id, "store_id": store_id, "kind": kind, "severity": severity,
            "state": state, "started_ms": at_ms, "updated_ms": at_ms, "bucket_start_ms": at_ms - 1_800_000,
            "bucket_end_ms": at_ms, "observed": 312, "expected": 150, "expected_lo": 120, "expected_hi": 180,
            "score": 4.2, "explanation": explanation or "arrivals 312 in 14:00-14:30, expected 120-180"}


def put_forecast(client: redis.Redis, prefix: str, forecast: dict[str, Any]) -> None:
    keys, body = RedisKeys(prefix), orjson.dumps(forecast)
    client.hset(keys.store_forecast(forecast["store_id"]), forecast["series"], body)
    client.publish(keys.forecast_channel(forecast["store_id"]), body)


def put_alert(client: redis.Redis, prefix: str, alert: dict[str, Any]) -> None:
    """Open, update or resolve an alert as the alerting stage does: hash, history stream, channel."""
    keys, body = RedisKeys(prefix), orjson.dumps(alert)
    key = keys.store_alerts(alert["store_id"])
    if alert["state"] == "resolved":
        client.hdel(key, alert["alert_id"])
    else:
        client.hset(key, alert["alert_id"], body)
    client.xadd(keys.alerts_history, {"record": body}, maxlen=1000, approximate=True)
    client.publish(keys.alerts_channel, body)


# -- insights and segments: checked against their JSON Schema ------------------------------------------------


def validated(record: dict[str, Any]) -> dict[str, Any]:
    """`record` itself, once it validates against the committed schema of its type (formats checked too)."""
    schema = json.loads(record_schema_path(record["type"]).read_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    validator.validate(orjson.loads(orjson.dumps(record)))  # as on the wire
    return record


def _change_pct(total: int | None, before: int | None) -> float | None:
    return round(100 * (total - before) / before, 2) if total is not None and before else None


def day_versus(total: int | None, last_week: int | None, last_year: int | None) -> dict[str, Any]:
    """One series' day against the same weekday last week and last year, as the insights stage gives it."""
    return {"total": total, "last_week": last_week,
            "last_week_change": None if total is None or last_week is None else total - last_week,
            "last_week_change_pct": _change_pct(total, last_week), "last_year": last_year,
            "last_year_change": None if total is None or last_year is None else total - last_year,
            "last_year_change_pct": _change_pct(total, last_year)}


def week_versus(mean: float, last_mean: float, p: float | None, days: int = 7) -> dict[str, Any]:
    """One series' week against the week before (daily means given; spreads made up but plausible)."""
    total, last_total = round(mean * days), round(last_mean * days)
    return {"total": total, "last_total": last_total, "change": total - last_total,
            "change_pct": _change_pct(total, last_total), "days": days, "last_days": days, "mean": mean, "sd": 12.5,
            "last_mean": last_mean, "last_sd": 11.0, "t": None if p is None else 2.4, "df": None if p is None else 11.8,
            "p": p, "significant": None if p is None else p < 0.05}


def insights_record(store_id: str, day: str, *, cells: dict[tuple[int, int], float] | None = None,
                    today: dict[str, dict[str, Any]] | None = None, made_at_ms: int | None = None,
                    vertical: str = "retail") -> dict[str, Any]:
    """A UTC store's insights record for `day` (validated): arrivals and transactions, open 09:00-18:00 every day.

    `cells` set heatmap means of arrivals by (weekday, hour), Monday 0; on a Sunday the record has its
    week's summary, else `week` is null.
    """
    first = dt.date.fromisoformat(day)
    start_ms = int(dt.datetime.combine(first, dt.time(), dt.UTC).timestamp() * 1000)
    series = ["arrivals", "transactions"]
    heatmap = {}
    for scale, name in ((1.0, "arrivals"), (0.25, "transactions")):
        mean = [[round(scale * (10 + 2 * d + h), 3) if 9 <= h < 18 else None for h in range(24)] for d in range(7)]
        if name == "arrivals":
            for (d, h), value in (cells or {}).items():
                mean[d][h] = value
        heatmap[name] = {"mean": mean, "weeks": [[0 if v is None else 4 for v in row] for row in mean]}
    week = None
    if first.weekday() == 6:
        week = {"week_start": (first - dt.timedelta(days=6)).isoformat(), "week_end": day,
                "series": {"arrivals": week_versus(212.4, 190.1, 0.031), "transactions": week_versus(52.3, 51.0, 0.62)},
                "correlation": {"x": "arrivals", "y": "transactions", "r": 0.87, "days": 28}}
    return validated({
        "type": "insights", "store_id": store_id, "region": "north", "vertical": vertical, "tz": "UTC", "day": day,
        "day_start_ms": start_ms, "day_end_ms": start_ms + 86_400_000,
        "made_at_ms": made_at_ms if made_at_ms is not None else start_ms + 86_400_000, "series": series,
        "heatmap_from": (first - dt.timedelta(days=27)).isoformat(), "heatmap": heatmap,
        "today": today or {"arrivals": day_versus(412, 400, 380), "transactions": day_versus(95, 100, None)},
        "week": week, "emitted_at_ms": start_ms + 86_400_000 + 5,
    })


def segment_set(kind: str, counts: list[tuple[str, int, int]]) -> dict[str, Any]:
    """One kind's segments from (description, day count, bucket count), ids in order, shares from the counts."""
    day_events, bucket_events = sum(c[1] for c in counts), sum(c[2] for c in counts)
    till = kind == "till"
    segments = [{"segment_id": i, "description": text,
                 "centre": {"items": 1.0 + i if till else None, "amount": 9.5 * (i + 1) if till else None,
                            "dwell_s": None if till else 300.0 * (i + 1), "spend": None if till else 4.0 * i,
                            "hour": 10.5 + 2 * i, "weekend": 0.2},
                 "bucket_count": bucket, "day_count": day,
                 "bucket_share": bucket / bucket_events if bucket_events else None,
                 "day_share": day / day_events if day_events else None}
                for i, (text, day, bucket) in enumerate(counts)]
    return {"kind": kind, "k": len(segments), "events_learned": 500 + day_events, "bucket_events": bucket_events,
            "day_events": day_events, "segments": segments}


def segments_record(store_id: str, made_at_ms: int, kinds: list[dict[str, Any]]) -> dict[str, Any]:
    """A UTC store's segments record at the closed bucket starting `made_at_ms` (validated)."""
    return validated({"type": "segments", "store_id": store_id, "region": "north", "vertical": "retail", "tz": "UTC",
                      "made_at_ms": made_at_ms, "bucket_ms": BUCKET_MS, "day": day_of(made_at_ms), "kinds": kinds,
                      "emitted_at_ms": made_at_ms + BUCKET_MS + 5})


def quality_record(store_id: str, bucket_start_ms: int, coverage: dict[str, float], *,
                   uptime: dict[str, float] | None = None, door_in: int = 40, door_out: int = 37) -> dict[str, Any]:
    """A UTC store's quality record of the bucket starting `bucket_start_ms` (validated), graded as the stage does.

    `coverage`: each known sensor's share of the bucket; `uptime` (each sensor's share of the day before the
    bucket's) makes it the record that ends a local day.
    """
    ok_coverage, missing_coverage = 0.9, 0.1
    mean = sum(coverage.values()) / len(coverage) if coverage else None
    if mean is None:
        quality = "no_sensors"
    elif all(c >= ok_coverage for c in coverage.values()):
        quality = "ok"
    elif mean <= missing_coverage:
        quality = "missing"
    else:
        quality = "partial"
    day = None
    if uptime is not None:
        end = dt.datetime.fromtimestamp((bucket_start_ms + BUCKET_MS) / 1000, dt.UTC)
        start = end - dt.timedelta(days=1)
        day = {"day": start.date().isoformat(), "day_start_ms": int(start.timestamp() * 1000),
               "day_end_ms": int(end.timestamp() * 1000), "hours": 24.0, "sensors": uptime}
    return validated({
        "type": "quality", "store_id": store_id, "region": "north", "vertical": "retail", "tz": "UTC",
        "bucket_start_ms": bucket_start_ms, "bucket_ms": BUCKET_MS, "quality": quality,
        "coverage": None if mean is None else round(mean, 4), "sensors_known": len(coverage),
        "sensors": [{"sensor_id": sid, "coverage": c, "reported": c > 0,
                     "last_seen_ms": bucket_start_ms + (int(c * BUCKET_MS) if c > 0 else -BUCKET_MS), "graded": True}
                    for sid, c in sorted(coverage.items())],
        "silent_sensors": sorted(sid for sid, c in coverage.items() if c == 0), "sensors_dropped": 0,
        "door_in": door_in, "door_out": door_out, "imbalance": door_in - door_out,
        "imbalance_ratio": (door_in - door_out) / max(door_in, 1), "uptime": day,
        "thresholds": {"ok_coverage": ok_coverage, "missing_coverage": missing_coverage},
        "emitted_at_ms": bucket_start_ms + BUCKET_MS + 5,
    })
