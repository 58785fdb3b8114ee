"""The worker's flush when a send or Redis fails: nothing is saved, what failed is kept and tried again.

The Kafka topics, table and Redis sink here are small fakes recording what they were given (the
real ones are exercised by the integration tests); what is checked is the worker's own rule: an
offset marker is written only after every output of the messages it covers is confirmed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import orjson
import pytest

from footfall.operators.pipeline.persistence import marker_key, read_marker_value, read_store_value
from footfall.schemas.keys import RedisKeys
from footfall.stream.ownership import PartitionOwners
from footfall.stream.settings import Settings
from footfall.stream.worker import FlowWorker


class FakeTopic:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[tuple[Any, bytes]] = []
        self.headers: list[Any] = []  # the headers of each message in `sent`
        self.fail_next = 0  # this many sends will fail (delivery error)
        self.raise_next = 0  # this many sends will raise before handing the message over (no metadata, say)

    def get_topic_name(self) -> str:
        return self.name

    async def send(self, key=None, value=b"", headers=None):
        if self.raise_next:
            self.raise_next -= 1
            raise RuntimeError("not handed over")
        future = asyncio.get_running_loop().create_future()
        if self.fail_next:
            self.fail_next -= 1
            future.set_exception(RuntimeError("delivery failed"))
        else:
            self.sent.append((key, value))
            self.headers.append(headers)
            future.set_result(None)
        return future


class FakeTable:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.changelog: list[tuple[int, str]] = []
        self.sent_values: dict[str, bytes] = {}  # key -> the last value sent to the changelog

    def get(self, key, default=None):
        return self.data.get(key, default)

    def send_changelog(self, partition, key, value, value_serializer=None):
        self.changelog.append((partition, key))
        self.sent_values[key] = value
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


class FakeRedis:
    def __init__(self) -> None:
        self.ok = True
        self.published: list[dict] = []
        self.stats: Counter[str] = Counter()
        self.owners = PartitionOwners(RedisKeys("test"))  # no assignment: every write unfenced

    async def publish(self, records, stats=None, partitions=None, bodies=None):
        if not self.ok:
            return False
        for record in records:  # bytes handed over with a record (serialised for Kafka) are that record's
            assert (bodies or {}).get(id(record), orjson.dumps(record)) == orjson.dumps(record)
        self.published.extend(records)
        self.stats.update(stats or {})
        return True

    async def count_dead_letter(self, reason):
        return None

    async def ping(self, timeout_s=0.5):
        return self.ok

    async def lost_data(self):
        return False


class FakeRangeReader:
    """The input topic as far as these tests need it: every partition starts at offset 0, and holds no gap."""

    async def beginning_offsets(self, topic, partitions):
        return {p: 0 for p in partitions}

    async def read(self, topic, partition, start, end, timeout_s=30.0):
        return []


def make_counter() -> tuple[FlowWorker, dict[str, FakeTopic], FakeTable, FakeRedis]:
    settings = Settings(pseudonym_secret="0123456789abcdef-secret", idle_timeout_s=0)
    topics = {name: FakeTopic(name) for name in ("events", "aggregates", "dead-letter")}
    table, redis = FakeTable(), FakeRedis()
    counter = FlowWorker(settings, table, topics["events"], topics["aggregates"], topics["dead-letter"], redis)
    counter.checkpoint.range_reader = FakeRangeReader()
    return counter, topics, table, redis


def event(i: int, store: str = "s1") -> bytes:
    return orjson.dumps({"event_id": f"e{i}", "store_id": store, "kind": "door", "ts": 1_780_000_000_000 + i * 1000,
                         "schema_version": 1, "door_id": "d", "sensor_id": "c", "direction": "in"})


def markers(table: FakeTable) -> list[str]:
    """The offset markers written (`~partition-<n>`), not the stage states (`~<stage>:<store>`)."""
    return [key for _, key in table.changelog if key.startswith("~partition-")]


def test_a_failed_dead_letter_holds_the_marker_back_until_it_is_resent():
    async def scenario():
        counter, topics, table, _ = make_counter()
        await counter.process(b"s1", event(1), "t.events", 0, 0)
        topics["dead-letter"].fail_next = 1
        await counter.process(b"s1", b"not json", "t.events", 0, 1)  # dead-lettered: the send fails
        await counter.flush()
        assert markers(table) == [], "no marker while a dead letter is not out"
        assert counter.stats["flush_failed"] == 1
        await counter.flush()  # resent now, then everything saved
        assert topics["dead-letter"].sent and topics["dead-letter"].sent[0][1] == b"not json"
        assert markers(table) == [marker_key(0)]
        assert read_marker_value(table.data[marker_key(0)]) == 1
        assert read_store_value("s1", table.data["s1"]).offset == 0

    asyncio.run(scenario())


def test_a_failed_redis_write_keeps_the_records_and_the_marker_waits():
    async def scenario():
        counter, _, table, redis = make_counter()
        redis.ok = False
        for i in range(3):
            await counter.process(b"s1", event(i), "t.events", 2, i)
        await counter.flush()
        assert markers(table) == [] and redis.published == []
        redis.ok = True
        await counter.process(b"s1", event(3), "t.events", 2, 3)
        await counter.flush()
        buckets = [r for r in redis.published if r["type"] == "bucket"]
        assert buckets and buckets[-1]["events"] == 4, "the kept record was replaced by the newer one"
        assert redis.stats["events"] == 4, "counters of the failed flush were kept, not lost"
        assert read_marker_value(table.data[marker_key(2)]) == 3

    asyncio.run(scenario())


def test_a_redis_outage_sends_each_record_to_kafka_once_and_probes_only():
    async def scenario():
        counter, topics, table, redis = make_counter()
        pings = []

        async def ping(timeout_s=0.5):
            pings.append(timeout_s)
            return redis.ok

        redis.ping = ping
        redis.ok = False
        await counter.process(b"s1", event(0), "t.events", 1, 0)
        for _ in range(5):  # five flushes with Redis away: the records go to Kafka once
            await counter.flush()
        sent = [value for _, value in topics["aggregates"].sent]
        assert sent and len(sent) == len(set(sent)), "a record sent twice to the output topic"
        assert len(pings) == 4 and max(pings) <= 0.5, "after the first failure, a short probe per flush"
        assert markers(table) == []
        redis.ok = True
        await counter.flush()
        assert [value for _, value in topics["aggregates"].sent] == sent, "nothing resent once Redis is back"
        assert {orjson.dumps(r) for r in redis.published} == set(sent), "Redis has what Kafka has"
        assert read_marker_value(table.data[marker_key(1)]) == 0

    asyncio.run(scenario())


def test_while_redis_is_rebuilt_the_flushes_wait_for_it_and_then_write_the_newer_records():
    """A rebuild writes the topics' copies of the buckets: a flush writing newer ones meanwhile could be overwritten
    by an older copy. So the records wait (sent to Kafka once), the marker too, and no failure is counted."""
    async def scenario():
        counter, topics, table, redis = make_counter()
        rebuilt = asyncio.Event()
        counter.checkpoint._rebuild = asyncio.create_task(rebuilt.wait())  # a rebuild in progress
        await counter.process(b"s1", event(0), "t.events", 3, 0)
        await counter.flush()
        await counter.process(b"s1", event(1), "t.events", 3, 1)
        await counter.flush()
        assert redis.published == [] and markers(table) == []
        assert counter.stats["flush_failed"] == 0 and counter.stats["redis_rebuild_waits"] == 2
        rebuilt.set()
        await asyncio.sleep(0)
        await counter.flush()
        buckets = [r for r in redis.published if r["type"] == "bucket"]
        assert buckets and buckets[-1]["events"] == 2
        sent = [orjson.loads(v) for _, v in topics["aggregates"].sent]
        assert len(sent) == len({orjson.dumps(r) for r in sent}), "a record sent to Kafka twice"
        assert read_marker_value(table.data[marker_key(3)]) == 1

    asyncio.run(scenario())


def test_a_failed_record_send_writes_nothing_and_is_sent_again():
    async def scenario():
        counter, topics, table, redis = make_counter()
        await counter.process(b"s1", event(1), "t.events", 1, 7)
        topics["aggregates"].fail_next = 1
        await counter.flush()
        assert markers(table) == [] and redis.published == []
        await counter.flush()
        assert markers(table) == [marker_key(1)]
        assert any(orjson.loads(v)["type"] == "bucket" for _, v in topics["aggregates"].sent)

    asyncio.run(scenario())


def test_a_store_whose_saved_models_are_broken_still_counts_and_starts_its_models_over():
    async def scenario():
        counter, _, table, redis = make_counter()
        table.data["~fc:s1"] = {"b": "abc"}  # not base64: a value this code cannot read
        table.data["~staffing:s1"] = {"version": 2, "stage": "staffing", "encoding": "json"}  # no state
        await counter.process(b"s1", event(1), "t.events", 0, 0)
        await counter.flush()
        assert counter.stores.refused == 2
        assert next(r for r in redis.published if r["type"] == "bucket")["events"] == 1
        assert counter.stats["events"] == 1 and "internal_error" not in counter.stats

    asyncio.run(scenario())


def test_states_and_markers_are_saved_at_the_checkpoint_interval_while_records_go_out_at_every_flush():
    async def scenario():
        counter, _, table, redis = make_counter()
        counter.checkpoint.save_interval_s = 30.0
        await counter.process(b"s1", event(1), "t.events", 0, 0)
        await counter.flush()  # the first flush saves: nothing was saved yet
        assert markers(table) == [marker_key(0)] and read_marker_value(table.data[marker_key(0)]) == 0
        saved = len(table.changelog)
        await counter.process(b"s1", event(2), "t.events", 0, 1)
        await counter.flush()  # within the interval: the records go out, nothing is saved
        assert len(table.changelog) == saved
        buckets = [r for r in redis.published if r["type"] == "bucket"]
        assert buckets[-1]["arrivals"] == 2
        await counter.flush(save=True)  # asked (a stop, a rebalance): saved now
        assert read_marker_value(table.data[marker_key(0)]) == 1
        assert read_store_value("s1", table.data["s1"]).offset == 1
        await counter.process(b"s1", event(3), "t.events", 0, 2)
        await counter.flush()
        assert read_marker_value(table.data[marker_key(0)]) == 1
        counter.checkpoint.saved_at -= 31.0  # the interval has passed since the last save
        await counter.process(b"s1", event(4), "t.events", 0, 3)
        await counter.flush()
        assert read_marker_value(table.data[marker_key(0)]) == 3
        assert read_store_value("s1", table.data["s1"]).offset == 3

    asyncio.run(scenario())


def test_a_stopping_worker_saves_everything_and_applies_nothing_more():
    async def scenario():
        counter, _, table, _ = make_counter()
        counter.checkpoint.save_interval_s = 30.0
        await counter.process(b"s1", event(1), "t.events", 0, 0)
        await counter.flush()
        await counter.process(b"s1", event(2), "t.events", 0, 1)
        await counter.stop()  # within the interval: saved all the same
        assert read_marker_value(table.data[marker_key(0)]) == 1
        assert read_store_value("s1", table.data["s1"]).offset == 1
        await counter.process(b"s1", event(3), "t.events", 0, 2)  # still delivered while Faust stops
        await counter.flush(save=True)
        assert read_marker_value(table.data[marker_key(0)]) == 1, "not applied: read again at the next start"
        assert counter.stats["events"] == 2

    asyncio.run(scenario())


def test_the_size_check_reuses_the_checkpoints_serialisation_and_measures_again_once_it_is_stale_or_large():
    async def scenario():
        counter, _, table, _ = make_counter()
        await counter.process(b"s1", event(1), "t.events", 0, 0)
        store = counter.stores["s1"]
        await counter.checkpoint.flush(save=True)  # the save alone, no size check before it
        assert store.state_value_bytes == len(table.sent_values["s1"]), "the bytes the checkpoint sent"
        measured: list[str] = []
        real = counter.intake.state_bytes

        def spy(store_id, held):
            measured.append(store_id)
            return real(store_id, held)

        counter.intake.state_bytes = spy
        await counter.process(b"s1", event(2), "t.events", 0, 1)
        counter.intake.collect_live()
        assert measured == [], "a fresh, small measure from the save stands"
        store.state_value_bytes = counter.intake.max_bytes // 4  # as if it had grown to a quarter of the limit
        await counter.process(b"s1", event(3), "t.events", 0, 2)
        counter.intake.collect_live()
        assert measured == ["s1"], "a large one is measured at every collection"
        store.state_measured_at -= 3600.0
        await counter.process(b"s1", event(4), "t.events", 0, 3)
        counter.intake.collect_live()
        assert measured == ["s1", "s1"], "a stale one is measured again"

    asyncio.run(scenario())


class NewDeploymentRedis(FakeRedis):
    """Redis without its written marker until `mark_written`; records what had been sent when it was marked."""

    def __init__(self, settings: Settings, topics: dict[str, FakeTopic]) -> None:
        super().__init__()
        self.settings, self.topics = settings, topics
        self.marked_after_sends: list[int] = []

    async def lost_data(self):
        return not self.marked_after_sends

    async def mark_written(self):
        self.marked_after_sends.append(sum(len(topic.sent) for topic in self.topics.values()))


class EndsReader(FakeRangeReader):
    """Every output topic ends at `end` in each partition."""

    def __init__(self, end: int) -> None:
        self.end = end
        self.asked: list[str] = []

    async def end_offsets(self, topic, partitions):
        self.asked.append(topic)
        return {p: self.end for p in partitions}


@pytest.mark.parametrize("end", [0, 5])
def test_a_new_deployment_is_marked_written_before_its_first_send_only_when_the_topics_are_empty(end):
    """Redis lacking its written marker while every output topic is empty: marked before anything is sent, so
    the look after the first write finds nothing lost. With records on a topic, the marker is left for the
    rebuild (the look after the write) to set."""
    async def scenario():
        counter, topics, _, _ = make_counter()
        redis = NewDeploymentRedis(counter.settings, topics)
        counter.checkpoint.redis = redis
        reader = counter.checkpoint.range_reader = EndsReader(end)
        rebuilds: list[int] = []

        async def rebuild():  # the rebuild itself reads Kafka: here only whether it was started
            rebuilds.append(1)
        counter.checkpoint._rebuild_redis = rebuild
        await counter.process(b"s1", event(1), "t.events", 0, 0)
        await counter.flush()
        await asyncio.sleep(0)
        return redis.marked_after_sends, reader.asked, rebuilds

    marked, asked, rebuilds = asyncio.run(scenario())
    assert "aggregates" in asked
    if end == 0:
        assert marked == [0], "marked once, before the first record was sent"
        assert rebuilds == []
    else:
        assert marked == [] and rebuilds == [1], "records on a topic: rebuilt as before"
