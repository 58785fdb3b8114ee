"""Customer segments: the ARI, stable ids, descriptions, shares per bucket, state round trip, planted segments.

References are computed here independently (pair enumeration, brute-force permutation search,
counts by hand) or are published values; never the code's own earlier output.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import random
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from footfall.operators.pipeline.segments_stage import CustomerSegments, StoreSegments
from footfall.operators.pipeline.stage import ClosedBucket, StoreContext
from footfall.operators.segments import (
    TILL_FEATURES,
    OnlineSegments,
    adjusted_rand_index,
    centre_of,
    describe,
    kmeans,
    match_ids,
    till_features,
    visit_features,
)
from footfall.schemas.events import PosEvent, VisitEvent
from footfall.scripts.segmentseval import planted_visits, read_transactions, replay

TZ = "Europe/London"
HOUR_MS = 3_600_000
MONDAY = dt.datetime(2026, 9, 7, tzinfo=ZoneInfo(TZ))


# -- the adjusted Rand index -----------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b", "expected"), [
    ([0, 0, 1, 1], [0, 0, 1, 1], 1.0),  # identical
    ([0, 0, 1, 1], [1, 1, 0, 0], 1.0),  # identical up to labels
    # by hand: index 1, E = 2 * 1 / 6, max 1.5 -> (2/3) / (7/6); scikit-learn's documented example gives 0.57...
    ([0, 0, 1, 1], [0, 0, 1, 2], 4 / 7),
    ([0, 0, 0, 0], [0, 1, 2, 3], 0.0),  # one cluster against singletons: nothing beyond chance
    ([0, 0, 1, 1], [0, 1, 0, 1], -0.5),  # by hand: index 0, E = 2 * 2 / 6, max 2 -> (-2/3) / (4/3)
    # A 3x3 table worked by hand below: [[1, 1, 0], [1, 2, 1], [0, 0, 4]].
    ([0, 0, 1, 1, 1, 1, 2, 2, 2, 2], [0, 1, 0, 1, 1, 2, 2, 2, 2, 2], None),
])
def test_ari_hand_worked(a: list[int], b: list[int], expected: float | None) -> None:
    if expected is None:
        # sum C(nij,2) = 1 + 6 = 7; rows C(2,2)+C(4,2)+C(4,2) = 13; cols C(2,2)+C(3,2)+C(5,2) = 14; C(10,2) = 45
        e = 13 * 14 / 45
        expected = (7 - e) / ((13 + 14) / 2 - e)
    assert adjusted_rand_index(a, b) == pytest.approx(expected, abs=1e-12)


def _ari_by_pairs(a: list[int], b: list[int]) -> float:
    """The same index by enumerating every pair of items (independent of the contingency table)."""
    both = in_a = in_b = pairs = 0
    for i, j in itertools.combinations(range(len(a)), 2):
        pairs += 1
        in_a += a[i] == a[j]
        in_b += b[i] == b[j]
        both += a[i] == a[j] and b[i] == b[j]
    expected = in_a * in_b / pairs
    return (both - expected) / ((in_a + in_b) / 2 - expected)


def test_ari_equals_pair_enumeration_on_random_partitions() -> None:
    rng = random.Random(3)
    for _ in range(20):
        n = rng.randrange(5, 40)
        a, b = [rng.randrange(4) for _ in range(n)], [rng.randrange(3) for _ in range(n)]
        if len(set(a)) > 1 and len(set(b)) > 1:
            assert adjusted_rand_index(a, b) == pytest.approx(_ari_by_pairs(a, b), abs=1e-12)


# -- stable ids ------------------------------------------------------------------------------------


def test_ids_follow_permuted_and_drifted_centres() -> None:
    rng = np.random.default_rng(5)
    for k in (2, 3, 4, 6):
        previous = rng.normal(0, 5, size=(k, 5))
        ids = rng.permutation(10)[:k].tolist()
        perm = rng.permutation(k)
        new = previous[perm] + rng.normal(0, 0.2, size=(k, 5))  # drifted a little, in another order
        assert match_ids(previous, ids, new) == [ids[p] for p in perm]


def test_matching_is_the_least_total_distance_by_brute_force() -> None:
    rng = np.random.default_rng(11)
    for k in (3, 4, 5):
        previous, new = rng.normal(size=(k, 3)), rng.normal(size=(k, 3))
        got = match_ids(previous, list(range(k)), new)
        d = np.linalg.norm(new[:, None, :] - previous[None, :, :], axis=2)
        best = min(sum(d[i, p[i]] for i in range(k)) for p in itertools.permutations(range(k)))
        assert sum(d[i, got[i]] for i in range(k)) == pytest.approx(best, abs=1e-12)


def _till(i: int, items: int, hour: float, day: int = 0, amount: float = 0.0) -> dict[str, float]:
    ts = MONDAY + dt.timedelta(days=day, hours=hour, minutes=i % 7)
    return till_features(items, amount, int(ts.timestamp() * 1000), TZ)


def _three_groups(n: int, seed: int = 1) -> list[dict[str, float]]:
    rng = random.Random(seed)
    groups = [(1, 8.5, 0), (2, 13.0, 2), (7, 17.5, 5)]  # items, hour, day (Mon, Wed, Sat)
    return [_till(i, g[0], g[1] + rng.uniform(-0.5, 0.5), g[2]) for i, g in
            ((i, groups[rng.randrange(3)]) for i in range(n))]


def test_segment_ids_survive_a_restart_with_centres_in_another_order() -> None:
    seg = OnlineSegments("till", k=3, min_events=60)
    xs = _three_groups(200)
    for x in xs:
        seg.learn_predict(x)
    seg.publish()
    before = [seg.predict(x) for x in xs]
    state = seg.to_state()
    # The same centres come back in another order (a model seeded again): ids must follow the centres.
    order = [2, 0, 1]
    state["centres"] = [state["centres"][i] for i in order]
    state["ids"] = [0, 1, 2]  # ids unknown: publish finds them from the published centres
    moved = OnlineSegments.from_state(state, kind="till", k=3, min_events=60)
    moved.publish()
    assert [moved.predict(x) for x in xs] == before


# -- descriptions ----------------------------------------------------------------------------------


def test_centre_hour_is_the_circular_mean() -> None:
    late, early = _till(0, 1, 23.0), _till(0, 1, 24.0)  # 23:00 Monday and 00:00 Tuesday
    mean = [(late[f] + early[f]) / 2 for f in TILL_FEATURES]
    assert centre_of("till", mean)["hour"] == pytest.approx(23.5, abs=0.02)  # not 11.5


@pytest.mark.parametrize(("kind", "centre", "words"), [
    ("till", {"items": 1.0, "amount": 0.0, "hour": 8.0, "weekend": 0.0}, "single item, weekday morning"),
    ("till", {"items": 6.2, "amount": 41.5, "hour": 12.5, "weekend": 1.0},
     "large basket (6.2 items), spends about 41.50, weekend midday"),
    ("till", {"items": 2.3, "amount": 0.0, "hour": 15.0, "weekend": 0.3}, "2.3 items, any day afternoon"),
    ("visit", {"dwell_s": 2400.0, "spend": 35.0, "hour": 15.5, "weekend": 0.8},
     "long visit (40 min), weekend afternoon, spends about 35.00"),
    ("visit", {"dwell_s": 150.0, "spend": 0.0, "hour": 19.0, "weekend": 0.05}, "short visit (2 min), weekday evening"),
    ("visit", {"dwell_s": 600.0, "spend": 0.0, "hour": 2.0, "weekend": 0.0}, "visit (10 min), weekday night"),
])
def test_descriptions_in_words(kind: str, centre: dict[str, float], words: str) -> None:
    assert describe(kind, centre) == words


def test_centre_in_original_units() -> None:
    ts = int((MONDAY + dt.timedelta(days=5, hours=14, minutes=30)).timestamp() * 1000)  # Saturday 14:30 local
    x = visit_features(1800.0, ts + 1_800_000, TZ, spend=12.0)  # ended 30 min later: its start is 14:30
    c = centre_of("visit", [x[f] for f in ("log_dwell", "log_spend", "hour_sin", "hour_cos", "weekend")])
    assert (c["dwell_s"], c["spend"], c["hour"], c["weekend"], c["items"]) == (1800.0, 12.0, 14.5, 1.0, None)


# -- the stage: shares per bucket and per day, state round trip -------------------------------------


def _sales(n: int, seed: int, start: dt.datetime = MONDAY) -> list[PosEvent]:
    rng = random.Random(seed)
    out, ts = [], int((start + dt.timedelta(hours=8)).timestamp() * 1000)
    for i in range(n):
        ts += rng.randrange(30_000, 900_000)
        small = rng.random() < 0.6
        out.append(PosEvent(event_id=f"p{i}", store_id="s1", ts_ms=ts, region=None, zone=None, vertical="retail",
                            transaction_id=f"t{i}", amount=rng.uniform(2, 5) if small else rng.uniform(30, 80),
                            items=1 if small else rng.randrange(4, 9), currency="GBP", till_id="1",
                            customer_id=f"c{i % 50}"))
    return out


def _drive(stage, events, ctx, closed_to=None):
    """Feed events, closing each bucket when time passes it; (segment given to each event, outputs)."""
    given, outputs, current = [], [], closed_to
    for e in events:
        start = e.ts_ms - e.ts_ms % ctx.bucket_ms
        if current is not None and start > current:
            outputs += stage.on_bucket_closed(ClosedBucket(current, ctx.bucket_ms, {}), ctx)
        current = start
        stage.on_event(e, ctx)
        given.append((e.ts_ms, stage.last[2]))
    outputs += stage.on_bucket_closed(ClosedBucket(current, ctx.bucket_ms, {}), ctx)
    return given, outputs


def test_shares_per_bucket_and_day_equal_a_count_of_the_assignments() -> None:
    ctx = StoreContext("s1", HOUR_MS, TZ, vertical="retail")
    stage = CustomerSegments(till_k=3, min_events=40, min_days=0).build(ctx, None)
    given, outputs = _drive(stage, _sales(600, seed=2), ctx)
    assert outputs
    by_bucket: dict[int, list[int]] = {}
    for ts, seg in given:
        if seg is not None:
            by_bucket.setdefault(ts - ts % HOUR_MS, []).append(seg)
    day_totals: dict[str, list[int]] = {}
    for out in outputs:
        [till] = out.kinds
        mine = by_bucket.get(out.made_at_ms, [])
        day = dt.datetime.fromtimestamp(out.made_at_ms / 1000, ZoneInfo(TZ)).date().isoformat()
        totals = day_totals.setdefault(day, [0, 0, 0])
        for s in mine:
            totals[s] += 1
        assert out.day == day
        assert [s["bucket_count"] for s in till["segments"]] == [mine.count(i) for i in range(3)]
        assert [s["day_count"] for s in till["segments"]] == totals
        assert till["bucket_events"] == len(mine) and till["day_events"] == sum(totals)
        if mine:
            assert [s["bucket_share"] for s in till["segments"]] == [round(mine.count(i) / len(mine), 4)
                                                                    for i in range(3)]
    assert sum(len(v) for v in by_bucket.values()) == sum(o.kinds[0]["bucket_events"] for o in outputs)


def test_no_record_before_the_warm_up_nor_for_a_store_without_such_events() -> None:
    ctx = StoreContext("s1", HOUR_MS, TZ, vertical="retail")
    stage = CustomerSegments(min_events=500).build(ctx, None)
    _, outputs = _drive(stage, _sales(100, seed=4), ctx)
    assert outputs == []
    assert CustomerSegments().build(ctx, None).on_bucket_closed(ClosedBucket(0, HOUR_MS, {}), ctx) == []


def test_state_round_trip_gives_the_same_assignments() -> None:
    ctx = StoreContext("s1", HOUR_MS, TZ, vertical="retail")
    config = CustomerSegments(till_k=3, min_events=40, min_days=0)
    events = _sales(400, seed=6)
    stage = config.build(ctx, None)
    _drive(stage, events[:250], ctx)
    restored = config.build(ctx, json.loads(json.dumps(stage.to_state())))
    last = events[249].ts_ms - events[249].ts_ms % HOUR_MS
    twin_given, twin_out = _drive(stage, events[250:], ctx, closed_to=last)
    given, out = _drive(restored, events[250:], ctx, closed_to=last)
    assert given == twin_given
    assert [o.fields() for o in out] == [o.fields() for o in twin_out]
    assert restored.to_state() == stage.to_state()


def stage_with_a_visit() -> tuple[StoreContext, StoreSegments, int]:
    """A retail store's segments stage at 10:00 on a Monday, one visit (by `dev-0`) just ended.

    Customers are remembered once the store has visits (a store without them has no spend to link).
    """
    ctx = StoreContext("s1", HOUR_MS, TZ, vertical="retail")
    stage = CustomerSegments(min_events=10, min_days=0).build(ctx, None)
    t = int((MONDAY + dt.timedelta(hours=10)).timestamp() * 1000)
    stage.on_event(VisitEvent(event_id="v0", store_id="s1", ts_ms=t - 1000, region=None, zone=None, vertical="retail",
                              action="leave", visit_id="v0", visitor_id="dev-0", dwell_s=60.0), ctx)
    return ctx, stage, t


def test_a_visit_is_linked_to_a_spend_by_its_visitor_id() -> None:
    ctx, stage, t = stage_with_a_visit()
    pay = PosEvent(event_id="p", store_id="s1", ts_ms=t, region=None, zone=None, vertical="retail",
                   transaction_id="t", amount=24.0, items=2, currency=None, till_id=None, customer_id="dev-1")
    stage.on_event(pay, ctx)
    for visitor, end, expected in (("dev-1", t + 60_000, 24.0), ("dev-2", t + 60_000, 0.0),
                                   ("dev-1", t + 3_600_000, 0.0)):  # paid before that visit started: not its spend
        stage.on_event(VisitEvent(event_id="v", store_id="s1", ts_ms=end, region=None, zone=None, vertical="retail",
                                  action="leave", visit_id="v", visitor_id=visitor, dwell_s=600.0), ctx)
        assert math.expm1(stage.last[1]["log_spend"]) == pytest.approx(expected)


# -- recovery of planted segments -------------------------------------------------------------------


def test_planted_visit_segments_are_recovered() -> None:
    events, planted = planted_visits(n=1500, seed=7, tz=TZ)
    r = replay(events, "visit", CustomerSegments(visit_k=3, min_events=200), TZ)
    assert adjusted_rand_index(r.final(), planted) >= 0.8
    words = [s["description"] for s in r.outputs[-1].kinds[0]["segments"]]
    assert any(w.startswith("long visit") and "weekend afternoon" in w for w in words), words


def test_batch_kmeans_separates_blobs() -> None:
    rng = np.random.default_rng(0)
    truth = np.repeat([0, 1, 2], 50)
    X = np.array([[0, 0], [6, 0], [0, 6]])[truth] + rng.normal(0, 0.5, size=(150, 2))
    _, labels = kmeans(X, 3, restarts=4, seed=1)
    assert adjusted_rand_index(labels.tolist(), truth.tolist()) == 1.0


def test_transactions_are_grouped_from_item_lines(tmp_path) -> None:
    path = tmp_path / "lines.csv"
    path.write_text("timestamp_local,transaction,item\n2017-03-26 00:30:00,7,Tea\n2017-03-26 00:30:00,7,Scone\n"
                    "2017-03-25 23:59:00,6,Bread\n2017-03-26 00:31:00,8,NONE\n")
    txns = read_transactions(path, TZ, ignore_items=["NONE"])
    assert [(t.transaction_id, t.items) for t in txns] == [("6", 1), ("7", 2)]
    assert txns[1].ts_ms == int(dt.datetime(2017, 3, 26, 0, 30, tzinfo=dt.UTC).timestamp() * 1000)  # GMT then


# -- through the store's pipeline and the worker's record builder ------------------------------------


def test_pipeline_publishes_valid_segments_records_and_restores_its_stage() -> None:
    import jsonschema
    import orjson

    from footfall.operators.pipeline.store import StoreParams
    from footfall.operators.pipeline.store_pipeline import StorePipeline
    from footfall.schemas.jsonschema import record_schema_path
    from footfall.stream.records import StoreMeta, record_of

    params, stages = StoreParams(bucket_ms=HOUR_MS, grace_ms=0, tz=TZ), [CustomerSegments(min_events=40, min_days=0)]
    events = _sales(300, seed=8)
    pipeline = StorePipeline("s1", params, stages, vertical="retail")
    for e in events[:200]:
        pipeline.update(e)
    pipeline.pop_outputs()
    saved = orjson.loads(orjson.dumps(pipeline.stage_states()))
    restored = StorePipeline.from_state("s1", params, stages, pipeline.to_state(), saved)
    validator = jsonschema.Draft202012Validator(json.loads(record_schema_path("segments").read_text()))
    twin_records, records = [], []
    for e in events[200:]:
        for p, out in ((pipeline, twin_records), (restored, records)):
            p.update(e)
            out += [record_of(StoreMeta("s1", None, "retail", TZ), o, HOUR_MS, now_ms=0)
                    for o in p.pop_outputs() if o.kind == "segments"]
    assert records and records == twin_records
    for record in records:
        assert list(validator.iter_errors(orjson.loads(orjson.dumps(record)))) == []
        assert record["type"] == "segments" and record["kinds"][0]["kind"] == "till"


def test_remembered_payers_stay_within_the_bound_and_the_visit_length() -> None:
    from footfall.operators.pipeline.segments_stage import MAX_CUSTOMERS, MAX_VISIT_MS

    ctx, stage, t = stage_with_a_visit()
    paid: dict[str, int] = {}  # brute force: customer -> when they paid, oldest first
    for i in range(MAX_CUSTOMERS + 50):  # one payer a second: past the bound, within a visit's length
        customer, ts = f"dev-{i % (MAX_CUSTOMERS + 30)}", t + i * 1000
        stage.on_event(PosEvent(event_id=f"p{i}", store_id="s1", ts_ms=ts, region=None, zone=None, vertical="retail",
                                transaction_id=f"t{i}", amount=5.0, items=1, currency=None, till_id=None,
                                customer_id=customer), ctx)
        paid.pop(customer, None)
        paid[customer] = ts
        while len(paid) > MAX_CUSTOMERS:
            del paid[next(iter(paid))]
        assert {c: v[0] for c, v in stage.customers.items()} == paid
    late = t + MAX_CUSTOMERS * 1000 + MAX_VISIT_MS + 60_000  # every earlier payer paid longer than a visit ago
    stage.on_event(PosEvent(event_id="pz", store_id="s1", ts_ms=late, region=None, zone=None, vertical="retail",
                            transaction_id="tz", amount=5.0, items=1, currency=None, till_id=None,
                            customer_id="dev-new"), ctx)
    assert list(stage.customers) == ["dev-new"]
