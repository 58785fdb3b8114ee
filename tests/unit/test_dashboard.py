"""The dashboard's app: input checks, escaping, headers, JSON endpoints and the event stream.

The endpoints run in aiohttp's test server against a real redis-server (started for this module);
records are written with the worker's own `RedisSink`, so the layout read is the worker's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from aiohttp.test_utils import TestClient, TestServer

from footfall.schemas.keys import RedisKeys
from footfall.scripts.stack import LocalStack, StackError
from footfall.stream.dashboard import COOKIE, create_app, host_of
from footfall.stream.dashboard_data import ReadCache
from footfall.stream.dashboard_views import (
    StoreQuery,
    parse_alert,
    parse_forecast,
    parse_staffing,
    staffing_point,
    staffing_view,
    store_row,
    valid_store_id,
)
from footfall.stream.settings import Settings
from tests.dashrecords import (
    BUCKET_MS,
    alert_record,
    bucket_record,
    forecast_record,
    insights_record,
    live_record,
    publish,
    put_alert,
    put_forecast,
    quality_record,
    segment_set,
    segments_record,
)

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of this module's own (the app's pub/sub is checked by killing its connection)."""
    try:
        stack = LocalStack(tmp_path_factory.mktemp("redis"), broker="none", progress=lambda m: None).start()
    except StackError as exc:
        pytest.skip(f"no redis-server: {exc}")
    try:
        yield stack.redis_url
    finally:
        stack.stop()


@pytest.fixture
def prefix() -> str:
    return f"d{uuid.uuid4().hex[:10]}"


def run(settings: Settings, body: Callable[[TestClient], Awaitable[None]], **app_options: Any) -> None:
    async def main() -> None:
        app = create_app(settings, push_interval_s=0.05, **app_options)
        async with TestClient(TestServer(app)) as client:
            await body(client)

    asyncio.run(main())



NOW_MS = (int(time.time() * 1000) // BUCKET_MS) * BUCKET_MS + 123_000
STORES = [("retail-001", "north", "retail"), ("bank-002", "south", "bank"), ("telecom-003", "north", "telecom"),
          ("retail-004", "south", "retail")]


def seed(settings: Settings) -> dict[str, dict[str, Any]]:
    """Four stores' live records and a few buckets of retail-001 today; returns the live records."""
    rng = random.Random(7)
    lives = {sid: live_record(sid, region=region, vertical=vertical, as_of_ms=NOW_MS, rng=rng)
             for sid, region, vertical in STORES}
    start = NOW_MS - NOW_MS % BUCKET_MS
    buckets = [bucket_record("retail-001", region="north", vertical="retail", start_ms=start - k * BUCKET_MS,
                             arrivals=10 + k, last_week=8 + k, closed=k > 0) for k in range(3)]
    publish(settings, [*buckets, *lives.values()])
    return lives


# -- checks of input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ("retail-001", True),
        ("a", True),
        ("Store_1.2:3-x", True),  # every allowed punctuation
        ("x" * 64, True),  # longest
        ("x" * 65, False),  # too long
        ("", False),
        ("-leading", False),  # must start with a letter or digit
        ("..", False),
        ("a/b", False),
        ("a b", False),
        (HOSTILE, False),
        ("ünï", False),
        ("a\nb", False),
    ],
)
def test_store_id_pattern(raw: str, ok: bool):
    if ok:
        assert valid_store_id(raw) == raw
    else:
        with pytest.raises(ValueError, match="invalid store id"):
            valid_store_id(raw)


@pytest.mark.parametrize(
    "query",
    [
        {"sort": "nope"},
        {"sort": "__proto__"},
        {"order": "sideways"},
        {"q": HOSTILE},
        {"q": "x" * 65},
        {"vertical": "pharmacy"},
        {"region": '"><img src=x>'},
        {"region": "a\x00b"},
        {"alerts": "yes"},
    ],
)
def test_bad_view_parameters_are_refused(query: dict[str, str]):
    with pytest.raises(ValueError) as info:
        StoreQuery.from_query(query)
    assert "<" not in str(info.value) and "proto" not in str(info.value)


def test_view_sorts_filters_and_puts_missing_values_last():
    rows = [{"store_id": "b", "region": "north", "vertical": "bank", "waiting_now": 3},
            {"store_id": "r", "region": "north", "vertical": "retail", "waiting_now": None},
            {"store_id": "t", "region": "south", "vertical": "telecom", "waiting_now": 9}]
    ids = lambda q: [r["store_id"] for r in StoreQuery.from_query(q).apply(rows)]  # noqa: E731
    assert ids({"sort": "waiting_now", "order": "desc"}) == ["t", "b", "r"]
    assert ids({"sort": "waiting_now", "order": "asc"}) == ["b", "t", "r"]
    assert ids({"region": "north"}) == ["b", "r"]
    assert ids({"q": "SOUTH"}) == ["t"]
    assert ids({"vertical": "retail"}) == ["r"]


def test_parsers_tolerate_what_they_do_not_expect():
    assert store_row({})["arrivals_15m"] is None
    assert store_row({"windows": "x", "today": [], "queue": 3, "occupancy": {"occupancy": "7"}})["occupancy"] is None
    assert store_row({"today": {"visitors": 10}, "same_day_last_week": {"visitors": 0}})["vs_last_week"] is None
    assert parse_forecast({"points": [{"target_ms": "x"}, {"forecast": 1}]}) is None
    assert parse_forecast(None) is None
    kept = parse_forecast({"points": [{"target_ms": 2, "forecast": 1.0, "lo80": float("nan")},
                                      {"target_ms": 1, "forecast": 2.0}]})
    assert [p["target_ms"] for p in kept["points"]] == [2 - 1, 2] and kept["points"][1]["lo80"] is None
    assert parse_alert({"alert_id": "a", "store_id": "s", "severity": "<b>"})["severity"] == "info"
    assert parse_alert({"alert_id": "", "store_id": "s"}) is None
    assert parse_alert("nope") is None


