"""footfall over TLS with authentication: Apache Kafka on SASL_SSL (SCRAM-SHA-512) and Redis on TLS with an
ACL user, both started by `LocalStack(secure=True)` for this module. The worker, the event producer, the
export's reader and the Redis readers all use the `FOOTFALL_*` settings `client.env` holds; counts end exact
against a brute-force count of what was sent, and clients without the credentials are refused."""

from __future__ import annotations

import os
import stat
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from footfall.scripts.export import read_closed_buckets
from footfall.scripts.producer import events_producer
from footfall.scripts.stack import LocalStack
from footfall.stream.settings import Settings
from tests.integration.conftest import wait_until
from tests.integration.test_pipeline import redis_buckets

pytestmark = pytest.mark.integration

BUCKET_MS = 900_000


@pytest.fixture(scope="module")
def secure_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(tmp_path_factory.mktemp("secure-stack"), secure=True, progress=lambda _: None).start()
    yield stack
    stack.stop()


def as_overrides(env: dict[str, str]) -> dict[str, str]:
    """`FOOTFALL_X=v` variables as `worker_factory` keyword arguments (`x=v`)."""
    return {k.removeprefix("FOOTFALL_").lower(): v for k, v in env.items()}


def door(i: int, t0: int) -> dict:
    return {"event_id": f"tls-{i}", "store_id": f"tls-{i % 3}", "kind": "door", "ts": t0 + i * 20_000,
            "schema_version": 1, "door_id": "main", "sensor_id": "cnt-1", "direction": "in"}


def dead_letter_reasons(settings: Settings) -> Counter:
    topic = settings.topic("dead-letter")
    consumer = KafkaConsumer(**settings.kafka.kafka_python(), group_id=None, enable_auto_commit=False,
                             consumer_timeout_ms=2000)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        return Counter(dict(r.headers)["footfall.reason"].decode() for r in consumer)
    finally:
        consumer.close()


def test_the_stack_files_holding_secrets_are_private(secure_stack: LocalStack) -> None:
    run_dir = secure_stack.run_dir
    for path in (run_dir / "client.env", run_dir / "stack.json", run_dir / "redis.conf",
                 run_dir / "tls" / "server.key", run_dir / "tls" / "ca.key", run_dir / "kafka" / "server.properties"):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
    env = dict(line.split("=", 1) for line in (run_dir / "client.env").read_text().splitlines())
    assert env == secure_stack.client_env()


