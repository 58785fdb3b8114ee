"""The staffing stage against brute-force references: counters open, per-service lines, retail associates, state."""

from __future__ import annotations

import math
import random

import pytest

from footfall.operators.forecasting.forecast_select import Forecast
from footfall.operators.forecasting.store_forecast import PublishedForecast
from footfall.operators.pipeline.staffing_stage import StaffingAdvice
from footfall.operators.pipeline.stage import ClosedBucket, ForecastOutput, StoreContext
from footfall.operators.staffing.erlang import required_agents
from footfall.schemas.events import QueueEvent

MINUTE_MS = 60_000
BUCKET_MS = 15 * MINUTE_MS
BANK = StoreContext("bank-1", bucket_ms=BUCKET_MS, tz="UTC", vertical="bank")


def step(ts_ms: int, action: str, ticket: str, service: str = "teller", counter: str | None = None,
         wait_s: float | None = None, service_s: float | None = None) -> QueueEvent:
    return QueueEvent(event_id=f"{ticket}-{action}", store_id="bank-1", ts_ms=ts_ms, region=None, zone=None,
                      vertical="bank", action=action, ticket_id=ticket, service=service, counter=counter,
                      customer_id=None, wait_s=wait_s, service_s=service_s)


def forecast(series: str, values: list[float], start_ms: int = BUCKET_MS) -> list[ForecastOutput]:
    f = Forecast(start_ms, BUCKET_MS, BUCKET_MS, "m", values, [v * 0.5 for v in values], values,
                 [v * 0.25 for v in values], [v * 1.5 for v in values])
    return [ForecastOutput(PublishedForecast(series, False, f))]


def random_day(seed: int) -> list[QueueEvent]:
    """Tickets of three services through up to 6 counters over two hours, some abandoned, in time order."""
    rng = random.Random(seed)
    events = []
    for k in range(150):
        issued = rng.randrange(0, 120 * MINUTE_MS)
        service = rng.choice(["teller", "teller", "advice", "cards"])
        ticket = f"T{k}"
        events.append(step(issued, "issued", ticket, service))
        wait_ms = rng.randrange(0, 20 * MINUTE_MS)
        if rng.random() < 0.15:
            events.append(step(issued + wait_ms, "abandoned", ticket, service, wait_s=wait_ms / 1000))
            continue
        counter = f"c{rng.randrange(6)}"
        called = issued + wait_ms
        events.append(step(called, "called", ticket, service, counter))
        if rng.random() < 0.9:  # some are still being served at the end
            service_ms = rng.randrange(MINUTE_MS, 15 * MINUTE_MS)
            events.append(step(called + service_ms, "served", ticket, service, counter, wait_s=wait_ms / 1000,
                               service_s=service_ms / 1000))
    return sorted(events, key=lambda e: e.ts_ms)


@pytest.mark.parametrize("seed", range(5))
def test_counters_open_are_those_serving_or_busy_within_two_service_times(seed):
    events = random_day(seed)
    stage = StaffingAdvice(service_fading=0.0).build(BANK, None)
    cut = len(events) * 2 // 3
    for event in events[:cut]:
        stage.on_event(event, BANK)
    at_ms = events[cut - 1].ts_ms
    aht_s = 400.0
    # Brute force: a counter is open if a ticket called there has not ended by now, or if it called or
    # ended a ticket within the window before now.
    window_ms = 1000 * min(1800.0, max(300.0, 2 * aht_s))
    ended = {e.ticket_id for e in events[:cut] if e.action in ("served", "abandoned", "no_show")}
    open_ = set()
    for e in events[:cut]:
        if e.counter is None:
            continue
        if e.action == "called" and e.ticket_id not in ended:
            open_.add(e.counter)
        if e.ts_ms >= at_ms - window_ms:
            open_.add(e.counter)
    assert stage.counters_open(at_ms, aht_s) == len(open_)


