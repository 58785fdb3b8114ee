"""The dashboard in a real headless Chromium (Debian's, driven by Playwright), on the real stack.

With the worker counting simulated traffic on Kafka, the dashboard process (`footfall dashboard`,
reading Redis only) must show on its pages exactly the numbers Redis holds, show an alert
published to Redis within seconds, come back by itself when the dashboard process is killed and
started again (the open page is not reloaded), refuse hostile store ids with a short 4xx, and stay
quick with 500 stores. The first test runs the dashboard with an access token: the browser gets in
by opening the page once with `?token=` (a cookie), and foreign Host names are refused. The test
also saves the screenshot the README shows (docs/dashboard.png).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from kafka import KafkaProducer

from footfall.schemas.keys import CHAIN, RedisKeys
from footfall.scripts.stack import _die_with_parent, free_port
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.dashrecords import (
    BUCKET_MS,
    alert_record,
    day_of,
    day_versus,
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
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("FOOTFALL_TEST_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "dashboard.png"
DASH = "–"


# -- the browser and the dashboard process -----------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # The test command installs both; only a hand-run subset may lack them. In CI a missing browser fails.
    missing = pytest.fail if os.environ.get("CI") else pytest.skip
    try:
        from playwright import sync_api
    except ImportError:
        missing("playwright is not installed (pip install -e .[dev])")
    if not os.path.exists(CHROMIUM):
        missing(f"no Chromium at {CHROMIUM} (apt-get install -y chromium, or set FOOTFALL_TEST_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class DashboardProcess:
    """`footfall dashboard` as a subprocess on a fixed port, so it can be killed and started again."""

    env: dict[str, str]
    port: int
    log_dir: Path
    token_file: Path | None = None
    proc: subprocess.Popen | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                return orjson.loads(response.read())
        except (OSError, urllib.error.URLError):
            return None

    def start(self, timeout_s: float = 20.0) -> DashboardProcess:
        log = self.log_dir / f"dashboard-{len(self.logs) + 1}.log"
        self.logs.append(log)
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "footfall.scripts.cli", "dashboard", "--port", str(self.port),
                 *(["--token-file", str(self.token_file)] if self.token_file else [])],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        wait_until(lambda: (h := self.health()) is not None and h["redis_subscribed"], timeout_s,
                   f"the dashboard on port {self.port} to answer (log {log})", interval_s=0.1)
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture
def dashboard_factory(services, unique_prefix: str, tmp_path: Path) -> Iterator[Callable[[], DashboardProcess]]:
    made: list[DashboardProcess] = []

    def make(token: str | None = None) -> DashboardProcess:
        env = {**os.environ, "FOOTFALL_REDIS_URL": services.redis_url, "FOOTFALL_TOPIC_PREFIX": unique_prefix}
        env.pop("FOOTFALL_DASHBOARD_TOKEN", None)
        env.pop("FOOTFALL_DASHBOARD_ALLOWED_HOSTS", None)
        token_file = None
        if token is not None:
            token_file = tmp_path / f"dashboard-{len(made)}.token"
            token_file.write_text(token + "\n")
            token_file.chmod(0o600)
        dashboard = DashboardProcess(env, free_port(), tmp_path, token_file)
        made.append(dashboard)
        return dashboard

    yield make
    for dashboard in made:
        dashboard.stop()


# -- what the page must show, from Redis (formatted as the page formats) ----------------------------------


def js_round(x: float) -> int:
    return math.floor(x + 0.5)


def fmt_int(v: Any) -> str:
    return DASH if v is None else f"{js_round(v):,}"


def fmt_ratio_pct(v: Any) -> str:
    return DASH if v is None else f"{v * 100:.1f} %"


def fmt_pct(v: Any) -> str:
    return DASH if v is None else f"{v:.1f} %"


def fmt_duration(s: Any) -> str:
    if s is None:
        return DASH
    if s < 60:
        return f"{js_round(s)} s"
    if s < 3600:
        return f"{js_round(s / 60)} min"
    return f"{int(s // 3600)} h {js_round((s % 3600) / 60):02d} min"


def redis_live(client: redis.Redis, prefix: str, store_id: str) -> dict[str, Any]:
    """A store's live hash, decoded here independently of the dashboard's code."""
    out = {}
    for k, v in client.hgetall(RedisKeys(prefix).store_live(store_id)).items():
        try:
            out[k.decode()] = orjson.loads(v)
        except orjson.JSONDecodeError:
            out[k.decode()] = v.decode()
    return out


def expected_conversion(live: dict[str, Any]) -> str:
    """A bank has no tills: its conversion is not shown as 0 %, but as missing."""
    return DASH if live.get("vertical") == "bank" else fmt_ratio_pct(live["today"]["conversion_rate"])


def expected_tiles(live: dict[str, Any]) -> dict[str, str]:
    """The tiles a store's vertical shows: a shop's conversion, a branch's queue, a telecom shop's both."""
    total = (live.get("queue") or {}).get("total") or {}
    tiles = {
        "arrivals_15m": fmt_int(live["windows"]["15m"]["arrivals"]),
        "occupancy": fmt_int(live["occupancy"]["occupancy"]),
        "today_visitors": fmt_int(live["today"]["visitors"]),
    }
    if live.get("vertical") != "bank":
        tiles["conversion_rate"] = fmt_ratio_pct(live["today"]["conversion_rate"])
    if live.get("vertical") in ("bank", "telecom"):
        tiles.update({"waiting_now": fmt_int(total.get("waiting_now")),
                      "est_wait_s": fmt_duration(total.get("est_wait_s")),
                      "service_level_pct": fmt_pct(total.get("service_level_pct")),
                      "counters_active": fmt_int(total.get("counters_active"))})
    return tiles


def staffing_record(store_id: str, made_at_ms: int, agents: list[int], counters_active: int,
                    advice: str | None) -> dict[str, Any]:
    """A staffing record in the documented shape (schemas/json/staffing.record.schema.json)."""
    points = [{"target_ms": made_at_ms + (h + 1) * BUCKET_MS, "h": h + 1, "arrivals": 4.0 * a, "agents": a,
               "scheduled": a, "service_level": 0.86, "asa_s": 40.0, "abandon": None, "sl_at_active": 0.61,
               "abandon_at_active": None} for h, a in enumerate(agents)]
    return {"type": "staffing", "store_id": store_id, "region": None, "vertical": "bank", "tz": "UTC",
            "made_at_ms": made_at_ms, "bucket_ms": BUCKET_MS, "model": "erlang_c", "answer_s": 600.0,
            "target_sl": 0.8, "shrinkage": 0.0, "quantile": "hi80", "aht_s": 300.0, "service_cv": None,
            "patience_s": None, "counters_active": counters_active, "points": points, "advice": advice,
            "emitted_at_ms": made_at_ms}


def put_staffing(client: redis.Redis, prefix: str, record: dict[str, Any]) -> None:
    """Write a staffing record as the worker's sink writes a record kind of a newer stage."""
    keys, body, store = RedisKeys(prefix), orjson.dumps(record), record["store_id"]
    client.set(keys.store_record(store, "staffing"), body)
    client.xadd(keys.store_record_history(store, "staffing"), {"record": body}, maxlen=1000, approximate=True)
    client.publish(keys.record_channel("staffing", store), body)


