"""Insights through the real stack: a shop's and a branch's fortnight in, one insights record per local day out.

Fifteen local days (Monday 16 to Monday 30 March 2026, Europe/London: the clocks go forward on
Sunday the 29th) of door counts, till transactions and queue tickets for two stores, sent at
accelerated event time with hourly buckets. Each day's record in Redis (the latest key and the
history stream the worker writes for any newer record kind) must equal what plain loops over
the events sent give: the weekday × hour heatmap, the day against a week before, and at the
two Sundays the week against the week before, with Welch's t-test and the correlation of daily
arrivals with transactions or tickets.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import orjson
import pytest
import redis

from footfall.schemas.keys import RedisKeys
from footfall.schemas.records import record_schema
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.integration.conftest import wait_until
from tests.integration.test_pipeline import send_all
from tests.unit.test_insights import brute_pearson, brute_welch

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000
TZ = "Europe/London"
ZONE = ZoneInfo(TZ)
FIRST_DAY = dt.date(2026, 3, 16)  # a Monday
DAYS = 15
STORES = {"shop-ins-1": "retail", "bank-ins-2": "bank"}
PARTNER = {"retail": "transactions", "bank": "tickets_issued"}


def midnight_ms(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(0), ZONE).timestamp() * 1000)


def store_events(store_id: str, vertical: str, seed: int) -> list[dict[str, Any]]:
    """An event at the first instant, then each hour a few door counts and sales or tickets; one more past the end."""
    rng = random.Random(seed)
    base = {"store_id": store_id, "schema_version": 1, "region": "west", "vertical": vertical}
    events: list[dict[str, Any]] = []
    start, end = midnight_ms(FIRST_DAY), midnight_ms(FIRST_DAY + dt.timedelta(days=DAYS))
    for hour_ms in range(start, end, HOUR_MS):
        busy = 9 <= dt.datetime.fromtimestamp(hour_ms / 1000, ZONE).hour < 19
        for k in range(rng.randint(1, 3)):
            ts = hour_ms + k * 60_000 + (0 if hour_ms == start and k == 0 else rng.randint(1, 50_000))
            events.append({**base, "event_id": f"{store_id}-d{ts}-{k}", "kind": "door", "ts": ts, "door_id": "main",
                           "sensor_id": "c1", "count_in": rng.randint(2, 20) if busy else rng.randint(0, 2),
                           "count_out": rng.randint(0, 5), "interval_s": 60})
        for k in range(rng.randint(0, 4) if busy else 0):
            ts = hour_ms + 1_800_000 + k * 60_000
            if vertical == "retail":
                events.append({**base, "event_id": f"{store_id}-p{ts}", "kind": "pos", "ts": ts,
                               "transaction_id": f"t{ts}", "amount": 12.5, "items": 2, "currency": "EUR"})
            else:
                events.append({**base, "event_id": f"{store_id}-q{ts}", "kind": "queue", "ts": ts,
                               "action": "issued", "ticket_id": f"A{ts}", "service": "teller"})
    # Past the last day's end: they close its last bucket (the watermark moves on 3 corroborating events), so
    # the last day's record comes.
    for k, ts in enumerate(range(end + 600_000, end + 3 * HOUR_MS, 1_200_000)):
        events.append({**base, "event_id": f"{store_id}-end{k}", "kind": "door", "ts": ts, "door_id": "main",
                       "sensor_id": "c1", "count_in": 0, "count_out": 0, "interval_s": 60})
    return events


def expected_records(events: list[dict[str, Any]], vertical: str) -> dict[str, dict[str, Any]]:
    """Each local day's insights, by plain loops over the events (every hour of the fortnight closed)."""
    names = ["arrivals", PARTNER[vertical]]
    end = midnight_ms(FIRST_DAY + dt.timedelta(days=DAYS))
    hours: dict[str, dict[tuple[dt.date, int], int]] = {n: {} for n in names}
    for hour_ms in range(midnight_ms(FIRST_DAY), end, HOUR_MS):  # every bucket closed, empty or not
        when = dt.datetime.fromtimestamp(hour_ms / 1000, ZONE)
        for n in names:
            hours[n][(when.date(), when.hour)] = 0
    for e in events:
        if e["ts"] >= end:
            continue
        when = dt.datetime.fromtimestamp(e["ts"] / 1000, ZONE)
        key = (when.date(), when.hour)
        if e["kind"] == "door":
            hours["arrivals"][key] += e["count_in"]
        elif e["kind"] == "pos":
            hours["transactions"][key] += 1
        elif e["kind"] == "queue" and e["action"] == "issued":
            hours["tickets_issued"][key] += 1
    daily: dict[str, dict[dt.date, int]] = {n: defaultdict(int) for n in names}
    for n in names:
        for (day, _), count in hours[n].items():
            daily[n][day] += count
    out = {}
    for i in range(DAYS):
        day = FIRST_DAY + dt.timedelta(days=i)
        record: dict[str, Any] = {"series": names, "heatmap": {}, "today": {}, "week": None}
        window = [day - dt.timedelta(days=k) for k in range(28)]
        for n in names:
            mean, weeks = [[None] * 24 for _ in range(7)], [[0] * 24 for _ in range(7)]
            for w in range(7):
                for h in range(24):
                    values = [hours[n][(d, h)] for d in window if d.weekday() == w and (d, h) in hours[n]]
                    weeks[w][h] = len(values)
                    mean[w][h] = sum(values) / len(values) if values else None
            record["heatmap"][n] = {"mean": mean, "weeks": weeks}
            last_week = daily[n].get(day - dt.timedelta(days=7))
            record["today"][n] = {"total": daily[n][day], "last_week": last_week, "last_year": None}
        if day.weekday() == 6:
            week: dict[str, Any] = {"series": {}}
            for n in names:
                this = [daily[n][d] for k in range(7) if (d := day - dt.timedelta(days=k)) in daily[n]]
                last = [daily[n][d] for k in range(7, 14) if (d := day - dt.timedelta(days=k)) in daily[n]]
                t, df, p = brute_welch(this, last) if len(last) >= 2 else (None, None, None)
                week["series"][n] = {"total": sum(this), "last_total": sum(last) if last else None, "t": t, "df": df,
                                     "p": p}
            days = [d for d in window if d in daily["arrivals"]]
            week["r"] = brute_pearson([daily["arrivals"][d] for d in days], [daily[names[1]][d] for d in days])
            week["days"] = len(days)
            record["week"] = week
        out[day.isoformat()] = record
    return out