def test_store_rows_fit_the_vertical():
    rng = random.Random(3)
    bank, telecom, retail = (live_record(sid, region="r", vertical=v, as_of_ms=NOW_MS, rng=rng)
                             for sid, v in (("bank-1", "bank"), ("telecom-1", "telecom"), ("retail-1", "retail")))
    bank["today"].update(transactions=0, sales=0.0, conversion_rate=0.0)  # what a branch without tills reads
    # A bank has no tills: no conversion (not 0 %), no transactions; it has a queue even before its first ticket.
    row = store_row({**bank, "queue": None})
    assert (row["conversion_rate"], row["today_transactions"], row["today_sales"], row["has_queue"]) == (
        None, None, None, True)
    assert store_row(bank)["counters_active"] == bank["queue"]["total"]["counters_active"]
    # A telecom shop sells and queues; a shop sells.
    row = store_row(telecom)
    assert row["conversion_rate"] == telecom["today"]["conversion_rate"] and row["has_queue"] is True
    row = store_row(retail)
    assert row["conversion_rate"] == retail["today"]["conversion_rate"] and row["has_queue"] is False
    # Sorted by conversion, banks have none and come last either way.
    rows = [store_row(r) for r in (bank, telecom, retail)]
    for order in ("asc", "desc"):
        shown = StoreQuery.from_query({"sort": "conversion_rate", "order": order}).apply(rows)
        assert shown[-1]["store_id"] == "bank-1"


T0 = 1_790_000_000_000 - 1_790_000_000_000 % 86_400_000  # a UTC midnight


def staffing_record(store_id: str, made_at_ms: int, agents: list[int], counters_active: int,
                    advice: str | None = None) -> dict[str, Any]:
    """A staffing record in the stage's shape (schemas.records.StaffingRecord): a point per forecast interval."""
    points = [{"target_ms": made_at_ms + (h + 1) * BUCKET_MS, "h": h + 1, "arrivals": 4.0 * a, "agents": a,
               "scheduled": a, "service_level": 0.8 + 0.01 * h, "asa_s": 30.0, "abandon": None,
               "sl_at_active": 0.5, "abandon_at_active": None} for h, a in enumerate(agents)]
    return {"type": "staffing", "store_id": store_id, "region": "south", "vertical": "bank", "tz": "UTC",
            "made_at_ms": made_at_ms, "bucket_ms": BUCKET_MS, "model": "erlang_c", "answer_s": 600.0,
            "target_sl": 0.8, "shrinkage": 0.0, "quantile": "hi80", "aht_s": 300.0, "service_cv": 1.0,
            "patience_s": None, "counters_active": counters_active, "points": points, "advice": advice,
            "emitted_at_ms": made_at_ms + 1}


def test_staffing_views_by_hand():
    record = staffing_record("bank-1", T0 + 40 * BUCKET_MS, [4, 3, 2], 3,
                             advice="3 counters open, service level heading to 61 %; a 4th brings it to 86 %")
    view = parse_staffing(record)
    assert view["unit"] == "counters" and view["model"] == "erlang_c" and view["counters_active"] == 3
    assert view["advice"] == "3 counters open, service level heading to 61 %; a 4th brings it to 86 %"
    assert (view["made_at_ms"], view["answer_s"], view["target_sl"], view["quantile"], view["aht_s"]) == (
        T0 + 40 * BUCKET_MS, 600.0, 0.8, "hi80", 300.0)
    assert [(p["target_ms"], p["h"], p["recommended"], p["arrivals"]) for p in view["points"]] == [
        (T0 + 41 * BUCKET_MS, 1, 4, 16.0), (T0 + 42 * BUCKET_MS, 2, 3, 12.0), (T0 + 43 * BUCKET_MS, 3, 2, 8.0)]
    assert view["now"] == {"made_at_ms": T0 + 40 * BUCKET_MS, "recommended": 4, "active": 3}
    # A shop floor's points give associates (model `ratio`, no queue fields): shown as associates.
    floor = {"store_id": "retail-1", "made_at_ms": T0, "model": "ratio", "counters_active": None, "advice": None,
             "points": [{"target_ms": T0 + BUCKET_MS, "h": 1, "arrivals": 30.0, "associates": 2},
                        {"target_ms": T0 + 2 * BUCKET_MS, "h": 2, "arrivals": 45.0, "associates": 3}]}
    view = parse_staffing(floor)
    assert view["unit"] == "associates" and [p["recommended"] for p in view["points"]] == [2, 3]
    assert view["now"] == {"made_at_ms": T0, "recommended": 2, "active": None}
    assert parse_staffing({**floor, "model": None})["unit"] == "associates"
    # Tolerated: junk records and points.
    assert parse_staffing(None) is None and parse_staffing({"points": "x"}) is None
    assert parse_staffing({"points": [{"target_ms": 1}, {"agents": 2}, "x"]}) is None
    assert staffing_point({"made_at_ms": T0, "points": []}) is None
    assert staffing_point({"made_at_ms": "T0", "points": [{"agents": 1}]}) is None
    # The day: one point per record made within it, oldest first, the later written winning a tie.
    history = [staffing_record("bank-1", T0 - BUCKET_MS, [9], 9),  # yesterday
               staffing_record("bank-1", T0 + 2 * BUCKET_MS, [5], 1),
               staffing_record("bank-1", T0, [2], 2),
               staffing_record("bank-1", T0 + 2 * BUCKET_MS, [4], 2),  # written again: this one counts
               staffing_record("bank-1", T0 + 96 * BUCKET_MS, [7], 7),  # tomorrow
               {"points": [{"agents": 1}]}]
    view = staffing_view(history[3], history, T0, T0 + 86_400_000)
    assert view["today"] == [{"made_at_ms": T0, "recommended": 2, "active": 2},
                             {"made_at_ms": T0 + 2 * BUCKET_MS, "recommended": 4, "active": 2}]
    assert view["latest"]["made_at_ms"] == T0 + 2 * BUCKET_MS and view["latest"]["advice"] is None
    assert staffing_view(None, [], T0, T0 + 86_400_000) is None
    assert staffing_view(None, history[:1], T0, T0 + 86_400_000) is None  # nothing today, no latest


# -- the app over HTTP ----------------------------------------------------------------------------------


def _assert_safe_error(status: int, content_type: str, body: str, headers: Any, expected: int) -> None:
    assert status == expected, body
    assert content_type == "text/plain"
    assert len(body) < 120
    assert "<" not in body and "script" not in body.lower() and "Traceback" not in body
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/stores/%3Cscript%3Ealert(1)%3C%2Fscript%3E", 400),  # markup
        ("/stores/" + "a" * 65, 400),  # too long
        ("/stores/%22onmouseover=alert(1)", 400),  # attribute injection
        ("/stores/a%00b", 400),  # NUL
        ("/stores/-x", 400),  # leading punctuation
        ("/stores/%E2%80%AEevil", 400),  # bidi override
        ("/api/stores/%3Cimg%20src=x%3E", 400),
        ("/api/stores/" + "9" * 200, 400),
        ("/api/events?store=%3Cscript%3E", 400),
        ("/?sort=%3Cscript%3E", 400),  # sort key not a column
        ("/api/overview?sort=store_id;drop", 400),
        ("/api/overview?q=%3Cb%3E", 400),
        ("/api/overview?vertical=%3Cb%3E", 400),
        ("/api/overview?order=up", 400),
        ("/stores/a/b", 404),  # no such route
        ("/static/..%2Fdashboard.py", 404),  # only the files shipped
        ("/static/nope.js", 404),
        ("/etc/passwd", 404),
    ],
)
def test_hostile_input_gets_a_short_plain_4xx(redis_url: str, prefix: str, path: str, status: int):
    settings = Settings(redis_url=redis_url, topic_prefix=prefix)

    async def body(client: TestClient) -> None:
        response = await client.get(path)
        _assert_safe_error(response.status, response.content_type, await response.text(), response.headers, status)

    run(settings, body)


