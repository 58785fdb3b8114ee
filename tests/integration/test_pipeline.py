"""The first pipeline end to end: producer -> Kafka -> footfall worker -> aggregates topic and Redis.

Every total is compared with a brute-force count of the events the test sent
(`flowdata.brute_force_buckets`), never with the worker's own output.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from footfall.operators.kpis.rollup import SUMMED
from footfall.schemas.keys import CHAIN, RedisKeys
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.integration.conftest import WorkerProcess, wait_until
from tests.integration.flowdata import (
    COMPARED,
    RAW_ID_MARK,
    Traffic,
    make_malformed,
    make_valid_traffic,
)

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000


def _now_ms() -> int:
    return int(time.time() * 1000)


def send_all(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]], pause_every: int = 0,
             pause_s: float = 0.0, hold_at: int | None = None, release: threading.Event | None = None) -> None:
    """Send `messages`; with `hold_at`, send that many, then wait for `release` before the rest."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_request_size=2_000_000)
    try:
        for i, (key, value) in enumerate(messages):
            if i == hold_at and release is not None:
                producer.flush()
                release.wait(timeout=120)
            producer.send(topic, key=key, value=value)
            if pause_every and i % pause_every == pause_every - 1:
                producer.flush()
                time.sleep(pause_s)
        producer.flush()
    finally:
        producer.close()


def read_topic(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[Any]:
    """Every record of `topic` from the beginning up to its current end."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=2000)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        records = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end within {timeout_s} s")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def redis_buckets(client: redis.Redis, prefix: str) -> dict[tuple[str, int], dict[str, Any]]:
    """The per-bucket records the worker left in Redis's per-day hashes."""
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for key in client.scan_iter(match=RedisKeys(prefix).store_pattern("buckets:*"), count=1000):
        for raw in client.hvals(key):
            record = orjson.loads(raw)
            found[(record["store_id"], record["bucket_start_ms"])] = record
    return found


def assert_totals_match(found: dict[tuple[str, int], dict[str, Any]], expected: dict[tuple[str, int], dict]) -> None:
    assert set(found) == set(expected), (
        f"bucket sets differ: missing {sorted(set(expected) - set(found))[:5]}, "
        f"extra {sorted(set(found) - set(expected))[:5]}"
    )
    mismatches = []
    for key, want in expected.items():
        got = found[key]
        for name in COMPARED:
            if got[name] != want[name]:
                mismatches.append((key, name, got[name], want[name]))
        if abs(got["sales"] - want["sales"]) > 0.011:
            mismatches.append((key, "sales", got["sales"], want["sales"]))
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:5]}"


def assert_rollups_match(client: redis.Redis, prefix: str, traffic: Traffic) -> None:
    """Region and chain totals per bucket in Redis equal sums of the brute-force store totals."""
    region_of = {ev["store_id"]: ev["region"] for ev in traffic.valid_events}
    want: dict[tuple[str, str, int], dict[str, float]] = {}
    for (store_id, start), totals in traffic.expected_buckets().items():
        for level, key in (("region", region_of[store_id]), ("chain", CHAIN)):
            row = want.setdefault((level, key, start), {"stores": 0, "sales": 0.0})
            row["stores"] += 1
            row["sales"] += totals["sales"]
            for name in COMPARED:
                row[name] = row.get(name, 0) + totals[name]
    assert len({k for k in want if k[0] == "region"}) > 1, "the traffic should span several regions"
    keys = RedisKeys(prefix)
    for (level, key, start), row in want.items():
        got = {k.decode(): int(v) for k, v in client.hgetall(keys.rollup_totals(level, key, start)).items()}
        # every summed field is present, zeros too: a region of queue-only stores still has sales_cents 0
        assert set(SUMMED) <= set(got), (level, key, start, set(SUMMED) - set(got))
        assert got["stores"] == row["stores"], (level, key, start)
        assert {name: got[name] for name in COMPARED} == {name: row[name] for name in COMPARED}, (level, key)
        assert got["sales_cents"] == pytest.approx(row["sales"] * 100, abs=row["stores"])
    latest = orjson.loads(client.hget(keys.rollup_latest("chain", CHAIN), "bucket_start_ms"))
    assert latest == max(start for _, _, start in want)


