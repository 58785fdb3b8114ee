"""The output contract on the real stack: every record the worker publishes matches its kind's JSON Schema.

Three simulated stores (a shop, a bank branch, a telecom shop) send a day and a half
of traffic, with a few repeated, late and malformed events; their capacities are set
far below their traffic, so the over-capacity rule raises alerts from the first
opening hours. Once the worker has applied every message it is stopped, and every
record is read back: the aggregates, predictions and alerts topics from the
beginning, and Redis (stores' latest and live hashes, histories, day hashes,
forecasts, open alerts, the alert history, roll-ups' latest and live hashes and
histories). Each is validated against the committed schema file of its `type`, at a
place where that type belongs; every built-in kind must have been seen.
"""

from __future__ import annotations

import importlib
import json
import signal
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
import orjson
import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from footfall.schemas.jsonschema import record_schema_path
from footfall.schemas.keys import CHAIN, RedisKeys
from footfall.schemas.records import RECORD_KINDS
from footfall.scripts.simulation import generate, make_stores
from footfall.stream.settings import Settings
from footfall.stream.topics import ensure_topics
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.integration

START_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z, a Monday
HOUR_MS = 3_600_000
BUILT_IN = ("bucket", "live", "forecast", "alert", "staffing", "rollup", "rollup_live")
VALIDATORS = {
    t: jsonschema.Draft202012Validator(json.loads(record_schema_path(t).read_text()),
                                       format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    for t in BUILT_IN
}


def _text_fields_decoder() -> Any:
    """The dashboard's `decode_hash`, wherever it lives now; else the same rule written here."""
    for module in ("footfall.stream.dashboard_views", "footfall.stream.dashboard"):
        try:
            found = getattr(importlib.import_module(module), "decode_hash", None)
        except ImportError:
            continue
        if found is not None:
            return found
    text = {"type", "store_id", "region", "vertical", "tz", "day", "bucket_start", "status", "last_event_id",
            "level", "key"}

    def decode_hash(raw: Mapping[bytes, bytes]) -> dict[str, Any]:
        return {k.decode(): v.decode() if k.decode() in text else orjson.loads(v) for k, v in raw.items()}
    return decode_hash


decode_hash = _text_fields_decoder()


def read_topic(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[bytes]:
    """Every record value of `topic`, from the beginning to its current end."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=2000)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        values = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            assert time.monotonic() < deadline, f"could not read {topic} to its end within {timeout_s} s"
            for batch in consumer.poll(timeout_ms=500).values():
                values += [r.value for r in batch]
        return values
    finally:
        consumer.close()


def redis_records(client: redis.Redis, keys: RedisKeys, store_ids: list[str],
                  regions: set[str]) -> Iterator[tuple[str, set[str], dict[str, Any]]]:
    """`(where, types allowed there, record)` for every record footfall keeps in Redis."""
    def stream(key: str) -> Iterator[dict[str, Any]]:
        for _, fields in client.xrange(key):
            yield orjson.loads(fields[b"record"])

    for store_id in store_ids:
        if raw := client.hgetall(keys.store_latest(store_id)):
            yield keys.store_latest(store_id), {"bucket"}, decode_hash(raw)
        if raw := client.hgetall(keys.store_live(store_id)):
            yield keys.store_live(store_id), {"live"}, decode_hash(raw)
        for record in stream(keys.store_history(store_id)):
            yield keys.store_history(store_id), {"bucket"}, record
        for day_key in client.scan_iter(match=keys.store_pattern("buckets:*", store_id)):
            for body in client.hvals(day_key):
                yield day_key.decode(), {"bucket"}, orjson.loads(body)
        for body in client.hvals(keys.store_forecast(store_id)):
            yield keys.store_forecast(store_id), {"forecast"}, orjson.loads(body)
        for record in stream(keys.store_forecast_history(store_id)):
            yield keys.store_forecast_history(store_id), {"forecast"}, record
        if raw := client.get(keys.store_record(store_id, "staffing")):
            yield keys.store_record(store_id, "staffing"), {"staffing"}, orjson.loads(raw)
        for record in stream(keys.store_record_history(store_id, "staffing")):
            yield keys.store_record_history(store_id, "staffing"), {"staffing"}, record
        for body in client.hvals(keys.store_alerts(store_id)):
            yield keys.store_alerts(store_id), {"alert"}, orjson.loads(body)
    for record in stream(keys.alerts_history):
        yield keys.alerts_history, {"alert"}, record
    for level, key in [*(("region", r) for r in sorted(regions)), ("chain", CHAIN)]:
        if raw := client.hgetall(keys.rollup_latest(level, key)):
            yield keys.rollup_latest(level, key), {"rollup"}, decode_hash(raw)
        if raw := client.hgetall(keys.rollup_live(level, key)):
            record = decode_hash(raw)
            # The sink's ordering script keeps `bucket_start_ms = 0` in the live hash beside the record's
            # fields (it orders every roll-up hash by bucket, then seq): storage bookkeeping, not part of
            # the record published on the roll-up's channel. Anything but that 0 is a real extra field.
            if record.get("bucket_start_ms") == 0:
                del record["bucket_start_ms"]
            yield keys.rollup_live(level, key), {"rollup_live"}, record
        for record in stream(keys.rollup_history(level, key)):
            yield keys.rollup_history(level, key), {"rollup"}, record


def test_every_published_record_matches_its_schema(services, worker_factory, unique_prefix: str) -> None:
    stores = make_stores(3, seed=5)  # retail-001, bank-002, telecom-003
    settings = Settings(broker=services.bootstrap, topic_prefix=unique_prefix, partitions=4)
    ensure_topics(settings)
    keys = settings.redis_keys
    worker = worker_factory(
        idle_timeout_s=0, forecast_horizon_h=3,
        # Far below their traffic: people inside pass it in the opening hours, so alerts open (and,
        # after closing, resolve) from the first day instead of after weeks of forecasts.
        store_capacities=",".join(f"{s.store_id}=3" for s in stores),
    ).start()

    producer = KafkaProducer(bootstrap_servers=services.bootstrap, linger_ms=20, batch_size=256 * 1024)
    sent = 0
    for message in generate(stores, start_ms=START_MS, end_ms=START_MS + 36 * HOUR_MS, seed=5, batch_size=20,
                            malformed_fraction=0.01, duplicate_fraction=0.01, late_fraction=0.005):
        producer.send(settings.topic("events"), key=message.store_id.encode(), value=message.payload)
        sent += 1
    producer.flush()
    producer.close()

    client = redis.Redis.from_url(services.redis_url)

    def applied() -> int:
        # Counters are added to Redis after the records of the same flush: all applied, all published.
        return int(client.hget(keys.stats, "messages") or 0)

    wait_until(lambda: applied() >= sent and client.xlen(keys.alerts_history) > 0, 120,
               f"the worker to apply all {sent} messages")
    assert worker.stop(signal.SIGTERM) == 0, worker.log_text()[-3000:]

    seen: Counter[tuple[str, str]] = Counter()  # (record type, source) -> records
    failures: list[str] = []

    def check(where: str, allowed: set[str], record: Any) -> None:
        record_type = record.get("type") if isinstance(record, dict) else None
        if record_type not in allowed:
            failures.append(f"{where}: a record of type {record_type!r} where only {sorted(allowed)} belong")
            return
        seen[record_type, "kafka" if where.startswith("topic ") else "redis"] += 1
        for error in VALIDATORS[record_type].iter_errors(record):
            path = "/".join(map(str, error.absolute_path))
            failures.append(f"{where}: {record_type} {record.get('store_id') or record.get('key')} "
                            f"{path}: {error.message}")

    by_topic: dict[str, set[str]] = {}
    for kind in RECORD_KINDS.values():
        if kind.topic:
            by_topic.setdefault(kind.topic, set()).add(kind.type)
    for suffix in ("aggregates", "predictions", "alerts", "staffing"):
        for value in read_topic(services.bootstrap, settings.topic(suffix)):
            check(f"topic {settings.topic(suffix)}", by_topic[suffix], orjson.loads(value))
    for where, allowed, record in redis_records(client, keys, [s.store_id for s in stores],
                                                {s.region for s in stores}):
        check(where, allowed, record)

    summary = dict(sorted(seen.items()))
    assert failures == [], f"{len(failures)} records break the contract, e.g. {failures[:10]}; seen {summary}"
    for record_type in BUILT_IN:
        assert sum(n for (t, _), n in seen.items() if t == record_type) > 0, (record_type, summary)
    for record_type in ("bucket", "live", "forecast", "alert", "staffing"):  # on a topic, and kept in Redis
        assert seen[record_type, "kafka"] > 0 and seen[record_type, "redis"] > 0, (record_type, summary)