def staffing_today(client: redis.Redis, prefix: str, live: dict[str, Any]) -> list[dict[str, Any]]:
    """The store's staffing records made on its day (its live record's, in its time zone), one per bucket."""
    zone = zoneinfo.ZoneInfo(live["tz"])
    start = dt.datetime.combine(dt.date.fromisoformat(live["day"]), dt.time(), zone)
    start_ms, end_ms = int(start.timestamp() * 1000), int((start + dt.timedelta(days=1)).timestamp() * 1000)
    keys = RedisKeys(prefix)
    records = [orjson.loads(f[b"record"]) for _, f in client.xrange(keys.store_record_history(live["store_id"],
                                                                                              "staffing"))]
    return list({r["made_at_ms"]: r for r in records if start_ms <= r["made_at_ms"] < end_ms}.values())


def tiles_on(page: Any) -> dict[str, str]:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#tiles .tile:not(.hidden)')]
        .map(t => [t.dataset.tile, t.querySelector('.value').textContent]))""")


def http_status(url: str, **headers: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_for(page: Any, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll a condition on the page (Playwright's own waits cover single elements only)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


# -- the real stack -----------------------------------------------------------------------------------------


def traffic_start() -> dt.datetime:
    """Noon UTC of the latest weekday at least a day ago: in the next 7 hours the simulator's London and
    New York banks and its New York shop are open, so there are tickets, tills and doors."""
    day = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date()
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(12, 0), dt.UTC)


def stable_stats(client: redis.Redis, prefix: str, quiet_s: float, timeout_s: float) -> int:
    """Wait until the worker's event count has stopped moving for `quiet_s`; return it."""
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = int(client.hget(RedisKeys(prefix).stats, "events") or 0)
        if now != last:
            last, since = now, time.monotonic()
        elif now > 0 and time.monotonic() - since >= quiet_s:
            return now
        time.sleep(0.25)
    raise AssertionError(f"the worker's counts did not settle within {timeout_s} s (at {last})")