def test_only_get_is_allowed(redis_url: str, prefix: str):
    settings = Settings(redis_url=redis_url, topic_prefix=prefix)

    async def body(client: TestClient) -> None:
        for method in ("POST", "PUT", "DELETE"):
            response = await client.request(method, "/api/overview", data=b"x")
            _assert_safe_error(response.status, response.content_type, await response.text(), response.headers, 405)

    run(settings, body)


def test_pages_and_static_files_have_types_and_headers(redis_url: str, prefix: str):
    settings = Settings(redis_url=redis_url, topic_prefix=prefix)

    async def body(client: TestClient) -> None:
        for path, content_type in [("/", "text/html"), ("/?sort=occupancy&order=desc&q=north&vertical=bank",
                                                        "text/html"),
                                   ("/stores/retail-001", "text/html"), ("/static/common.js", "text/javascript"),
                                   ("/static/dashboard.css", "text/css"), ("/static/favicon.svg", "image/svg+xml")]:
            response = await client.get(path)
            assert response.status == 200, path
            assert response.content_type == content_type
            assert response.charset == "utf-8"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            csp = response.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "unsafe" not in csp
            assert response.headers["X-Frame-Options"] == "DENY"
        page = await (await client.get("/stores/retail-001")).text()
        assert "retail-001" not in page, "the page never carries the id in its markup: the script reads it"
        assert "<script>" not in page and " style=" not in page, "nothing inline: the CSP allows only files"

    run(settings, body)


def test_overview_reads_every_store_rollups_and_alerts(redis_url: str, prefix: str):
    settings = Settings(redis_url=redis_url, topic_prefix=prefix)
    lives = seed(settings)
    client = redis.Redis.from_url(redis_url)
    put_alert(client, prefix, alert_record("bank-002", "a-1", severity="warning", at_ms=NOW_MS - 5000))
    put_alert(client, prefix, alert_record("bank-002", "a-2", severity="critical", at_ms=NOW_MS,
                                           explanation=HOSTILE))
    put_alert(client, prefix, alert_record("retail-001", "a-3", severity="info", at_ms=NOW_MS))
    client.hset(RedisKeys(prefix).store_alerts("retail-004"), "junk", b"{not json")  # tolerated, skipped

    async def body(http: TestClient) -> None:
        response = await http.get("/api/overview")
        assert response.status == 200 and response.content_type == "application/json"
        data = await response.json()
        rows = {r["store_id"]: r for r in data["stores"]}
        assert set(rows) == {sid for sid, _, _ in STORES}
        for sid, live in lives.items():
            row = rows[sid]
            assert row["arrivals_15m"] == live["windows"]["15m"]["arrivals"]
            assert row["occupancy"] == live["occupancy"]["occupancy"]
            assert row["today_visitors"] == live["today"]["visitors"]
            assert row["last_week_visitors"] == live["same_day_last_week"]["visitors"]
            if live["vertical"] == "bank":  # no tills: no conversion, rather than 0 %
                assert row["conversion_rate"] is None
            else:
                assert row["conversion_rate"] == pytest.approx(live["today"]["conversion_rate"])
            queue = (live["queue"] or {}).get("total", {})
            assert row["waiting_now"] == queue.get("waiting_now")
            assert row["service_level_pct"] == queue.get("service_level_pct")
        assert rows["bank-002"]["alerts_open"] == 2 and rows["bank-002"]["alert_severity"] == "critical"
        assert rows["retail-004"]["alerts_open"] == 0
        assert [a["alert_id"] for a in data["alerts"]] == ["a-2", "a-1", "a-3"]  # severity, then newest
        assert data["alerts"][0]["explanation"] == HOSTILE  # data, escaped by the page (textContent)
        regions = {r["key"]: r for r in data["regions"]}
        assert set(regions) == {"north", "south"}
        assert regions["north"]["occupancy"] == sum(
            lives[s]["occupancy"]["occupancy"] for s, region, _ in STORES if region == "north")
        assert data["chain"]["stores"] == 4
        # The server applies the view's parameters too.
        data = await (await http.get("/api/overview?sort=occupancy&order=desc&region=south")).json()
        got = [r["store_id"] for r in data["stores"]]
        want = sorted((s for s, region, _ in STORES if region == "south"),
                      key=lambda s: -lives[s]["occupancy"]["occupancy"])
        assert got == want
        alerts = await (await http.get("/api/alerts")).json()
        assert [a["alert_id"] for a in alerts["alerts"]] == ["a-2", "a-1", "a-3"]

    run(settings, body)


def test_store_page_data_has_tiles_todays_buckets_forecast_and_alerts(redis_url: str, prefix: str):
    settings = Settings(redis_url=redis_url, topic_prefix=prefix)
    lives = seed(settings)
    client = redis.Redis.from_url(redis_url)
    start = NOW_MS - NOW_MS % BUCKET_MS
    put_forecast(client, prefix, forecast_record("retail-001", start))
    client.hset(RedisKeys(prefix).store_forecast("retail-001"), "transactions", b"[1, 2")  # broken: skipped
    put_alert(client, prefix, alert_record("retail-001", "s-1", at_ms=NOW_MS))

    async def body(http: TestClient) -> None:
        data = await (await http.get("/api/stores/retail-001")).json()
        assert data["row"]["arrivals_15m"] == lives["retail-001"]["windows"]["15m"]["arrivals"]
        assert data["vertical"] == "retail" and data["region"] == "north" and data["tz"] == "UTC"
        chart = data["chart"]
        assert chart["bucket_ms"] == BUCKET_MS
        assert chart["day_end_ms"] - chart["day_start_ms"] == 86_400_000
        today = [b for b in chart["buckets"]]
        assert [b["start_ms"] for b in today] == sorted(b["start_ms"] for b in today)
        assert all(chart["day_start_ms"] <= b["start_ms"] < chart["day_end_ms"] for b in today)
        newest = today[-1]
        assert newest["start_ms"] == start and newest["status"] == "open" and newest["arrivals"] == 10
        assert set(data["forecasts"]) == {"arrivals"}
        points = data["forecasts"]["arrivals"]["points"]
        assert len(points) == 8 and points[0]["lo80"] < points[0]["forecast"] < points[0]["hi80"]
        assert [a["alert_id"] for a in data["alerts"]] == ["s-1"]
        # A store with no forecast and no alerts still answers, with empty ones.
        data = await (await http.get("/api/stores/bank-002")).json()
        assert data["forecasts"] == {} and data["alerts"] == [] and data["row"]["has_queue"] is True
        response = await http.get("/api/stores/unknown-9")
        assert response.status == 404 and (await response.json()) == {"error": "no data for this store"}

    run(settings, body)