def counted_events(client: redis.Redis, prefix: str) -> int:
    return int(client.hget(RedisKeys(prefix).stats, "events") or 0)


def run_and_check(
    services, prefix: str, worker: WorkerProcess, traffic: Traffic, broker: str, timeout_s: float = 120.0,
    during: Callable[[redis.Redis], None] | None = None,
) -> redis.Redis:
    client = redis.Redis.from_url(services.redis_url)
    # As every footfall producer does: create the topics with the worker's partition count first.
    ensure_topics(Settings(broker=broker, topic_prefix=prefix, partitions=4))
    worker.start()
    # With a `during` hook (a restart), the last third is held back until the hook returns, so the
    # hook always acts mid-stream however fast the worker is.
    release = threading.Event()
    sender = threading.Thread(
        target=send_all, args=(broker, f"{prefix}.events", traffic.messages),
        kwargs={"pause_every": 200, "pause_s": 0.05, "release": release,
                "hold_at": 2 * len(traffic.messages) // 3 if during is not None else None}, daemon=True,
    )
    sender.start()
    if during is not None:
        during(client)
    release.set()
    sender.join(timeout=timeout_s)
    want = len(traffic.valid_events)
    wait_until(lambda: counted_events(client, prefix) >= want, timeout_s,
               f"{want} events counted (so far {counted_events(client, prefix)})")
    expected = traffic.expected_buckets()
    assert_totals_match(redis_buckets(client, prefix), expected)
    # The aggregates topic: the last record of each bucket carries its totals. The worker writes Redis
    # right after handing records to its (buffered) producer, so the topic may trail Redis briefly.
    last: dict[tuple[str, int], dict[str, Any]] = {}

    def topic_matches() -> bool:
        last.clear()
        for record in read_topic(broker, f"{prefix}.aggregates"):
            value = orjson.loads(record.value)
            if value["type"] == "bucket":
                last[(value["store_id"], value["bucket_start_ms"])] = value
        try:
            assert_totals_match(last, expected)
        except AssertionError:
            return False
        return True

    if not topic_matches():
        time.sleep(5)  # one more look, once the producer's buffers have surely drained
        topic_matches()
        assert_totals_match(last, expected)
    assert counted_events(client, prefix) == want, "events were counted more than once"
    return client


def test_totals_per_store_and_bucket_equal_brute_force(services, worker_factory, unique_prefix):
    rng = random.Random(1)
    traffic = make_valid_traffic(rng, stores=9, events_per_store=500, start_ms=_now_ms() - 5 * HOUR_MS,
                                 span_ms=3 * HOUR_MS)
    assert len(traffic.valid_events) == 4500
    worker = worker_factory(grace_s=86_400)
    client = run_and_check(services, unique_prefix, worker, traffic, services.bootstrap)
    assert worker.alive
    assert_rollups_match(client, unique_prefix, traffic)
    # Live records are coalesced (one per store and bucket per second), not written per message.
    keys = RedisKeys(unique_prefix)
    history = sum(client.xlen(key) for key in client.scan_iter(match=keys.store_pattern("history")))
    assert 0 < history < len(traffic.messages) / 2, (history, len(traffic.messages))
    # Every vertical's KPIs were exercised, and Redis holds the latest record and history per store.
    latest = client.hgetall(keys.store_latest("bank-001"))
    assert latest[b"store_id"] == b"bank-001" and latest[b"vertical"] == b"bank"
    assert client.xlen(keys.store_history("bank-001")) > 0


def test_malformed_input_is_dead_lettered_and_good_input_counted_exactly(services, worker_factory, unique_prefix):
    rng = random.Random(2)
    now = _now_ms()
    traffic = make_valid_traffic(rng, stores=3, events_per_store=400, start_ms=now - 4 * HOUR_MS, span_ms=2 * HOUR_MS)
    make_malformed(rng, 1200, "retail-000", now - 3 * HOUR_MS, now, traffic)
    rng.shuffle(traffic.messages)  # interleave bad with good (per-store order no longer matters: grace is long)
    assert traffic.expected_rejects >= 1000
    worker = worker_factory(grace_s=86_400)
    run_and_check(services, unique_prefix, worker, traffic, services.bootstrap)

    def dead_letters() -> list[Any]:
        return read_topic(services.bootstrap, f"{unique_prefix}.dead-letter")

    wait_until(lambda: len(dead_letters()) >= traffic.expected_rejects, 60, "all dead letters")
    records = dead_letters()
    assert len(records) == traffic.expected_rejects
    reasons: dict[str, int] = {}
    for record in records:
        headers = dict(record.headers)
        assert headers["footfall.reason"] and headers["footfall.error"]
        assert headers["footfall.source.topic"] == f"{unique_prefix}.events".encode()
        assert int(headers["footfall.source.offset"]) >= 0
        reasons[headers["footfall.reason"].decode()] = reasons.get(headers["footfall.reason"].decode(), 0) + 1
    assert {"not_utf8", "not_json", "not_an_object", "missing_field", "wrong_type", "out_of_range",
            "bad_timestamp", "too_large", "empty"} <= set(reasons)
    client = redis.Redis.from_url(services.redis_url)
    counts = {k.decode(): int(v) for k, v in client.hgetall(RedisKeys(unique_prefix).dead_letter_counts).items()}
    assert counts == reasons
    assert worker.alive


def test_sigterm_mid_stream_then_restart_ends_exact(services, worker_factory, unique_prefix):
    rng = random.Random(3)
    traffic = make_valid_traffic(rng, stores=6, events_per_store=1000, start_ms=_now_ms() - 5 * HOUR_MS,
                                 span_ms=3 * HOUR_MS, batch_fraction=0.1)
    worker = worker_factory(grace_s=86_400)
    want = len(traffic.valid_events)

    def restart_mid_stream(client: redis.Redis) -> None:
        wait_until(lambda: counted_events(client, unique_prefix) > want // 4, 90, "a quarter of the events counted")
        assert worker.stop(signal.SIGTERM) == 0
        stopped_at = counted_events(client, unique_prefix)
        assert stopped_at < want, "the restart must happen mid-stream"
        worker.start()

    run_and_check(services, unique_prefix, worker, traffic, services.bootstrap, during=restart_mid_stream)
    assert worker.starts == 2 and worker.alive


def test_no_raw_identifier_reaches_any_output(services, worker_factory, unique_prefix):
    rng = random.Random(4)
    now = _now_ms()
    traffic = make_valid_traffic(rng, stores=6, events_per_store=150, start_ms=now - 3 * HOUR_MS, span_ms=HOUR_MS)
    make_malformed(rng, 64, "telecom-002", now - 2 * HOUR_MS, now, traffic)
    # Malformed identifiers themselves: the rejection must not quote them.
    for i in range(20):
        pos = {"event_id": f"bad-id-{i}", "store_id": "retail-000", "kind": "pos", "ts": now - HOUR_MS,
               "schema_version": 1, "transaction_id": "t", "amount": 1.0, "items": 1}
        too_long = f"{RAW_ID_MARK}{i:04d}" + "x" * 200
        traffic.messages.append((b"retail-000", orjson.dumps({**pos, "customer_id": too_long})))
        traffic.messages.append((b"retail-000", orjson.dumps({**pos, "customer_id": [f"{RAW_ID_MARK}list{i}"]})))
        traffic.raw_identifiers.update({too_long, f"{RAW_ID_MARK}list{i}"})
        traffic.expected_rejects += 2
    assert len(traffic.raw_identifiers) > 100
    worker = worker_factory(grace_s=86_400)
    client = run_and_check(services, unique_prefix, worker, traffic, services.bootstrap)
    wait_until(lambda: len(read_topic(services.bootstrap, f"{unique_prefix}.dead-letter")) >= traffic.expected_rejects,
               60, "dead letters")
    # Stopped, it has saved every store's state (saves come every FOOTFALL_CHECKPOINT_INTERVAL_S otherwise).
    assert worker.stop(signal.SIGTERM) == 0, worker.log_text()[-3000:]
    mark = RAW_ID_MARK.encode()
    outputs = [f"{unique_prefix}.aggregates", f"{unique_prefix}.dead-letter",
               f"{unique_prefix}-worker-stores-changelog"]
    for topic in outputs:
        records = read_topic(services.bootstrap, topic)
        assert records, f"{topic} is empty: nothing was checked"
        for record in records:
            blob = (record.value or b"") + (record.key or b"") + b"".join(v for _, v in record.headers)
            assert mark not in blob, f"raw identifier in {topic}: {blob[:200]!r}"
    for key in client.scan_iter(match=RedisKeys(unique_prefix).every_key_pattern):
        dumped = client.dump(key) or b""
        assert mark not in dumped and mark not in key, f"raw identifier in Redis key {key!r}"
    assert RAW_ID_MARK not in worker.log_text()


def test_same_pipeline_on_tansu(services, tansu_bootstrap, worker_factory, unique_prefix):
    rng = random.Random(5)
    traffic = make_valid_traffic(rng, stores=6, events_per_store=300, start_ms=_now_ms() - 5 * HOUR_MS,
                                 span_ms=3 * HOUR_MS)
    worker = worker_factory(broker=tansu_bootstrap, grace_s=86_400)
    run_and_check(services, unique_prefix, worker, traffic, tansu_bootstrap)
    assert worker.alive


def test_kill_9_mid_stream_then_restart_ends_exact(services, worker_factory, unique_prefix):
    # A crash gives no chance to flush or commit: Faust replays from the last committed offset, and
    # the table values' recorded offsets must make each replayed message count once.
    rng = random.Random(6)
    traffic = make_valid_traffic(rng, stores=6, events_per_store=1000, start_ms=_now_ms() - 5 * HOUR_MS,
                                 span_ms=3 * HOUR_MS, batch_fraction=0.1)
    expected = traffic.expected_buckets()
    ensure_topics(Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4))
    client = redis.Redis.from_url(services.redis_url)
    worker = worker_factory(grace_s=86_400).start()
    # The last third is held back until the crash, so the crash always comes mid-stream.
    release = threading.Event()
    sender = threading.Thread(target=send_all, args=(services.bootstrap, f"{unique_prefix}.events", traffic.messages),
                              kwargs={"pause_every": 200, "pause_s": 0.05, "release": release,
                                      "hold_at": 2 * len(traffic.messages) // 3}, daemon=True)
    sender.start()
    want = len(traffic.valid_events)
    wait_until(lambda: counted_events(client, unique_prefix) > want // 3, 90, "a third of the events counted")
    worker.stop(signal.SIGKILL)
    assert counted_events(client, unique_prefix) < want, "the crash must happen mid-stream"
    worker.start()
    release.set()
    sender.join(timeout=120)

    def exact() -> bool:
        found = redis_buckets(client, unique_prefix)
        return set(found) == set(expected) and all(
            found[k][name] == v[name] for k, v in expected.items() for name in COMPARED
        )

    wait_until(exact, 120, "bucket totals equal to the brute-force count after the crash")
    assert_totals_match(redis_buckets(client, unique_prefix), expected)
    last: dict[tuple[str, int], dict[str, Any]] = {}
    for record in read_topic(services.bootstrap, f"{unique_prefix}.aggregates"):
        value = orjson.loads(record.value)
        if value["type"] == "bucket":
            last[(value["store_id"], value["bucket_start_ms"])] = value
    assert_totals_match(last, expected)
    # Replays were recognised (or nothing needed replaying); the stats counter may count a replayed
    # message's events twice only if its table update had not reached the changelog.
    assert counted_events(client, unique_prefix) >= want