def test_pages_show_redis_live_alerts_and_survive_a_dashboard_restart(
    services, worker_factory, dashboard_factory, unique_prefix, browser,
):
    prefix = unique_prefix
    keys = RedisKeys(prefix)
    client = redis.Redis.from_url(services.redis_url)
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=prefix, partitions=4))
    worker = worker_factory(idle_timeout_s=0).start()
    token = f"it-token-{uuid.uuid4().hex}"
    dashboard = dashboard_factory(token=token).start()
    start = traffic_start()
    simulator = subprocess.run(
        [sys.executable, "-m", "footfall.scripts.cli", "simulate", "--stores", "8", "--seed", "0", "--speed", "0",
         "--start", start.isoformat(), "--duration", "7", "--broker", services.bootstrap, "--topic-prefix", prefix,
         "--progress-s", "0"],
        env=worker.env, capture_output=True, text=True, timeout=120,
    )
    assert simulator.returncode == 0, simulator.stderr[-2000:]
    stable_stats(client, prefix, quiet_s=2.0, timeout_s=90)
    stores = sorted(keys.store_id_of(k) for k in client.scan_iter(match=keys.store_pattern("live")))
    assert {"bank-002", "bank-005", "retail-007"} <= set(stores), stores
    assert worker.alive

    # Who may ask: a foreign Host name (a DNS-rebinding page's) gets 421; the data needs the token.
    assert http_status(f"{dashboard.url}/api/overview", Authorization=f"Bearer {token}") == 200
    assert http_status(f"{dashboard.url}/api/overview", Authorization=f"Bearer {token}",
                       Host=f"evil.example:{dashboard.port}") == 421
    assert http_status(f"{dashboard.url}/api/overview") == 401
    assert http_status(f"{dashboard.url}/api/events", Authorization="Bearer wrong-token-0123456789") == 401

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    dialogs: list[str] = []
    context.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    # Without the token the page loads but shows no data, and says how to get in.
    locked = context.new_page()
    locked.goto(f"{dashboard.url}/")
    locked.wait_for_selector("#conn[data-state='locked']", timeout=10_000)
    assert "?token=" in locked.inner_text("#notice")
    assert locked.locator("#stores tbody tr").count() == 0
    locked.close()

    # The overview, opened once with the token: a cookie (HttpOnly, SameSite=Strict, not the token), and the
    # address without the token. Every row shows what its live hash holds.
    overview = context.new_page()
    overview.goto(f"{dashboard.url}/?token={token}")
    assert overview.url == f"{dashboard.url}/"
    [cookie] = context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and token not in cookie["value"]
    overview.wait_for_selector(f"#shown:text('{len(stores)} of {len(stores)} stores')", timeout=10_000)
    for store_id in stores:
        live = redis_live(client, prefix, store_id)
        cells = overview.evaluate("""(id) => Object.fromEntries([...document.querySelectorAll(
            `tr[data-store-id="${id}"] td`)].map(td => [td.dataset.col, td.textContent]))""", store_id)
        total = (live.get("queue") or {}).get("total") or {}
        assert cells["arrivals_15m"] == fmt_int(live["windows"]["15m"]["arrivals"]), store_id
        assert cells["occupancy"] == fmt_int(live["occupancy"]["occupancy"]), store_id
        assert cells["today_visitors"] == fmt_int(live["today"]["visitors"]), store_id
        assert cells["conversion_rate"] == expected_conversion(live), store_id
        assert cells["waiting_now"] == fmt_int(total.get("waiting_now")), store_id
    chain = {k.decode(): v.decode() for k, v in client.hgetall(keys.rollup_live("chain", CHAIN)).items()}
    assert overview.inner_text('#chain [data-tile="occupancy"] .value') == fmt_int(int(chain["occupancy"]))
    regions = client.hkeys(keys.rollup_members("chain", CHAIN, "live"))
    assert overview.locator("#regions tbody tr").count() == len(regions)

    # The bank's page: its tiles are its live hash, the queue's and no conversion (a bank has no tills).
    live = redis_live(client, prefix, "bank-002")
    # Its staffing: the worker's records of the bank's tickets when it made them, else records written here.
    staffed = staffing_today(client, prefix, live)
    source = "the worker"
    if not staffed:
        source = "this test"
        last_bucket = live["as_of_ms"] - live["as_of_ms"] % BUCKET_MS
        for k, (agents, active) in enumerate([(2, 2), (3, 2), (3, 3), (4, 3)]):
            put_staffing(client, prefix, staffing_record("bank-002", last_bucket - (3 - k) * BUCKET_MS,
                                                         [agents, agents + 1, agents], active, advice=None))
        staffed = staffing_today(client, prefix, live)
    print(f"bank-002: {len(staffed)} staffing records today, written by {source}")
    latest = orjson.loads(client.get(keys.store_record("bank-002", "staffing")))
    page = context.new_page()
    page.goto(f"{dashboard.url}/stores/bank-002")
    want = expected_tiles(live)
    wait_for(page, lambda: tiles_on(page) == want, 10, f"the tiles to show {want} (they show {tiles_on(page)})")
    assert "conversion_rate" not in tiles_on(page) and "counters_active" in tiles_on(page)
    assert page.locator("#chart svg rect.bar").count() >= 4, "today's buckets are drawn"
    # The staffing panel: the advice line, or that the counters open meet the target; counters recommended
    # (a point per record today) against those active; the latest record's recommendation ahead.
    page.wait_for_selector("#staffing-panel:not(.hidden) #staffing-chart svg polyline.staff-need", timeout=5_000)
    advice = page.inner_text("#staffing-advice")
    if latest["advice"]:
        assert advice == latest["advice"]
    else:
        assert advice.startswith(f"The {latest['counters_active']} counters open meet the target"), advice
    assert page.locator("#staffing-chart svg circle.staff-need").count() == min(len(staffed), 100)
    assert page.locator("#staffing-chart svg polyline.staff-active").count() >= 1
    assert page.locator("#staffing-chart svg polyline.staff-ahead").count() >= 1
    # A new record, short of counters, reaches the open page through the event stream.
    advice = "3 counters open, service level heading to 61 %; a 4th brings it to 86 %"
    pushed = {**latest, "made_at_ms": latest["made_at_ms"] + BUCKET_MS, "counters_active": 3, "advice": advice,
              "points": [{**p, "target_ms": p["target_ms"] + BUCKET_MS, "agents": max(p["agents"], 4 if i == 0 else 1)}
                         for i, p in enumerate(latest["points"])]}
    put_staffing(client, prefix, pushed)
    page.wait_for_selector("#staffing-advice[data-state='short']:text('a 4th brings it to 86 %')", timeout=5_000)
    assert page.locator("#staffing-chart svg circle.staff-need").count() == min(len(staffed), 100) + 1

    # The forecast is drawn with its bands: the worker's when it makes them, else one published here (which
    # must then arrive through the event stream).
    made = client.hget(keys.store_forecast("bank-002"), "arrivals")
    if made is None:
        last_bucket = live["as_of_ms"] - live["as_of_ms"] % BUCKET_MS
        put_forecast(client, prefix, forecast_record("bank-002", last_bucket, horizons=12))
        model = "calendar_regression"
    else:
        model = orjson.loads(made)["model"]
    page.wait_for_selector(f"#legend li.sw-forecast:text('{model}')", timeout=5_000)
    page.wait_for_selector("#chart svg polyline.forecast", timeout=5_000)
    assert page.locator("#chart svg polygon.band80").count() == 1
    assert page.locator("#chart svg polygon.band95").count() == 1

    # An alert published to Redis appears within a few seconds, without a reload.
    alert = alert_record("bank-002", f"surge-{uuid.uuid4().hex[:6]}", kind="surge", severity="warning",
                         at_ms=live["as_of_ms"], explanation="arrivals 11 in 14:30-14:45, expected 2-7")
    published = time.monotonic()
    put_alert(client, prefix, alert)
    page.wait_for_selector(f"#alerts li[data-alert-id='{alert['alert_id']}']", timeout=5_000)
    overview.wait_for_selector(f"#alerts li[data-alert-id='{alert['alert_id']}']", timeout=5_000)
    assert time.monotonic() - published < 5
    assert "arrivals 11 in 14:30-14:45, expected 2-7" in page.inner_text("#alerts")
    assert overview.inner_text("tr[data-store-id='bank-002'] td[data-col='alerts_open']") == "1"
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    # A new forecast reaches the open page through the event stream.
    newer = forecast_record("bank-002", live["as_of_ms"] - live["as_of_ms"] % BUCKET_MS, horizons=6)
    newer["model"] = "pushed_in_test"
    put_forecast(client, prefix, newer)
    page.wait_for_selector("#legend li.sw-forecast:text('pushed_in_test')", timeout=5_000)

    # Kill the dashboard: the page says so and keeps trying; start it again on the same port (the same token:
    # the page's cookie still opens it).
    page.evaluate("() => { window.notReloaded = true; }")
    dashboard.kill()
    page.wait_for_selector("#conn[data-state='reconnecting']", timeout=5_000)
    dashboard.start()
    # New traffic for the bank after the restart: the page must show it, live, without a reload.
    door = {"event_id": f"door-{uuid.uuid4().hex}", "store_id": "bank-002", "kind": "door",
            "ts": live["as_of_ms"] + 1_000, "schema_version": 1, "region": live["region"], "vertical": "bank",
            "door_id": "main", "sensor_id": "c1", "count_in": 7, "count_out": 0, "interval_s": 1}
    producer = KafkaProducer(bootstrap_servers=services.bootstrap)
    producer.send(f"{prefix}.events", key=b"bank-002", value=orjson.dumps(door))
    producer.flush()
    producer.close()
    wait_until(lambda: redis_live(client, prefix, "bank-002")["today"]["visitors"] == live["today"]["visitors"] + 7,
               30, "the worker to count the new arrivals")
    want = expected_tiles(redis_live(client, prefix, "bank-002"))
    wait_for(page, lambda: tiles_on(page) == want, 15, f"the tiles to show {want} after the restart")
    assert page.evaluate("() => window.notReloaded === true")
    assert page.get_attribute("#conn", "data-state") == "live"
    assert alert["alert_id"] in page.inner_text("#alerts") or page.locator(
        f"#alerts li[data-alert-id='{alert['alert_id']}']").count() == 1, "the snapshot read again keeps the alert"
    assert not dialogs, f"a page ran a dialog: {dialogs}"
    context.close()