def test_each_service_gets_its_share_and_the_counters_it_alone_would_need():
    events = random_day(7)
    stage = StaffingAdvice(service_fading=0.0, patience_fading=0.0, answer_s=300, target_sl=0.8).build(BANK, None)
    for event in events:
        stage.on_event(event, BANK)
    [record] = stage.on_bucket_closed(ClosedBucket(0, BUCKET_MS, {}, forecast("tickets_issued", [20.0, 30.0])),
                                      BANK)
    issued = [e for e in events if e.action == "issued"]
    assert [s["service"] for s in record.services] == sorted({e.service for e in issued})
    for line in record.services:
        mine = [e for e in events if e.service == line["service"]]
        share = sum(e.action == "issued" for e in mine) / len(issued)
        services = [e.service_s for e in mine if e.action == "served"]
        waited = sum(e.wait_s for e in mine if e.action in ("served", "abandoned"))
        gave_up = sum(e.action == "abandoned" for e in mine)
        assert line["share"] == pytest.approx(share, abs=1e-4)
        assert line["arrivals"] == round(20.0 * share, 1)
        assert line["aht_s"] == max(1, round(sum(services) / len(services)))
        assert line["patience_s"] == (max(1, round(waited / gave_up)) if gave_up else None)
        want = required_agents(line["arrivals"], interval_s=900, aht_s=line["aht_s"], answer_s=300,
                               target_sl=0.8, patience_s=line["patience_s"])
        assert line["agents"] == want.agents
    assert sum(s["share"] for s in record.services) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("ratio", [10.0, 15.0, 22.5])
def test_a_retail_floor_gets_visitors_per_hour_over_the_ratio(ratio):
    shop = StoreContext("shop-1", bucket_ms=BUCKET_MS, tz="UTC", vertical="retail")
    values = [0.0, 0.04, 3.75, 7.5, 11.26, 40.0]
    stage = StaffingAdvice(shoppers_per_associate=ratio, shrinkage=0.25).build(shop, None)
    [record] = stage.on_bucket_closed(ClosedBucket(0, BUCKET_MS, {}, forecast("arrivals", values)), shop)
    assert record.model == "ratio" and record.counters_active is None and record.advice is None
    for value, point in zip(values, record.points, strict=True):
        arrivals = round(value, 1)
        # Whole associates covering the hour's visitors: the smallest n with n * ratio >= visitors per hour.
        n = next(n for n in range(1000) if n * ratio >= arrivals * 4 - 1e-9)
        assert (point["arrivals"], point["agents"]) == (arrivals, n)
        assert point["scheduled"] == next(s for s in range(1000) if s * 0.75 >= n - 1e-9)
        assert point["service_level"] is None


def test_state_round_trips_and_older_states_load():
    events = random_day(3)
    config = StaffingAdvice()
    stage = config.build(BANK, None)
    for event in events:
        stage.on_event(event, BANK)
    outputs = forecast("tickets_issued", [12.0, 18.0])
    bucket = ClosedBucket(events[-1].ts_ms // BUCKET_MS * BUCKET_MS, BUCKET_MS, {}, outputs)
    again = config.build(BANK, stage.to_state())
    assert again.on_bucket_closed(bucket, BANK) == stage.on_bucket_closed(bucket, BANK)
    # A state saved before counters and services were followed: tickets of two steps, nothing else.
    older = {"service": stage.service.to_state(), "patience": stage.patience.to_state(),
             "tickets": {"A1": [1_000, None], "A2": [2_000, 3_000]}}
    loaded = config.build(BANK, older)
    assert loaded.tickets == {"A1": [1_000, None, None], "A2": [2_000, 3_000, None]}
    loaded.on_event(step(4_000, "served", "A2", counter="c1", service_s=60.0), BANK)
    assert loaded.counters == {"c1": 4_000} and "A2" not in loaded.tickets
    assert math.isfinite(loaded.on_bucket_closed(bucket, BANK)[0].points[0]["service_level"])