def test_store_data_has_the_days_staffing_bounded(redis_url: str, prefix: str):
    settings = Settings(redis_url=redis_url, topic_prefix=prefix)
    lives = seed(settings)
    day_start = NOW_MS - NOW_MS % 86_400_000
    # 110 records every 5 minutes from midnight, with the worker's sink; the page reads the newest
    # 96 + 4 (a day of 15-minute buckets, and a few), so the oldest 10 are not read.
    records = [staffing_record("bank-002", day_start + k * 300_000, [2 + k % 3, 3], 2) for k in range(110)]
    records[-1]["advice"] = "2 counters open, service level heading to 61 %; a 3rd brings it to 86 %"
    # Yesterday's record written last: the history is read in write order, and the day filters it out.
    old = staffing_record("bank-002", day_start - BUCKET_MS, [9], 9)
    publish(settings, [*records, old])
    latest = records[-1]
    client = redis.Redis.from_url(redis_url)
    client.set(RedisKeys(prefix).store_record("bank-002", "staffing"), orjson.dumps(latest))

    async def body(http: TestClient) -> None:
        data = await (await http.get("/api/stores/bank-002")).json()
        assert data["row"]["conversion_rate"] is None and data["row"]["has_queue"] is True
        staffing = data["staffing"]
        assert staffing["today"] == [{"made_at_ms": day_start + k * 300_000, "recommended": 2 + k % 3, "active": 2}
                                     for k in range(11, 110)]
        view = staffing["latest"]
        assert view["advice"] == latest["advice"] and view["unit"] == "counters" and view["counters_active"] == 2
        assert [(p["target_ms"], p["recommended"]) for p in view["points"]] == [
            (latest["made_at_ms"] + BUCKET_MS, 2 + 109 % 3), (latest["made_at_ms"] + 2 * BUCKET_MS, 3)]
        # A store without staffing records: none.
        data = await (await http.get("/api/stores/retail-001")).json()
        assert data["staffing"] is None
        assert data["row"]["conversion_rate"] == lives["retail-001"]["today"]["conversion_rate"]

    run(settings, body)


def test_a_staffing_record_reaches_its_stores_page(redis_url: str, prefix: str):
    settings = Settings(redis_url=redis_url, topic_prefix=prefix)
    seed(settings)
    start = NOW_MS - NOW_MS % BUCKET_MS

    async def body(http: TestClient) -> None:
        await subscribed(http)
        mine = await http.get("/api/events?store=bank-002")
        other = await http.get("/api/events?store=retail-001")
        for stream in (mine, other):
            await read_events(stream, lambda e: "hello" in names(e))
        # Two records in one push: the newer is the latest, both are chart points.
        await asyncio.to_thread(publish, settings, [staffing_record("bank-002", start, [3, 4], 2, advice="more"),
                                                    staffing_record("bank-002", start - BUCKET_MS, [2], 2)])
        got = await read_events(mine, lambda e: "staffing" in names(e))
        [pushed] = [d for n, d in got if n == "staffing"]
        assert pushed["latest"]["made_at_ms"] == start and pushed["latest"]["advice"] == "more"
        assert [p["recommended"] for p in pushed["latest"]["points"]] == [3, 4]
        assert pushed["points"] == [{"made_at_ms": start - BUCKET_MS, "recommended": 2, "active": 2},
                                    {"made_at_ms": start, "recommended": 3, "active": 2}]
        await asyncio.to_thread(put_alert, redis.Redis.from_url(redis_url), prefix,
                                alert_record("retail-001", "mark", at_ms=NOW_MS))
        got = await read_events(other, lambda e: "alerts" in names(e))
        assert "staffing" not in names(got)
        for stream in (mine, other):
            stream.close()

    run(settings, body)


def test_insights_and_segments_reach_the_store_page_by_snapshot_and_stream(redis_url: str, prefix: str):
    settings = Settings(redis_url=redis_url, topic_prefix=prefix)
    seed(settings)
    start = NOW_MS - NOW_MS % BUCKET_MS
    yesterday = dt.datetime.fromtimestamp(NOW_MS / 1000 - 86_400, dt.UTC).date().isoformat()
    # With the worker's sink: the generic placement of a newer stage's kinds (latest, history, channel).
    publish(settings, [insights_record("retail-001", yesterday, cells={(0, 10): 42.0}),
                       segments_record("retail-001", start - BUCKET_MS, [
                           segment_set("till", [("single item, weekday morning", 30, 3)])])])
    client = redis.Redis.from_url(redis_url)
    client.set(RedisKeys(prefix).store_record("bank-002", "insights"), b'{"day": "<b>", "series": 7}')

    async def body(http: TestClient) -> None:
        data = await (await http.get("/api/stores/retail-001")).json()
        assert data["insights"]["day"] == yesterday and data["insights"]["heatmap"]["arrivals"]["mean"][0][10] == 42.0
        assert data["segments"]["kinds"][0]["segments"][0]["description"] == "single item, weekday morning"
        # A store without such records, or with a broken one: none, and no error.
        data = await (await http.get("/api/stores/bank-002")).json()
        assert data["insights"] is None and data["segments"] is None
        await subscribed(http)
        mine = await http.get("/api/events?store=retail-001")
        await read_events(mine, lambda e: "hello" in names(e))
        newer = insights_record("retail-001", yesterday, cells={(0, 10): 43.5}, made_at_ms=NOW_MS)
        await asyncio.to_thread(publish, settings, [newer, segments_record("retail-001", start, [
            segment_set("visit", [("quick look, no purchase", 12, 2)])])])
        got = await read_events(mine, lambda e: {"insights", "segments"} <= set(names(e)))
        [insights] = [d for n, d in got if n == "insights"]
        [segments] = [d for n, d in got if n == "segments"]
        assert insights["heatmap"]["arrivals"]["mean"][0][10] == 43.5 and insights["made_at_ms"] == NOW_MS
        assert [k["kind"] for k in segments["kinds"]] == ["visit"]
        mine.close()

    run(settings, body)