# -- insights and segments ------------------------------------------------------------------------------------


def heat_cell(page: Any, day: int, hour: int) -> dict[str, str | None]:
    """The heatmap cell of a weekday (Monday 0) and local hour: its title and class."""
    selector = f"#heatmap td[data-day='{day}'][data-hour='{hour}']"
    return {"title": page.get_attribute(selector, "title"), "class": page.get_attribute(selector, "class")}


def segment_rows(page: Any, kind: str) -> list[list[str]]:
    """A kind's segments as shown: description, share today, share of the bucket."""
    return page.eval_on_selector_all(f"#segments [data-kind='{kind}'] tbody tr",
                                     "rows => rows.map(r => [...r.cells].map(c => c.textContent))")


def snapshot(dashboard: DashboardProcess, store_id: str) -> dict[str, Any]:
    """A store's snapshot from the dashboard's API (run without a token)."""
    with urllib.request.urlopen(f"{dashboard.url}/api/stores/{store_id}", timeout=5) as response:
        return orjson.loads(response.read())


def test_store_page_shows_insights_and_segments_and_follows_new_ones(
    services, dashboard_factory, unique_prefix, browser,
):
    settings = Settings(redis_url=services.redis_url, topic_prefix=unique_prefix)
    now_ms = int(time.time() * 1000)
    today = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).date()
    sunday = today - dt.timedelta(days=today.weekday() + 1)  # the last Sunday before today: a week summary
    bucket = now_ms - now_ms % BUCKET_MS - BUCKET_MS
    rng = random.Random(11)
    hostile = "<img src=x onerror=alert(1)> after hours"
    insights = insights_record("retail-050", sunday.isoformat(), cells={(0, 10): 42.0})
    segments = segments_record("retail-050", bucket, [
        segment_set("till", [("single item, weekday morning", 30, 3), ("full basket, weekend afternoon", 10, 1)]),
        segment_set("visit", [("quick look, no purchase", 12, 2), (hostile, 4, 0)])])
    # Written with the worker's own sink: the latest of each kind, its history and its channel.
    publish(settings, [live_record(sid, region="north", vertical="retail", as_of_ms=now_ms, rng=rng)
                       for sid in ("retail-050", "retail-051")] + [insights, segments])
    dashboard = dashboard_factory().start()
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    dialogs: list[str] = []
    context.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page = context.new_page()
    page.goto(f"{dashboard.url}/stores/retail-050")

    # The heatmap: 7 × 24 cells of the first series, arrivals; Monday 10:00 the busiest; hours never open blank.
    page.wait_for_selector("#insights-panel:not(.hidden) #heatmap td[data-day='0'][data-hour='10']", timeout=10_000)
    assert page.inner_text("#heatmap caption") == (
        f"arrivals per hour, mean over the last 4 weeks (to {sunday.isoformat()})")
    assert page.locator("#heatmap tbody td").count() == 7 * 24
    assert page.eval_on_selector_all("#heatmap tbody th", "hs => hs.map(h => h.textContent)") == [
        "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    cells = insights["heatmap"]["arrivals"]["mean"]
    assert page.locator("#heatmap td.hm-none").count() == sum(v is None for row in cells for v in row)
    assert heat_cell(page, 0, 10) == {"title": "Mon 10:00–11:00: 42.0 arrivals (mean of 4 days)", "class": "hm-8"}
    assert heat_cell(page, 6, 3) == {"title": "Sun 03:00–04:00: no data", "class": "hm-none"}
    assert heat_cell(page, 6, 9)["title"] == f"Sun 09:00–10:00: {cells[6][9]:.1f} arrivals (mean of 4 days)"

    # The day against last week and last year, per series.
    assert page.inner_text("#insights-today caption") == f"{sunday.isoformat()} against last week / last year"
    versus = page.eval_on_selector_all("#insights-today tbody tr", """rows => Object.fromEntries(rows.map(r =>
        [r.dataset.series, [...r.cells].map(c => c.textContent)]))""")
    assert versus == {"arrivals": ["arrivals", "412", "400", "+3.0 %", "380", "+8.4 %"],
                      "transactions": ["transactions", "95", "100", "-5.0 %", DASH, DASH]}
    # The week (a Sunday's record): each series' mean daily total against the week before, and the test.
    assert not page.locator("#insights-week").is_hidden()
    lines = page.eval_on_selector_all("#insights-week-lines li", "ls => ls.map(l => l.textContent)")
    assert lines == ["arrivals: 212.4 a day against 190.1 the week before (+11.7 %); p = 0.031, significant",
                     "transactions: 52.3 a day against 51.0 the week before (+2.5 %); p = 0.620, not significant"]
    assert "r = 0.87 over 28 days" in page.inner_text("#insights-correlation")

    # The segments: per kind, each description with its share today and in the closed bucket; text, never markup.
    page.wait_for_selector("#segments-panel:not(.hidden) #segments [data-kind='visit']", timeout=5_000)
    assert segment_rows(page, "till") == [["single item, weekday morning", "75.0 %", "75.0 %"],
                                          ["full basket, weekend afternoon", "25.0 %", "25.0 %"]]
    assert segment_rows(page, "visit") == [["quick look, no purchase", "75.0 %", "100.0 %"],
                                           [hostile, "25.0 %", "0.0 %"]]
    assert page.locator("#segments img").count() == 0

    # A new insights record (Monday's: no week) and a new segments record reach the open page live.
    monday = sunday + dt.timedelta(days=1)
    newer = insights_record("retail-050", monday.isoformat(), cells={(0, 10): 55.5},
                            today={"arrivals": day_versus(480, 400, None), "transactions": day_versus(90, 90, 80)})
    published = time.monotonic()
    publish(settings, [newer, segments_record("retail-050", bucket + BUCKET_MS, [
        segment_set("till", [("single item, weekday morning", 31, 1), ("full basket, weekend afternoon", 19, 9)])])])
    page.wait_for_selector("#heatmap td[data-day='0'][data-hour='10'][title*='55.5 arrivals']", timeout=5_000)
    assert time.monotonic() - published < 5
    assert page.inner_text("#heatmap caption").endswith(f"(to {monday.isoformat()})")
    assert page.eval_on_selector("#insights-today tr[data-series='arrivals']",
                                 "r => [...r.cells].map(c => c.textContent)") == [
        "arrivals", "480", "400", "+20.0 %", DASH, DASH]
    assert page.locator("#insights-week").is_hidden()
    wait_for(page, lambda: segment_rows(page, "till") == [["single item, weekday morning", "62.0 %", "10.0 %"],
                                                          ["full basket, weekend afternoon", "38.0 %", "90.0 %"]],
             5, "the new segments")
    assert page.locator("#segments [data-kind='visit']").count() == 0
    # The page read again shows the same, once the snapshot API serves it (its answers are kept for a second).
    wait_until(lambda: snapshot(dashboard, "retail-050")["insights"]["day"] == monday.isoformat(), 5,
               "the snapshot to hold the new insights")
    page.reload()
    page.wait_for_selector("#heatmap td[data-day='0'][data-hour='10'][title*='55.5 arrivals']", timeout=10_000)

    # A store without such records: neither panel.
    other = context.new_page()
    other.goto(f"{dashboard.url}/stores/retail-051")
    wait_for(other, lambda: other.inner_text("#tiles [data-tile='occupancy'] .value") != DASH, 10, "its snapshot")
    assert other.locator("#insights-panel").is_hidden() and other.locator("#segments-panel").is_hidden()
    assert not dialogs, f"a page ran a dialog: {dialogs}"
    context.close()


# -- data quality ------------------------------------------------------------------------------------------

#: The store page's tiles counted from door sensors: marked while the latest bucket's quality is partial or missing.
DOOR_TILES = ("arrivals_15m", "occupancy", "today_visitors", "conversion_rate")


def tile_marks(page: Any) -> dict[str, list[Any]]:
    """Each tile's data-quality marker as shown: whether it has the class, and its title."""
    return page.eval_on_selector_all("#tiles .tile", """ts => Object.fromEntries(ts.map(t =>
        [t.dataset.tile, [t.classList.contains('suspect'), t.getAttribute('title')]]))""")


def sensor_lines(page: Any, selector: str) -> list[str]:
    return page.eval_on_selector_all(f"{selector} li", "ls => ls.map(l => l.textContent)")


def test_store_page_shows_data_quality_marks_door_tiles_and_follows_new_buckets(
    services, dashboard_factory, unique_prefix, browser,
):
    settings = Settings(redis_url=services.redis_url, topic_prefix=unique_prefix)
    now_ms = int(time.time() * 1000)
    # The last closed bucket; with each sensor's uptime of the day before (as if it ended a local day).
    bucket = now_ms - now_ms % BUCKET_MS - BUCKET_MS
    rng = random.Random(13)
    hostile = "<img src=x onerror=alert(1)>"
    partial = quality_record("retail-060", bucket, {"front": 1.0, "c-side": 0.0, hostile: 0.5},
                             uptime={"front": 1.0, "c-side": 0.4167, hostile: 0.9})
    assert partial["quality"] == "partial" and partial["silent_sensors"] == ["c-side"]
    publish(settings, [live_record(sid, region="north", vertical="retail", as_of_ms=now_ms, rng=rng)
                       for sid in ("retail-060", "retail-061")] + [partial])
    dashboard = dashboard_factory().start()
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    dialogs: list[str] = []
    context.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page = context.new_page()
    page.goto(f"{dashboard.url}/stores/retail-060")

    # The badge: the grade, the bucket and the coverage; the silent sensor named, the half-covered one too.
    page.wait_for_selector("#quality:not(.hidden) #quality-badge.q-partial", timeout=10_000)
    assert page.inner_text("#quality-badge") == "Data quality: partial"
    start = dt.datetime.fromtimestamp(bucket / 1000, dt.UTC)
    end = start + dt.timedelta(milliseconds=BUCKET_MS)
    text = page.inner_text("#quality-text")
    assert text.startswith("bucket ") and f"{start:%H:%M}–{end:%H:%M} · coverage 50.0 % of 3 sensors" in text, text
    assert sensor_lines(page, "#quality-sensors") == [f"sensor {hostile} 50.0 % covered", "sensor c-side silent"]
    assert page.get_attribute("#quality-sensors li.silent", "data-sensor") == "c-side"
    assert page.locator("#quality img").count() == 0  # a sensor id is text, never markup
    # The day's uptime per sensor.
    assert page.inner_text("#quality-uptime-title") == f"Uptime {partial['uptime']['day']}:"
    assert sensor_lines(page, "#quality-uptime-list") == [f"{hostile} 90.0 %", "c-side 41.7 %", "front 100.0 %"]
    # The tiles counted from the door sensors are marked; the others are not.
    marks = tile_marks(page)
    for name in DOOR_TILES:
        assert marks[name] == [True, "based on partial sensor data"], name
    assert marks["waiting_now"] == [False, None]
    assert page.evaluate("""() => getComputedStyle(document.querySelector("[data-tile='occupancy'] .label"),
                                                    "::after").content""") == '" ⚠ partial"'

    # The next bucket, every sensor back: the badge follows live and the markers go; no uptime with it.
    ok = quality_record("retail-060", bucket + BUCKET_MS, {"front": 1.0, "c-side": 0.97, hostile: 0.93})
    assert ok["quality"] == "ok"
    published = time.monotonic()
    publish(settings, [ok])
    page.wait_for_selector("#quality-badge.q-ok", timeout=5_000)
    assert time.monotonic() - published < 5
    assert page.inner_text("#quality-badge") == "Data quality: ok"
    assert page.inner_text("#quality-text").endswith("coverage 96.7 % of 3 sensors")
    assert sensor_lines(page, "#quality-sensors") == []
    assert page.locator("#quality-uptime").is_hidden()
    assert all(mark == [False, None] for mark in tile_marks(page).values())

    # The page read again shows the same; a store without quality records shows no badge and no markers.
    wait_until(lambda: snapshot(dashboard, "retail-060")["quality"]["bucket_start_ms"] == bucket + BUCKET_MS, 5,
               "the snapshot to hold the new quality")
    page.reload()
    page.wait_for_selector("#quality:not(.hidden) #quality-badge.q-ok", timeout=10_000)
    other = context.new_page()
    other.goto(f"{dashboard.url}/stores/retail-061")
    wait_for(other, lambda: other.inner_text("#tiles [data-tile='occupancy'] .value") != DASH, 10, "its snapshot")
    assert other.locator("#quality").is_hidden()
    assert all(mark == [False, None] for mark in tile_marks(other).values())
    assert not dialogs, f"a page ran a dialog: {dialogs}"
    context.close()


# -- 500 stores --------------------------------------------------------------------------------------------



def test_500_stores_one_snapshot_one_stream_quick_sort_filter_and_updates(
    services, dashboard_factory, unique_prefix, browser,
):
    prefix = unique_prefix
    settings = Settings(redis_url=services.redis_url, topic_prefix=prefix)
    rng = random.Random(500)
    now_ms = int(time.time() * 1000)
    verticals = ["retail", "bank", "telecom"]
    stores = [(f"s-{i:04d}", f"region-{i % 12:02d}", verticals[i % 3]) for i in range(500)]
    lives = {sid: live_record(sid, region=region, vertical=vertical, as_of_ms=now_ms, rng=rng)
             for sid, region, vertical in stores}
    publish(settings, list(lives.values()))
    dashboard = dashboard_factory().start()

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url.removeprefix(dashboard.url)))
    started = time.monotonic()
    page.goto(f"{dashboard.url}/")
    page.wait_for_selector("#shown:text('500 of 500 stores')", timeout=10_000)
    loaded_s = time.monotonic() - started
    assert page.locator("#stores tbody tr").count() == 500
    assert loaded_s < 8, f"500 stores took {loaded_s:.1f} s to show"

    # Sorting re-renders 500 rows quickly (measured in the page, layout included).
    took_ms = page.evaluate("""() => { const t = performance.now();
        document.querySelector('th[data-sort="occupancy"]').click(); document.body.offsetHeight;
        return performance.now() - t; }""")
    assert took_ms < 500, f"sorting took {took_ms:.0f} ms"
    top = sorted(lives.values(), key=lambda r: (-r["occupancy"]["occupancy"], r["store_id"]))[:5]
    shown = page.eval_on_selector_all("#stores tbody tr", "rows => rows.slice(0, 5).map(r => r.dataset.storeId)")
    assert shown == [r["store_id"] for r in top]
    assert "sort=occupancy" in page.url and "order=desc" in page.url

    # Filtering by text.
    page.fill("#q", "region-03")
    page.wait_for_selector("#shown:text('42 of 500 stores')", timeout=5_000)
    assert {r for r in page.eval_on_selector_all("#stores tbody tr", "rows => rows.map(r => r.dataset.storeId)")} == {
        sid for sid, region, _ in stores if region == "region-03"}
    page.fill("#q", "")
    page.wait_for_selector("#shown:text('500 of 500 stores')", timeout=5_000)

    # Every store changes twice: the page follows through the one event stream, with no request per store.
    for round_ in range(2):
        for record in lives.values():
            record["occupancy"] = {"occupancy": 1000 + round_ * 1000 + int(record["store_id"][2:])}
            record["emitted_at_ms"] = now_ms + 1000 * (round_ + 1)
        publish(settings, list(lives.values()))
    wait_for(page, lambda: page.inner_text("tr[data-store-id='s-0499'] td[data-col='occupancy']") == "2,499",
             10, "the last store's new occupancy")
    sample = rng.sample(sorted(lives), 20)
    cells = page.evaluate("""(ids) => ids.map(id =>
        document.querySelector(`tr[data-store-id="${id}"] td[data-col="occupancy"]`).textContent)""", sample)
    assert cells == [fmt_int(lives[sid]["occupancy"]["occupancy"]) for sid in sample]
    api = [u for u in requests if u.startswith("/api/")]
    assert api == ["/api/events", "/api/overview"] or api == ["/api/overview", "/api/events"], api

    # Hostile store ids: a short plain 4xx, nothing of them reflected, nothing run.
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    for path in ("/stores/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "/stores/%22%3E%3Cimg%20src=x%20onerror=alert(1)%3E",
                 "/stores/" + "x" * 65, "/api/stores/..%2F..%2Fetc%2Fpasswd", "/?sort=%3Cscript%3E"):
        response = page.goto(f"{dashboard.url}{path}")
        assert response is not None and 400 <= response.status < 500, path
        assert response.headers["content-type"].startswith("text/plain"), path
        text = page.inner_text("body")
        assert len(text) < 100 and "<" not in text and "alert" not in text, (path, text)
    assert not dialogs
    context.close()