def test_footfall_counts_over_tls_with_authentication(secure_stack: LocalStack, worker_factory,
                                                      unique_prefix: str) -> None:
    env = {**secure_stack.client_env(), "FOOTFALL_TOPIC_PREFIX": unique_prefix}
    settings = Settings.from_env(env)
    assert settings.redis_url.startswith("rediss://") and settings.kafka_security_protocol == "SASL_SSL"
    worker = worker_factory(**as_overrides(env)).start()

    t0 = (int(time.time() * 1000) - 3 * 3_600_000) // BUCKET_MS * BUCKET_MS
    events = [door(i, t0) for i in range(240)]  # 80 minutes over 3 stores: buckets close as time goes on
    producer = events_producer(env)
    for event in events:
        producer.send(event["store_id"], orjson.dumps(event))
    producer.send("tls-0", b'{"event_id": "cut')  # malformed: must reach the dead-letter topic
    producer.flush()
    producer.close()

    client = redis.Redis.from_url(settings.redis_url)
    want = Counter((e["store_id"], e["ts"] // BUCKET_MS * BUCKET_MS) for e in events)

    def counted() -> Counter:
        return Counter({k: r["arrivals"] for k, r in redis_buckets(client, unique_prefix).items() if r["arrivals"]})

    wait_until(lambda: counted() == want, 120, "every bucket counted, over TLS")
    wait_until(lambda: dead_letter_reasons(settings) == Counter(not_json=1), 60, "the dead letter, over SASL_SSL")
    assert worker.alive, worker.log_text()[-3000:]

    # The export's reader (a tool) reads the closed buckets through the same settings.
    closed = read_closed_buckets(settings.kafka, settings.topic("aggregates"), t0, t0 + 10 * BUCKET_MS,
                                 lead_ms=0, settle_ms=6 * 3_600_000, idle_s=5)  # records are stamped now
    exported = {(r["store_id"], r["bucket_start_ms"]): r["arrivals"] for r in closed.records()}
    assert exported and all(want[k] == n for k, n in exported.items()), exported


def test_clients_without_the_credentials_are_refused(secure_stack: LocalStack, worker_factory,
                                                     unique_prefix: str) -> None:
    env = secure_stack.client_env()
    # Plain text to the SASL_SSL listener: no metadata.
    with pytest.raises(KafkaError):
        KafkaAdminClient(bootstrap_servers=env["FOOTFALL_BROKER"], request_timeout_ms=3000,
                         api_version_auto_timeout_ms=3000).list_topics()
    # Redis: no password, or a plain-text connection to its TLS port.
    port = secure_stack.services["redis"].port
    with pytest.raises(redis.RedisError):
        redis.Redis.from_url(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={env['FOOTFALL_KAFKA_SSL_CAFILE']}").set("k", 1)
    with pytest.raises(redis.RedisError):
        redis.Redis(host="127.0.0.1", port=port, socket_timeout=3).ping()

    # A worker with a wrong Kafka password, then one with a wrong Redis password: each says so and exits.
    wrong_kafka = worker_factory(**as_overrides({**env, "FOOTFALL_KAFKA_SASL_PASSWORD": "not-the-password",
                                                 "FOOTFALL_TOPIC_PREFIX": unique_prefix})).start()
    wait_until(lambda: not wrong_kafka.alive, 90, "the worker with a wrong Kafka password to exit")
    assert wrong_kafka.proc is not None and wrong_kafka.proc.returncode != 0
    log = wrong_kafka.log_text()
    # The broker answers a wrong password with an authentication error or, as often over TLS, by closing the
    # socket before that answer is read: either way the worker's last word names the credentials to check.
    last_word = next(line for line in reversed(log.splitlines()) if "no Kafka broker answered" in line)
    assert "FOOTFALL_KAFKA_SASL_PASSWORD" in last_word and "not consuming" in last_word, log[-3000:]
    assert "Traceback" not in log and "not-the-password" not in log, log[-3000:]
    wrong_redis_url = env["FOOTFALL_REDIS_URL"].replace("footfall:", "footfall:x", 1)
    wrong_redis = worker_factory(**as_overrides({**env, "FOOTFALL_REDIS_URL": wrong_redis_url,
                                                 "FOOTFALL_TOPIC_PREFIX": f"{unique_prefix}-r"})).start()
    wait_until(lambda: not wrong_redis.alive, 90, "the worker with a wrong Redis password to exit")
    log = wrong_redis.log_text()
    assert "refused the credentials" in log and "Traceback" not in log, log[-3000:]
    assert wrong_redis_url.split("@")[0].split(":")[-1] not in log  # the password is never logged


def test_a_plaintext_client_setting_is_refused_before_connecting(secure_stack: LocalStack, tmp_path: Path) -> None:
    env = {**secure_stack.client_env(), "FOOTFALL_KAFKA_SSL_CAFILE": str(tmp_path / "missing.pem")}
    with pytest.raises(ValueError, match="FOOTFALL_KAFKA_SSL_CAFILE"):
        Settings.from_env(env)


def test_the_measurement_tools_run_over_tls_with_authentication(secure_stack: LocalStack, tmp_path: Path) -> None:
    """`footfall scale` and `footfall bench` on a secured cluster: every client of theirs takes `FOOTFALL_KAFKA_*`."""
    from footfall.scripts.bench import BenchConfig, format_report, run_bench
    from footfall.scripts.scale import ScaleConfig, run_scale
    from footfall.scripts.scale import format_report as format_scale

    env = secure_stack.client_env()
    settings = Settings.from_env(env)
    scale = run_scale(ScaleConfig(stores=20, speed=60, minutes=30 / 60), broker=settings.broker,
                      redis_url=settings.redis_url, run_dir=tmp_path / "scale", environ=env)
    shown = format_scale(scale)
    assert scale.error is None, shown
    assert scale.live_records > 0 and 0 < scale.applied_events <= scale.offered_events, shown
    assert scale.changelog_bytes > 0, shown  # the harness's own changelog reader, over SASL_SSL

    bench = run_bench(BenchConfig(events=300, batch_events=2_000, stores=4, paced_s=1.5, stall_timeout_s=30),
                      broker=settings.broker, redis_url=settings.redis_url, run_dir=tmp_path / "bench", environ=env)
    shown = format_report(bench)
    assert {r.pipeline for r in bench.results} >= {"a", "b", "c"}, shown
    for r in bench.results:
        assert r.error is None and r.events_per_s, f"{r.pipeline} {r.mode}\n{shown}"
    password = env["FOOTFALL_REDIS_URL"].split(":")[2].split("@")[0]
    assert password not in shown, "the Redis password is shown"


def test_stack_check_passes_on_a_secured_stack(secure_stack: LocalStack) -> None:
    """`footfall stack check` speaks to a recorded secured stack with its client.env; each broker check passes."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    done = subprocess.run([sys.executable, "-m", "footfall.scripts.cli", "stack", "check", "--run-dir",
                           str(secure_stack.run_dir)], env=env, capture_output=True, text=True, timeout=180)
    shown = done.stdout + done.stderr
    assert done.returncode == 0, shown  # 1 when a check fails, 2 on bad settings
    assert "over SASL_SSL" in shown, shown
    password = secure_stack.client_env()["FOOTFALL_KAFKA_SASL_PASSWORD"]
    assert password not in shown