def test_quality_reaches_the_store_page_by_snapshot_and_stream(redis_url: str, prefix: str):
    settings = Settings(redis_url=redis_url, topic_prefix=prefix)
    seed(settings)
    start = NOW_MS - NOW_MS % BUCKET_MS
    # With the worker's sink: the generic placement of the quality stage's kind (latest, history, channel).
    publish(settings, [quality_record("retail-001", start - BUCKET_MS, {"front": 1.0, "c-side": 0.0})])
    client = redis.Redis.from_url(redis_url)
    client.set(RedisKeys(prefix).store_record("bank-002", "quality"), b'{"quality": "<b>", "bucket_start_ms": 1}')

    async def body(http: TestClient) -> None:
        data = await (await http.get("/api/stores/retail-001")).json()
        assert data["quality"]["quality"] == "partial" and data["quality"]["silent_sensors"] == ["c-side"]
        assert data["quality"]["bucket_start_ms"] == start - BUCKET_MS
        # A store without a quality record, or with a broken one: none, and no error.
        data = await (await http.get("/api/stores/bank-002")).json()
        assert data["quality"] is None
        await subscribed(http)
        mine = await http.get("/api/events?store=retail-001")
        other = await http.get("/api/events?store=bank-002")
        await read_events(mine, lambda e: "hello" in names(e))
        await read_events(other, lambda e: "hello" in names(e))
        ok = quality_record("retail-001", start, {"front": 1.0, "c-side": 0.95})
        await asyncio.to_thread(publish, settings, [ok])
        got = await read_events(mine, lambda e: "quality" in names(e))
        [quality] = [d for n, d in got if n == "quality"]
        assert quality["quality"] == "ok" and quality["bucket_start_ms"] == start and quality["silent_sensors"] == []
        # Another store's page gets none of it (a live record of its own shows its stream still flows).
        await asyncio.to_thread(publish, settings, [live_record("bank-002", region="north", vertical="bank",
                                                                as_of_ms=NOW_MS, rng=random.Random(3))])
        got = await read_events(other, lambda e: "live" in names(e))
        assert "quality" not in names(got)
        mine.close()
        other.close()

    run(settings, body)


def test_stores_are_found_without_rollups(redis_url: str, prefix: str):
    settings = Settings(redis_url=redis_url, topic_prefix=prefix)
    client = redis.Redis.from_url(redis_url)
    live = live_record("solo-1", region="x", vertical="retail", as_of_ms=NOW_MS, rng=random.Random(1))
    flat = {k: (v if isinstance(v, str) else orjson.dumps(v)) for k, v in live.items()}
    client.hset(RedisKeys(prefix).store_live("solo-1"), mapping=flat)

    async def body(http: TestClient) -> None:
        data = await (await http.get("/api/overview")).json()
        assert [r["store_id"] for r in data["stores"]] == ["solo-1"]
        assert data["regions"] == [] and data["chain"] is None and data["alerts"] == []

    run(settings, body)


# -- live updates ----------------------------------------------------------------------------------------


async def read_events(response: Any, want: Callable[[list[tuple[str, Any]]], bool], timeout_s: float = 5.0
                      ) -> list[tuple[str, Any]]:
    """Read server-sent events until `want(events)` holds; fail after `timeout_s`."""
    events: list[tuple[str, Any]] = []
    name = None
    async with asyncio.timeout(timeout_s):
        while not want(events):
            line = (await response.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name:
                events.append((name, orjson.loads(line[6:])))
                name = None
    return events


def names(events: list[tuple[str, Any]]) -> list[str]:
    return [n for n, _ in events]


async def subscribed(http: TestClient, timeout_s: float = 5.0) -> None:
    """Wait until the app's hub has subscribed (it does so in the background at start)."""
    async with asyncio.timeout(timeout_s):
        while not (await (await http.get("/healthz")).json())["redis_subscribed"]:
            await asyncio.sleep(0.05)


def test_event_stream_pushes_rows_alerts_and_one_store_only_its_own(redis_url: str, prefix: str):
    settings = Settings(redis_url=redis_url, topic_prefix=prefix)
    lives = seed(settings)
    client = redis.Redis.from_url(redis_url)

    async def body(http: TestClient) -> None:
        await subscribed(http)
        overview = await http.get("/api/events")
        assert overview.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        mine = await http.get("/api/events?store=bank-002")
        other = await http.get("/api/events?store=retail-001")
        for stream in (overview, mine, other):
            hello = await read_events(stream, lambda e: "hello" in names(e))
            assert hello[0][1]["redis"] is True
        # One pub/sub subscription for the process, however many pages listen.
        channel = RedisKeys(prefix).alerts_channel
        assert client.pubsub_numsub(channel) == [(channel.encode(), 1)]
        updated = dict(lives["bank-002"], windows={"15m": {"arrivals": 999}}, emitted_at_ms=NOW_MS + 1)
        await asyncio.to_thread(publish, settings, [updated])
        await asyncio.to_thread(put_alert, client, prefix, alert_record("bank-002", "live-1", at_ms=NOW_MS))
        got = await read_events(overview, lambda e: {"rows", "alerts"} <= set(names(e)))
        rows = [r for n, batch in got if n == "rows" for r in batch]
        assert any(r["store_id"] == "bank-002" and r["arrivals_15m"] == 999 for r in rows)
        assert any(n == "alerts" and batch[0]["alert_id"] == "live-1" for n, batch in got)
        got = await read_events(mine, lambda e: {"live", "alerts"} <= set(names(e)))
        assert [d["arrivals_15m"] for n, d in got if n == "live"] == [999]
        # A forecast and a bucket of the store reach its page.
        bucket = bucket_record("bank-002", region="south", vertical="bank", start_ms=NOW_MS - NOW_MS % BUCKET_MS,
                               arrivals=77, last_week=None, closed=False)
        await asyncio.to_thread(publish, settings, [bucket])
        await asyncio.to_thread(put_forecast, client, prefix, forecast_record("bank-002", NOW_MS, horizons=3))
        got = await read_events(mine, lambda e: {"buckets", "forecasts"} <= set(names(e)))
        assert [p["arrivals"] for n, batch in got if n == "buckets" for p in batch] == [77]
        assert [(f["series"], len(f["points"])) for n, batch in got if n == "forecasts" for f in batch] == [
            ("arrivals", 3)]
        # The other store's page hears nothing of bank-002 (its next event is its own, or none).
        await asyncio.to_thread(put_alert, client, prefix, alert_record("retail-001", "live-2", at_ms=NOW_MS))
        got = await read_events(other, lambda e: "alerts" in names(e))
        assert [a["store_id"] for n, batch in got if n == "alerts" for a in batch] == ["retail-001"]
        assert not [n for n, _ in got if n == "live"]
        for stream in (overview, mine, other):
            stream.close()

    run(settings, body)


def test_hub_resubscribes_after_losing_redis_and_tells_pages_to_resync(redis_url: str, prefix: str):
    settings = Settings(redis_url=redis_url, topic_prefix=prefix)
    seed(settings)
    client = redis.Redis.from_url(redis_url)

    async def body(http: TestClient) -> None:
        await subscribed(http)
        stream = await http.get("/api/events")
        await read_events(stream, lambda e: "hello" in names(e))
        # Only this module's tests use this redis-server: killing its pub/sub clients hits only ours.
        assert client.client_kill_filter(_type="pubsub") >= 1
        got = await read_events(stream, lambda e: "resync" in names(e), timeout_s=10)
        assert ("status", {"redis": False}) in got
        await asyncio.to_thread(put_alert, client, prefix, alert_record("bank-002", "after", at_ms=NOW_MS))
        got = await read_events(stream, lambda e: "alerts" in names(e))
        assert [a["alert_id"] for n, batch in got if n == "alerts" for a in batch] == ["after"]
        health = await (await http.get("/healthz")).json()
        assert health["redis_subscribed"] is True and health["listeners"] == 1
        stream.close()

    run(settings, body)


def test_static_files_are_packaged():
    root = Path(__file__).resolve().parents[2] / "stream" / "dashboard_static"
    shipped = {p.name for p in root.iterdir()}
    assert {"overview.html", "store.html", "dashboard.css", "common.js", "overview.js", "store.js"} <= shipped
    for name in ("overview.js", "store.js", "common.js"):
        text = (root / name).read_text()
        assert "innerHTML" not in text and "eval(" not in text, f"{name}: markup is built with textContent only"


# -- the command ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (["--port", "70000"], {}, 2, "--port 70000: must be a TCP port"),
        (["--push-interval-s", "0"], {}, 2, "--push-interval-s must be between"),
        ([], {"FOOTFALL_REDIS_URL": "http://redis"}, 2, "FOOTFALL_REDIS_URL='http://redis'"),
        ([], {"FOOTFALL_TOPIC_PREFIX": "a b"}, 2, "FOOTFALL_TOPIC_PREFIX='a b'"),
    ],
)
def test_command_refuses_bad_options_by_name(args: list[str], env: dict[str, str], code: int, message: str):
    result = subprocess.run([sys.executable, "-m", "footfall.scripts.cli", "dashboard", *args],
                            env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=60)
    assert result.returncode == code, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_command_says_when_its_port_is_taken(redis_url: str):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "footfall.scripts.cli", "dashboard", "--port", str(port)],
            env={"PATH": "/usr/bin:/bin", "FOOTFALL_REDIS_URL": redis_url}, capture_output=True, text=True,
            timeout=60)
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr and "Traceback" not in result.stderr