# -- comparable stores ----------------------------------------------------------------------------------------

#: Planted: three daytime shops and three evening ones (identical shapes within each kind), their arrivals that day.
DAYTIME = {"retail-070": 300, "retail-071": 400, "retail-072": 500}
EVENING = {"retail-073": 100, "retail-074": 200, "retail-075": 900}


def planted_insights(store_id: str, day: str, arrivals: int) -> dict[str, Any]:
    evening = {(d, h): (40.0 if h >= 18 else 1.0) for d in range(7) for h in range(9, 24)}
    return insights_record(store_id, day, cells=evening if store_id in EVENING else None,
                           today={"arrivals": day_versus(arrivals, None, None),
                                  "transactions": day_versus(10, None, None)})


def test_store_page_compares_the_store_with_its_peer_group_and_follows_new_comparisons(
    services, dashboard_factory, unique_prefix, browser,
):
    from footfall.scripts.peers import refresh

    settings = Settings(redis_url=services.redis_url, topic_prefix=unique_prefix)
    client = redis.Redis.from_url(services.redis_url)
    keys = RedisKeys(unique_prefix)
    now_ms = int(time.time() * 1000)
    day = day_of(now_ms - 86_400_000)
    for store_id, arrivals in {**DAYTIME, **EVENING}.items():
        client.set(keys.store_record(store_id, "insights"), orjson.dumps(planted_insights(store_id, day, arrivals)))
    refresh(client, keys, k=2, min_cells=1)  # `footfall peers`, as a deployment runs it
    publish(settings, [live_record("retail-070", region="north", vertical="retail", as_of_ms=now_ms,
                                   rng=random.Random(21))])
    dashboard = dashboard_factory().start()
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(f"{dashboard.url}/stores/retail-070")

    # Its group is the other daytime shops: their median that day (counted here) against its own.
    page.wait_for_selector("#peers-panel:not(.hidden)", timeout=10_000)
    median = (400 + 500) / 2
    line = page.inner_text("#peers-line")
    assert line.startswith(f"300 arrivals on {day}, {100 * (1 - 300 / median):.1f} % below the median of 2 peers "
                           f"({median:,.0f})"), line
    assert sorted(page.locator("#peers-list a").all_inner_texts()) == ["retail-071", "retail-072"]
    assert page.get_attribute("#peers-list a >> nth=0", "href").startswith("/stores/retail-07")
    assert "3 stores" in page.inner_text("#peers-group")

    # The next run, after a busier day of the store: the comparison follows live, over the event stream.
    client.set(keys.store_record("retail-070", "insights"), orjson.dumps(planted_insights("retail-070", day, 600)))
    refresh(client, keys, k=2, min_cells=1)
    want = f"600 arrivals on {day}, {100 * (600 / median - 1):.1f} % above the median of 2 peers"
    wait_for(page, lambda: page.inner_text("#peers-line").startswith(want), 5, "the new comparison")
    context.close()