def check(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got["series"] == want["series"]
    for n in want["series"]:
        assert got["heatmap"][n]["weeks"] == want["heatmap"][n]["weeks"], (got["day"], n)
        for row_got, row_want in zip(got["heatmap"][n]["mean"], want["heatmap"][n]["mean"], strict=True):
            assert row_got == [None if v is None else pytest.approx(v, abs=5e-4) for v in row_want], (got["day"], n)
        today = got["today"][n]
        assert {k: today[k] for k in ("total", "last_week", "last_year")} == want["today"][n], (got["day"], n)
    if want["week"] is None:
        assert got["week"] is None, got["day"]
        return
    for n, w in want["week"]["series"].items():
        g = got["week"]["series"][n]
        assert (g["total"], g["last_total"]) == (w["total"], w["last_total"]), (got["day"], n)
        for key in ("t", "df", "p"):
            assert g[key] == (None if w[key] is None else pytest.approx(w[key], rel=1e-9, abs=1e-7)), (got["day"], key)
    assert got["week"]["correlation"]["days"] == want["week"]["days"]
    assert got["week"]["correlation"]["r"] == pytest.approx(want["week"]["r"])


def test_each_local_day_gets_its_insights_record_in_redis(services, worker_factory, unique_prefix):
    sent = {store: store_events(store, vertical, seed) for seed, (store, vertical) in enumerate(STORES.items())}
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    worker_factory(bucket_s=3600, grace_s=0, idle_timeout_s=0, forecast_horizon_h=1, timezone=TZ).start()
    messages = [(store.encode(), orjson.dumps(e)) for store, events in sent.items() for e in events]
    send_all(services.bootstrap, f"{unique_prefix}.events", messages)
    client = redis.Redis.from_url(services.redis_url)
    keys = RedisKeys(unique_prefix)

    def history(store: str) -> dict[str, dict[str, Any]]:
        return {r["day"]: r for r in (orjson.loads(f[b"record"]) for _, f in
                                      client.xrange(keys.store_record_history(store, "insights")))}

    wait_until(lambda: all(len(history(s)) >= DAYS for s in STORES), 60, "an insights record per day and store")
    schema = record_schema("insights")
    for store, vertical in STORES.items():
        records = history(store)
        want = expected_records(sent[store], vertical)
        assert sorted(records) == sorted(want)
        for day, record in records.items():
            jsonschema.validate(record, schema)
            assert (record["type"], record["store_id"], record["vertical"], record["tz"]) == (
                "insights", store, vertical, TZ)
            check(record, want[day])
        assert [d for d, r in records.items() if r["week"]] == ["2026-03-22", "2026-03-29"]
        last_day = (FIRST_DAY + dt.timedelta(days=DAYS - 1)).isoformat()
        latest = orjson.loads(client.get(keys.store_record(store, "insights")))
        assert latest["day"] == last_day and latest == records[last_day]

    # The region's and the chain's heatmaps (`footfall peers`, a roll-up over the stores' insights records): per
    # cell the sum over the stores of their means, counted here from the events sent.
    from footfall.schemas.keys import CHAIN
    from footfall.scripts.peers import refresh

    refresh(client, keys, min_cells=1)
    wants = [expected_records(sent[store], vertical)[last_day]["heatmap"] for store, vertical in STORES.items()]
    series = sorted({n for w in wants for n in w})
    for level, key in (("region", "west"), ("chain", CHAIN)):
        got = orjson.loads(client.get(keys.rollup_heatmap(level, key)))
        jsonschema.validate(got, record_schema("rollup_heatmap"))
        assert (got["level"], got["key"], got["stores"], got["day"]) == (level, key, len(STORES), last_day)
        assert sorted(got["heatmap"]) == series
        for n in series:
            cells = [[[w[n]["mean"][d][h] for w in wants if n in w and w[n]["mean"][d][h] is not None]
                      for h in range(24)] for d in range(7)]
            assert got["heatmap"][n]["stores"] == [[len(c) for c in row] for row in cells], n
            assert got["heatmap"][n]["sum"] == [[pytest.approx(sum(c), abs=2e-3) if c else None for c in row]
                                                for row in cells], n