@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--host", "0.0.0.0"], {}, "refusing to serve every store's data without a token on 0.0.0.0"),
        (["--host", "::"], {}, "without a token on ::"),
        (["--host", "dash.example"], {}, "without a token on dash.example"),
        (["--token-file", "{tmp}/missing"], {}, "--token-file"),
        (["--token-file", "{tmp}/short.token"], {}, "at least 16 printable ASCII"),
        ([], {"FOOTFALL_DASHBOARD_TOKEN": "tiny-secret"}, "FOOTFALL_DASHBOARD_TOKEN: the token must be"),
        ([], {"FOOTFALL_DASHBOARD_TOKEN": "tiny-secret tiny-secret"}, "without spaces"),
        (["--allowed-hosts", "dash.example:8765"], {}, "--allowed-hosts: each entry must be a host name"),
        (["--allowed-hosts", "[::1]:8765"], {}, "--allowed-hosts: each entry must be a host name"),
        ([], {"FOOTFALL_DASHBOARD_ALLOWED_HOSTS": "a b"}, "FOOTFALL_DASHBOARD_ALLOWED_HOSTS: each entry"),
        (["--api-cache-s", "-1"], {}, "--api-cache-s must be between 0 and 60"),
    ],
)
def test_command_refuses_bad_access_options_and_never_shows_the_token(
    args: list[str], env: dict[str, str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    from footfall.scripts.cli import main

    (tmp_path / "short.token").write_text("tiny-secret\n")
    for name in ("FOOTFALL_DASHBOARD_TOKEN", "FOOTFALL_DASHBOARD_ALLOWED_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["dashboard", *(a.replace("{tmp}", str(tmp_path)) for a in args)]) == 2
    out, err = capsys.readouterr()
    assert message in err and "Traceback" not in err, err
    assert "tiny-secret" not in out + err


def test_command_on_a_wildcard_host_needs_a_token_or_insecure_no_auth(redis_url: str, tmp_path: Path):
    token = "t0ken-" + uuid.uuid4().hex
    token_file = tmp_path / "dashboard.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        # Both get past the access checks to the port (taken here, so they stop there with exit 1).
        for extra in (["--insecure-no-auth"], ["--token-file", str(token_file)]):
            result = subprocess.run(
                [sys.executable, "-m", "footfall.scripts.cli", "dashboard", "--host", "0.0.0.0", "--port", port,
                 *extra], env={"PATH": "/usr/bin:/bin", "FOOTFALL_REDIS_URL": redis_url}, capture_output=True,
                text=True, timeout=60)
            assert result.returncode == 1 and "is in use" in result.stderr, result.stderr
            assert ("WARNING: serving without a token" in result.stderr) == (extra == ["--insecure-no-auth"])
            assert token not in result.stdout + result.stderr


def test_command_serves_with_its_token_and_allowed_hosts(redis_url: str, tmp_path: Path):
    """The command's options reach the app: the bound host is answered, others 421; the API needs the token."""
    import urllib.error
    import urllib.request

    token = "t0ken-" + uuid.uuid4().hex
    token_file = tmp_path / "dashboard.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "footfall.scripts.cli", "dashboard", "--port", str(port), "--token-file",
         str(token_file), "--allowed-hosts", "127.0.0.1,dash.example"],
        env={"PATH": "/usr/bin:/bin", "FOOTFALL_REDIS_URL": redis_url}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("footfall dashboard at http://127.0.0.1:"), line + proc.stderr.read()
        assert "a token is needed" in line and "answering Host 127.0.0.1,dash.example" in line
        assert token not in line

        def get(path: str, **headers: str) -> int:
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return response.status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert get("/api/alerts") == 401
        assert get("/api/alerts", Authorization=f"Bearer {token}") == 200
        assert get("/api/alerts", Authorization=f"Bearer {token}", Host="dash.example:8765") == 200
        assert get("/api/alerts", Authorization=f"Bearer {token}", Host="localhost") == 421  # not listed
        assert get("/healthz", Host="evil.example") == 421
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert token not in err


# -- who may ask: the Host allow-list and the token ------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "host"),
    [("127.0.0.1:8765", "127.0.0.1"), ("LocalHost.", "localhost"), ("[::1]:8765", "::1"), ("[0:0::1]", "::1"),
     ("::1", "::1"), ("dash.example", "dash.example"), ("[::1", None), ("[::1]x", None), ("a:b", None),
     ("a b", None), ("user@evil.example", None), ("", None), ("[evil]:80", None)],
)
def test_host_header_parsing(header: str, host: str | None):
    assert host_of(header) == host


@pytest.mark.parametrize(
    ("allowed", "host", "status"),
    [
        (None, "127.0.0.1:4444", 200),
        (None, "localhost:8765", 200),
        (None, "[::1]:8765", 200),
        (None, "LOCALHOST.", 200),
        (None, "evil.example", 421),  # a DNS-rebinding page's own name
        (None, "evil.example:8765", 421),
        (None, "localhost.evil.example", 421),
        (None, "127.0.0.2", 421),
        (None, "[::1", 400),
        (None, "a@b", 400),
        (["dash.example", "10.1.2.3"], "dash.example:80", 200),
        (["dash.example", "10.1.2.3"], "10.1.2.3", 200),
        (["dash.example", "10.1.2.3"], "127.0.0.1", 421),  # the list replaces the defaults
        (["*"], "anything.example", 200),
    ],
)
def test_only_allowed_host_names_are_answered(redis_url: str, prefix: str, allowed: list[str] | None, host: str,
                                               status: int):
    settings = Settings(redis_url=redis_url, topic_prefix=prefix)

    async def body(client: TestClient) -> None:
        for path in ("/api/alerts", "/", "/healthz", "/static/common.js", "/nope"):
            response = await client.get(path, headers={"Host": host})
            text = await response.text()
            if status == 200:
                assert response.status == (404 if path == "/nope" else 200), (path, text)
            else:
                _assert_safe_error(response.status, response.content_type, text, response.headers, status)
                assert "evil" not in text

    run(settings, body, allowed_hosts=allowed)


TOKEN = "unit-test-token-" + "x" * 16


def test_api_and_event_stream_need_the_token(redis_url: str, prefix: str):
    settings = Settings(redis_url=redis_url, topic_prefix=prefix)
    seed(settings)

    async def body(client: TestClient) -> None:
        paths = ["/api/overview", "/api/stores/retail-001", "/api/alerts", "/api/events", "/api/events?store=x-1",
                 "/api/nope"]
        refused = [{}, {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": f"Bearer {TOKEN[:-1]}"},
                   {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}, {"Authorization": "Bearer "},
                   {"Cookie": f"{COOKIE}={TOKEN}"}, {"Cookie": f"{COOKIE}=0123abcd"}]
        for path in paths:
            for headers in refused:
                response = await client.get(path, headers=headers)
                text = await response.text()
                _assert_safe_error(response.status, response.content_type, text, response.headers, 401)
                assert response.headers["WWW-Authenticate"].startswith("Bearer"), path
                assert TOKEN not in text
        for scheme in ("Bearer", "bearer"):
            response = await client.get("/api/overview", headers={"Authorization": f"{scheme} {TOKEN}"})
            assert response.status == 200
            assert len((await response.json())["stores"]) == len(STORES)
        events = await client.get("/api/events", headers={"Authorization": f"Bearer {TOKEN}"})
        assert events.status == 200 and events.headers["Content-Type"].startswith("text/event-stream")
        await read_events(events, lambda e: "hello" in names(e))
        events.close()
        # The pages, their files and the health check hold no data: open.
        for path in ("/", "/stores/retail-001", "/static/common.js", "/static/dashboard.css", "/healthz"):
            assert (await client.get(path)).status == 200, path

    run(settings, body, token=TOKEN)


def test_a_page_opened_with_the_token_sets_the_cookie_and_drops_the_token(redis_url: str, prefix: str):
    settings = Settings(redis_url=redis_url, topic_prefix=prefix)
    seed(settings)

    async def body(client: TestClient) -> None:
        # A wrong token: refused, no cookie.
        response = await client.get(f"/?token={TOKEN}nope", allow_redirects=False)
        assert response.status == 401 and "Set-Cookie" not in response.headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        # The right one: a cookie (HttpOnly, SameSite=Strict, not the token itself) and the same view without it.
        response = await client.get(f"/?sort=occupancy&token={TOKEN}&order=desc", allow_redirects=False)
        assert response.status == 303
        assert response.headers["Location"] == "/?sort=occupancy&order=desc"
        set_cookie = response.headers["Set-Cookie"]
        assert set_cookie.startswith(f"{COOKIE}=") and "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
        assert "Path=/" in set_cookie and TOKEN not in set_cookie
        cookie = response.cookies[COOKIE].value
        response = await client.get(f"/stores/retail-001?token={TOKEN}", allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/stores/retail-001"
        assert response.cookies[COOKIE].value == cookie
        # The cookie opens the data and the event stream.
        client.session.cookie_jar.clear()
        with_cookie = {"Cookie": f"{COOKIE}={cookie}"}
        data = await (await client.get("/api/overview", headers=with_cookie)).json()
        assert len(data["stores"]) == len(STORES)
        assert (await client.get("/api/stores/bank-002", headers=with_cookie)).status == 200
        events = await client.get("/api/events?store=bank-002", headers=with_cookie)
        assert events.status == 200
        await read_events(events, lambda e: "hello" in names(e))
        events.close()
        assert (await client.get("/api/overview")).status == 401
        # Bad parameters still get their 400 first, and never echo the token.
        response = await client.get(f"/?sort=nope&token={TOKEN}", allow_redirects=False)
        assert response.status == 400 and TOKEN not in await response.text()

    run(settings, body, token=TOKEN)


def test_the_cookie_outlives_a_restart_and_dies_with_the_token(redis_url: str, prefix: str):
    """The cookie is derived from the token (no session kept): a new process accepts it, another token does not."""
    settings = Settings(redis_url=redis_url, topic_prefix=prefix)
    got: dict[str, str] = {}

    async def login(client: TestClient) -> None:
        response = await client.get(f"/?token={TOKEN}", allow_redirects=False)
        got["cookie"] = response.cookies[COOKIE].value

    def check(status: int) -> Callable[[TestClient], Awaitable[None]]:
        async def body(client: TestClient) -> None:
            response = await client.get("/api/alerts", headers={"Cookie": f"{COOKIE}={got['cookie']}"})
            assert response.status == status

        return body

    run(settings, login, token=TOKEN)
    run(settings, check(200), token=TOKEN)
    run(settings, check(401), token=TOKEN + "-rotated")


def test_without_a_token_the_api_is_open_and_token_parameters_are_ignored(redis_url: str, prefix: str):
    settings = Settings(redis_url=redis_url, topic_prefix=prefix)

    async def body(client: TestClient) -> None:
        assert (await client.get("/api/alerts")).status == 200
        response = await client.get("/?token=whatever", allow_redirects=False)
        assert response.status == 200 and "Set-Cookie" not in response.headers

    run(settings, body)


# -- the API cache ----------------------------------------------------------------------------------------------

READ_COMMANDS = {"hkeys", "hmget", "hvals", "hgetall", "get", "xrevrange", "scan", "xrange", "mget"}


def redis_reads(client: redis.Redis) -> int:
    """Read commands the redis-server has run (its own count, whoever sent them)."""
    stats = client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k.removeprefix("cmdstat_") in READ_COMMANDS)


def test_fifty_pages_asking_at_once_cost_redis_one_read(redis_url: str, prefix: str):
    settings = Settings(redis_url=redis_url, topic_prefix=prefix)
    seed(settings)
    client = redis.Redis.from_url(redis_url)

    async def fifty(http: TestClient, path: str) -> list[dict[str, Any]]:
        responses = await asyncio.gather(*(http.get(path) for _ in range(50)))
        assert [r.status for r in responses] == [200] * 50
        return [await r.json() for r in responses]

    costs: dict[str, int] = {}

    async def uncached(http: TestClient) -> None:
        await subscribed(http)
        for path in ("/api/overview", "/api/stores/retail-001", "/api/alerts"):
            before = redis_reads(client)
            await http.get(path)
            costs[path] = redis_reads(client) - before
            assert costs[path] > 0
            before = redis_reads(client)
            await fifty(http, path)
            assert redis_reads(client) - before == 50 * costs[path], path  # the count sees every read

    async def cached(http: TestClient) -> None:
        await subscribed(http)
        for path in ("/api/overview", "/api/stores/retail-001", "/api/alerts"):
            before = redis_reads(client)
            bodies = await fifty(http, path)
            assert redis_reads(client) - before == costs[path], path  # one read for 50 requests
            assert all(b == bodies[0] for b in bodies)
            before = redis_reads(client)
            await fifty(http, path)
            assert redis_reads(client) - before == 0, path  # kept: none
        # Another store is another read; the view's parameters are applied to the one kept overview.
        before = redis_reads(client)
        await fifty(http, "/api/stores/bank-002")
        assert redis_reads(client) - before == costs["/api/stores/retail-001"]
        south = await (await http.get("/api/overview?region=south")).json()
        assert {r["region"] for r in south["stores"]} == {"south"}
        every = await (await http.get("/api/overview")).json()
        assert len(every["stores"]) == len(STORES)  # the filtered answer did not change the one kept
        assert (await (await http.get("/healthz")).json())["api_cache"]["reads"] == 4

    run(settings, uncached, api_cache_s=0)
    run(settings, cached, api_cache_s=30)


def test_a_kept_answer_expires(redis_url: str, prefix: str):
    settings = Settings(redis_url=redis_url, topic_prefix=prefix)
    lives = seed(settings)

    async def body(http: TestClient) -> None:
        first = await (await http.get("/api/stores/bank-002")).json()
        updated = dict(lives["bank-002"], windows={"15m": {"arrivals": 4242}}, emitted_at_ms=NOW_MS + 1)
        await asyncio.to_thread(publish, settings, [updated])
        kept = await (await http.get("/api/stores/bank-002")).json()
        assert kept["row"]["arrivals_15m"] == first["row"]["arrivals_15m"] != 4242
        await asyncio.sleep(0.35)
        fresh = await (await http.get("/api/stores/bank-002")).json()
        assert fresh["row"]["arrivals_15m"] == 4242

    run(settings, body, api_cache_s=0.3)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_read_cache_shares_one_read_in_flight_keeps_it_and_is_bounded():
    async def main() -> None:
        clock = _Clock()
        cache = ReadCache(1.0, max_entries=3, clock=clock)
        release = asyncio.Event()
        calls: list[str] = []

        def reader(key: str) -> Callable[[], Awaitable[str]]:
            async def read() -> str:
                calls.append(key)
                await release.wait()
                return f"value-{key}-{len(calls)}"

            return read

        # 50 callers while the read is in flight: one read, one answer.
        waiting = [asyncio.ensure_future(cache.get("a", reader("a"))) for _ in range(50)]
        for _ in range(5):
            await asyncio.sleep(0)
        assert calls == ["a"]
        waiting[0].cancel()  # a caller that goes away does not cancel the read for the others
        release.set()
        answers = await asyncio.gather(*waiting[1:])
        assert set(answers) == {"value-a-1"} and calls == ["a"] and (cache.reads, cache.hits) == (1, 49)
        # Kept for ttl_s, then read again.
        clock.now += 0.99
        assert await cache.get("a", reader("a")) == "value-a-1"
        clock.now += 0.02
        assert await cache.get("a", reader("a")) == "value-a-2"
        # Bounded: the oldest makes room (the expired first).
        for key in ("b", "c", "d"):
            await cache.get(key, reader(key))
        assert len(cache) == 3
        calls.clear()
        await cache.get("a", reader("a"))  # "a" was the oldest: gone
        assert calls == ["a"]
        clock.now += 5  # all expired: make room before anything fresh is dropped
        await cache.get("e", reader("e"))
        assert len(cache) == 1

    asyncio.run(main())


def test_read_cache_does_not_keep_failures_and_zero_disables_it():
    async def main() -> None:
        cache = ReadCache(10.0)
        calls = 0

        async def failing() -> str:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.01)
            raise ConnectionError("redis down")

        results = await asyncio.gather(*(cache.get("k", failing) for _ in range(5)), return_exceptions=True)
        assert calls == 1 and all(isinstance(r, ConnectionError) for r in results)
        with pytest.raises(ConnectionError):
            await cache.get("k", failing)
        assert calls == 2  # the failure was not kept

        off = ReadCache(0)
        count = 0

        async def read() -> int:
            nonlocal count
            count += 1
            return count

        assert [await off.get("k", read) for _ in range(3)] == [1, 2, 3] and len(off) == 0

    asyncio.run(main())
