"""Does a Kafka-compatible broker do what footfall relies on? Three short checks say.

footfall runs on Faust, and Faust leans on three broker behaviours that
"Kafka-compatible" brokers do not all get right:

* `end_offsets_after_batches`: the end offset (ListOffsets, latest) must be the
  last offset + 1 after multi-record batches; Faust reads a table's changelog
  up to that offset when it restores the table.
* `compacted_changelog`: a topic created with `cleanup.policy=compact` (Faust's
  table changelogs) must be accepted and give back the latest value of every key.
* `consumer_group_rebalance`: two consumers of one group must split the
  partitions and hand them back when one leaves (how workers share stores), and
  committed offsets must survive the consumer that committed them.

Each check uses its own uuid-named topics, has a deadline and turns any error
into a failed `CheckResult`; the topics are deleted at the end where the broker
allows it. `footfall stack check` runs them and prints `format_report`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import textwrap
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import for_code
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords

from footfall.stream.kafka_access import KafkaAccess

__all__ = ["CHECKS", "CheckResult", "format_report", "run_checks"]

logger = logging.getLogger(__name__)

#: Records per batch in `end_offsets_after_batches`; each batch is one produce request.
BATCH_SIZES: tuple[int, ...] = (1, 1, 5, 10)
#: Timeout of one request to the broker.
REQUEST_TIMEOUT_MS = 5_000
#: Timeout of each wait inside a check (a group to settle, records to arrive).
PHASE_TIMEOUT_S = 10.0
#: Group timings: short, as footfall's defaults (`FOOTFALL_SESSION_TIMEOUT_S`, `FOOTFALL_HEARTBEAT_S`).
SESSION_TIMEOUT_MS = 6_000
HEARTBEAT_INTERVAL_MS = 1_000

Progress = Callable[[str], Any]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Parameters
    ----------
    name
        The check's name, e.g. `end_offsets_after_batches`.
    ok
        Whether the broker behaved as footfall needs.
    detail
        What was expected and what was observed.
    consequence
        What goes wrong in footfall when this check fails.

    """

    name: str
    ok: bool
    detail: str
    consequence: str


class _CheckFailed(Exception):
    """The broker answered, but not as footfall needs; the message is the detail."""


@dataclass
class _Run:
    """What the checks of one run share: the broker, the admin client, the topics made."""

    bootstrap: str
    base: str
    progress: Progress
    admin: AIOKafkaAdminClient
    client: dict[str, Any]  # aiokafka's keyword arguments: the brokers, TLS and SASL
    created: list[str] = field(default_factory=list)
    step: str = "starting"

    def say(self, check: str, message: str) -> None:
        self.step = message
        self.progress(f"  {check}: {message}")

    async def create_topic(self, name: str, partitions: int, configs: dict[str, str] | None = None) -> None:
        """Create `name` (replication factor 1, as Faust's default) or raise with the broker's error."""
        self.created.append(name)
        response = await self.admin.create_topics(
            [NewTopic(name, partitions, 1, topic_configs=configs or {})], timeout_ms=REQUEST_TIMEOUT_MS
        )
        for entry in response.to_object()["topic_errors"]:
            if entry["error_code"] != 0:
                error = f"{for_code(entry['error_code']).__name__} {entry.get('error_message') or ''}".strip()
                raise _CheckFailed(f"creating topic {entry['topic']} failed: {error}")


# -- the checks -------------------------------------------------------------------------------


async def _end_offsets_after_batches(run: _Run) -> str:
    name = "end_offsets_after_batches"
    topic = f"{run.base}.end-offsets"
    tp = TopicPartition(topic, 0)
    await run.create_topic(topic, partitions=1)
    expected = [sum(BATCH_SIZES[: i + 1]) for i in range(len(BATCH_SIZES))]
    producer = AIOKafkaProducer(**run.client, acks="all", enable_idempotence=False,
                                linger_ms=0, request_timeout_ms=REQUEST_TIMEOUT_MS)
    consumer = AIOKafkaConsumer(**run.client, enable_auto_commit=False,
                                request_timeout_ms=REQUEST_TIMEOUT_MS)
    try:
        await producer.start()
        await consumer.start()
        observed: list[int] = []
        base_offsets: list[int] = []
        for number, size in enumerate(BATCH_SIZES, start=1):
            batch = producer.create_batch()
            for i in range(size):
                if batch.append(key=b"store-1", value=b'{"batch": %d, "record": %d}' % (number, i),
                                timestamp=None) is None:
                    raise _CheckFailed(f"batch {number} of {size} records did not fit one producer batch")
            if batch.record_count() != size:
                raise _CheckFailed(f"batch {number} holds {batch.record_count()} records instead of {size}")
            metadata = await (await producer.send_batch(batch, topic, partition=0))
            end = (await consumer.end_offsets([tp]))[tp]
            observed.append(end)
            base_offsets.append(metadata.offset)
            run.say(name, f"batch {number} ({size} records, one produce request) at base offset {metadata.offset}: "
                    f"end offset {end} (expected {expected[number - 1]})")
        layout, high_watermark = await _stored_batches(producer.client, tp, stop_offset=expected[-1])
    finally:
        await _close(producer, consumer)

    sizes = ", ".join(map(str, BATCH_SIZES))
    detail = f"batches of {sizes} records: expected end offsets {expected}, observed {observed}"
    expected_layout = [(base, size) for base, size in zip([0, *expected[:-1]], BATCH_SIZES, strict=True)]
    stored = ", ".join(f"{count}@{base}" for base, count in layout)
    if observed != expected:
        if observed == [base + 1 for base in base_offsets]:
            detail += " (each is the first offset of the last batch + 1, not the last offset + 1)"
        raise _CheckFailed(f"{detail}; fetch high watermark {high_watermark}; stored batches (records@base) {stored}")
    if layout != expected_layout:
        # Without real multi-record batches the check proves nothing: say so rather than pass.
        raise _CheckFailed(f"inconclusive: {detail}, but the broker stored batches (records@base) {stored} "
                           f"instead of {', '.join(f'{c}@{b}' for b, c in expected_layout)}")
    return f"{detail}; stored as {len(layout)} batches (records@base) {stored}"


async def _stored_batches(client: Any, tp: TopicPartition, stop_offset: int) -> tuple[list[tuple[int, int]], int]:
    """Each stored record batch of `tp` as (base offset, records), read with raw Fetch requests."""
    node = client.cluster.leader_for_partition(tp)
    if node is None or node < 0:
        raise _CheckFailed(f"no leader known for {tp.topic}[{tp.partition}]")
    layout: list[tuple[int, int]] = []
    offset, high_watermark = 0, -1
    for _ in range(20):  # a few fetches at most: the topic holds 17 small records
        request = FetchRequest(500, 1, 1_048_576, 0, [(tp.topic, [(tp.partition, offset, 1_048_576)])])
        response = await client.send(node, request)
        fetched = 0
        for _topic, partitions in response.topics:
            for _partition, error_code, watermark, *rest in partitions:
                high_watermark = watermark
                if error_code != 0:
                    raise _CheckFailed(f"fetch from offset {offset} failed: {for_code(error_code).__name__}")
                records = MemoryRecords(rest[-1])
                while records.has_next():
                    batch = records.next_batch()
                    if batch is None:
                        break
                    layout.append((batch.base_offset, sum(1 for _ in batch)))
                    offset = batch.next_offset
                    fetched += 1
        if fetched == 0 or offset >= stop_offset:
            break
    return layout, high_watermark


async def _compacted_changelog(run: _Run) -> str:
    name = "compacted_changelog"
    topic = f"{run.base}.changelog"
    tp = TopicPartition(topic, 0)
    await run.create_topic(topic, partitions=1, configs={"cleanup.policy": "compact"})
    policy = await _cleanup_policy(run, topic)
    if policy.startswith("unverified"):
        run.say(name, f"created with cleanup.policy=compact; {policy}")
    elif "compact" not in policy.split(","):
        raise _CheckFailed(f"created with cleanup.policy=compact, but the broker reports cleanup.policy={policy}")
    else:
        run.say(name, f"created; the broker reports cleanup.policy={policy}")

    keys = [f"store-{i}".encode() for i in range(3)]
    rounds = 4
    latest = {key: f"{key.decode()} v{rounds - 1}".encode() for key in keys}
    producer = AIOKafkaProducer(**run.client, acks="all", enable_idempotence=False,
                                request_timeout_ms=REQUEST_TIMEOUT_MS)
    consumer = AIOKafkaConsumer(**run.client, enable_auto_commit=False,
                                auto_offset_reset="earliest", request_timeout_ms=REQUEST_TIMEOUT_MS)
    try:
        await producer.start()
        for version in range(rounds):
            for key in keys:
                # One record per request: this check is about compaction, not about batches.
                await producer.send_and_wait(topic, key=key, value=f"{key.decode()} v{version}".encode(), partition=0)
        written = rounds * len(keys)
        run.say(name, f"wrote {written} records: {rounds} values for each of {len(keys)} keys")

        await consumer.start()
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        seen: dict[bytes, bytes | None] = {}
        read = 0
        deadline = time.monotonic() + PHASE_TIMEOUT_S
        while seen != latest and time.monotonic() < deadline:
            batches = await consumer.getmany(tp, timeout_ms=300)
            for message in batches.get(tp, []):
                seen[message.key] = message.value
                read += 1
    finally:
        await _close(producer, consumer)

    if seen != latest:
        wrong = {k.decode(): (v.decode() if v is not None else None) for k, v in seen.items() if latest.get(k) != v}
        missing = [k.decode() for k in latest if k not in seen]
        raise _CheckFailed(f"latest values not readable within {PHASE_TIMEOUT_S:.0f} s after {read} records: "
                           f"missing keys {missing}, stale values {wrong}; cleanup.policy {policy}")
    compaction = "compaction had not run yet" if read >= written else f"compaction removed {written - read}"
    return (f"cleanup.policy {policy}; the latest value of each of {len(keys)} keys read back from the beginning "
            f"({read} of {written} records read, {compaction})")


async def _cleanup_policy(run: _Run, topic: str) -> str:
    """The topic's `cleanup.policy` as DescribeConfigs tells, or `unverified (...)` when it cannot be read."""
    try:
        responses = await run.admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    except Exception as exc:  # brokers without DescribeConfigs: say so, don't fail the check on it
        return f"unverified (DescribeConfigs failed: {type(exc).__name__}: {exc})"
    for response in responses:
        for resource in response.to_object()["resources"]:
            if resource["error_code"] != 0:
                return f"unverified (DescribeConfigs: {for_code(resource['error_code']).__name__})"
            for entry in resource["config_entries"]:
                if entry["config_names"] == "cleanup.policy":
                    return str(entry["config_value"])
    return "unverified (DescribeConfigs did not list cleanup.policy)"


async def _consumer_group_rebalance(run: _Run) -> str:
    name = "consumer_group_rebalance"
    topic = f"{run.base}.group"
    group = f"{run.base}.group"
    both = {TopicPartition(topic, 0), TopicPartition(topic, 1)}
    await run.create_topic(topic, partitions=2)

    def member() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic, **run.client, group_id=group, enable_auto_commit=False,
            auto_offset_reset="earliest", session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS, request_timeout_ms=REQUEST_TIMEOUT_MS,
        )

    def shown(consumer: AIOKafkaConsumer) -> list[int]:
        return sorted(tp.partition for tp in consumer.assignment())

    producer = AIOKafkaProducer(**run.client, acks="all", enable_idempotence=False,
                                request_timeout_ms=REQUEST_TIMEOUT_MS)
    first, second, reader = member(), member(), None
    polls: list[asyncio.Task[None]] = []
    try:
        await producer.start()
        for partition in (0, 1):
            for i in range(2):
                await producer.send_and_wait(topic, value=b"record %d" % i, partition=partition)

        started = time.monotonic()
        await first.start()
        polls.append(asyncio.create_task(_poll(first)))
        await _until(lambda: first.assignment() == both, polls,
                     "the first consumer gets both partitions", lambda: f"it has {shown(first)}")
        joined_s = time.monotonic() - started
        run.say(name, f"first consumer joined the group and got partitions {shown(first)} in {joined_s:.1f} s")

        started = time.monotonic()
        await second.start()
        polls.append(asyncio.create_task(_poll(second)))
        await _until(
            lambda: len(first.assignment()) == 1 and len(second.assignment()) == 1
            and first.assignment() | second.assignment() == both,
            polls, "the two consumers split the partitions",
            lambda: f"first has {shown(first)}, second has {shown(second)}",
        )
        split_s = time.monotonic() - started
        run.say(name, f"second consumer joined: partitions split {shown(first)} / {shown(second)} in {split_s:.1f} s")

        polls.pop().cancel()
        started = time.monotonic()
        await second.stop()
        await _until(lambda: first.assignment() == both, polls,
                     "the first consumer gets both partitions back", lambda: f"it has {shown(first)}",
                     timeout_s=2 * SESSION_TIMEOUT_MS / 1000)
        back_s = time.monotonic() - started
        run.say(name, f"second consumer left: the first has {shown(first)} again after {back_s:.1f} s")

        offsets = {tp: 2 for tp in both}
        await first.commit(offsets)
        for task in polls:
            task.cancel()
        await first.stop()
        # A fresh consumer of the group reads the commits back, as a restarted worker would.
        reader = AIOKafkaConsumer(**run.client, group_id=group, enable_auto_commit=False,
                                  request_timeout_ms=REQUEST_TIMEOUT_MS)
        await reader.start()
        committed = {tp: await reader.committed(tp) for tp in sorted(both)}
    finally:
        for task in polls:
            task.cancel()
        await _close(producer, second, first, reader)

    if committed != offsets:
        shown_committed = {tp.partition: offset for tp, offset in committed.items()}
        raise _CheckFailed(f"partitions split and handed back, but committed offsets read back as {shown_committed} "
                           "instead of {0: 2, 1: 2}")
    slow = ""
    if back_s > SESSION_TIMEOUT_MS / 1000:
        slow = ", longer than the session timeout: the broker let the session expire rather than act on LeaveGroup"
    return (f"2 partitions: one consumer got both ({joined_s:.1f} s), a second one joined and each got one "
            f"({split_s:.1f} s), the first got both back when the second left ({back_s:.1f} s{slow}); "
            "offsets committed {0: 2, 1: 2} read back by a new consumer of the group")


async def _poll(consumer: AIOKafkaConsumer) -> None:
    """Fetch forever, as a worker does; the group protocol runs alongside."""
    while True:
        await consumer.getmany(timeout_ms=200)


async def _until(condition: Callable[[], bool], polls: Sequence[asyncio.Task[None]], what: str,
                 state: Callable[[], str], timeout_s: float = PHASE_TIMEOUT_S) -> float:
    """Seconds until `condition()` holds; `_CheckFailed` naming `what` and `state()` after `timeout_s`."""
    started = time.monotonic()
    while not condition():
        for task in polls:
            if task.done() and not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                raise _CheckFailed(f"a consumer failed while waiting until {what}: {type(exc).__name__}: {exc}")
        if time.monotonic() - started > timeout_s:
            raise _CheckFailed(f"not within {timeout_s:.0f} s: {what} ({state()})")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def _close(*clients: Any) -> None:
    """Stop each started client, each within a few seconds, ignoring errors (we are cleaning up)."""
    for client in clients:
        if client is None:
            continue
        try:
            await asyncio.wait_for(client.stop(), timeout=REQUEST_TIMEOUT_MS / 1000)
        except Exception as exc:  # cleanup only: a failed stop must not hide the check's own outcome
            logger.debug("closing %s failed: %r", type(client).__name__, exc)


# -- running them -----------------------------------------------------------------------------

CheckFunction = Callable[[_Run], Awaitable[str]]


@dataclass(frozen=True)
class _Check:
    name: str
    run: CheckFunction
    timeout_s: float
    consequence: str


#: The checks in the order they run.
CHECKS: tuple[_Check, ...] = (
    _Check(
        "end_offsets_after_batches", _end_offsets_after_batches, 15.0,
        "Faust restores a table from its changelog only up to the end offset the broker reports, so after a "
        "worker restart (or rebalance) the tables miss the tail of the changelog: counts are lost.",
    ),
    _Check(
        "compacted_changelog", _compacted_changelog, 15.0,
        "Faust keeps each table in a compacted changelog topic; without it tables cannot be rebuilt with their "
        "latest values after a restart, or the changelog grows without bound.",
    ),
    _Check(
        "consumer_group_rebalance", _consumer_group_rebalance, 35.0,
        "Faust workers share stores through a consumer group: without rebalancing a second worker idles or a "
        "stopped worker's stores are never taken over, and without committed offsets a restart re-reads or "
        "skips events.",
    ),
)


def run_checks(bootstrap: str, *, topic_prefix: str | None = None, progress: Progress = print,
               kafka: KafkaAccess | None = None) -> list[CheckResult]:
    """Run every check against the broker at `bootstrap`.

    Parameters
    ----------
    bootstrap
        `host:port[,host:port]` of the broker.
    kafka
        How to speak to it (TLS, SASL: `Settings.kafka`); default plain text.
    topic_prefix
        Topics are named `<topic_prefix>.brokercheck-<uuid>.<check>` (default prefix `footfall`).
    progress
        Called with one line per step.

    Returns
    -------
    list[CheckResult]
        One result per check, in `CHECKS` order; a check that raised or passed its deadline failed.

    Notes
    -----
    Runs its own event loop (`asyncio.run`), so call it from synchronous code.
    Takes a few seconds on a healthy broker; each check has a deadline, so at most about a minute.

    """
    client = (kafka or KafkaAccess(bootstrap)).aiokafka()
    return asyncio.run(_run_checks(bootstrap, topic_prefix or "footfall", progress, client))


async def _run_checks(bootstrap: str, topic_prefix: str, progress: Progress,
                      client: dict[str, Any]) -> list[CheckResult]:
    admin = AIOKafkaAdminClient(**client, request_timeout_ms=REQUEST_TIMEOUT_MS)
    run = _Run(bootstrap, f"{topic_prefix}.brokercheck-{uuid.uuid4().hex[:12]}", progress, admin, client)
    progress(f"checking the broker at {bootstrap} (topics {run.base}.*)")
    try:
        await asyncio.wait_for(run.admin.start(), timeout=PHASE_TIMEOUT_S)
    except Exception as exc:
        reason = f"cannot reach the broker at {bootstrap}: {_describe(exc)}"
        progress(reason)
        await _close_admin(run.admin)
        return [CheckResult(check.name, False, reason, check.consequence) for check in CHECKS]
    results = []
    try:
        for check in CHECKS:
            results.append(await _run_one(run, check))
    finally:
        await _delete_topics(run)
        await _close_admin(run.admin)
    return results


async def _run_one(run: _Run, check: _Check) -> CheckResult:
    run.progress(f"{check.name}: running (deadline {check.timeout_s:.0f} s)")
    run.step = "starting"
    started = time.monotonic()
    try:
        detail = await asyncio.wait_for(check.run(run), timeout=check.timeout_s)
        ok = True
    except _CheckFailed as exc:
        ok, detail = False, str(exc)
    except TimeoutError:
        ok, detail = False, f"no result within the {check.timeout_s:.0f} s deadline (last step: {run.step})"
    except Exception as exc:  # any client or broker error is this check's failure, not the run's
        logger.debug("check %s raised", check.name, exc_info=True)
        ok, detail = False, f"error: {_describe(exc)} (last step: {run.step})"
    verdict = "PASS" if ok else "FAIL"
    run.progress(f"{check.name}: {verdict} in {time.monotonic() - started:.1f} s")
    return CheckResult(check.name, ok, detail, check.consequence)


async def _delete_topics(run: _Run) -> None:
    if not run.created:
        return
    try:
        response = await asyncio.wait_for(run.admin.delete_topics(run.created, timeout_ms=REQUEST_TIMEOUT_MS),
                                          timeout=PHASE_TIMEOUT_S)
        failed = [e["topic"] for e in response.to_object()["topic_error_codes"] if e["error_code"] != 0]
    except Exception as exc:  # deletion is a courtesy: brokers may refuse it
        run.progress(f"could not delete the check topics ({_describe(exc)}); left: {', '.join(run.created)}")
        return
    if failed:
        run.progress(f"the broker did not delete {', '.join(failed)}")
    else:
        run.progress(f"deleted {len(run.created)} check topics")


async def _close_admin(admin: AIOKafkaAdminClient) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(admin.close(), timeout=REQUEST_TIMEOUT_MS / 1000)


def _describe(exc: BaseException) -> str:
    text, kind = str(exc), type(exc).__name__
    if not text:
        return kind
    return text if text.startswith(kind) else f"{kind}: {text}"  # aiokafka's errors name themselves


# -- the report -------------------------------------------------------------------------------


def format_report(results: Iterable[CheckResult], width: int = 110) -> str:
    """A table of results: name, PASS/FAIL, detail, and for a failure its consequence.

    Parameters
    ----------
    results
        What `run_checks` returned.
    width
        Line width the detail column wraps to.

    Examples
    --------
    >>> print(format_report([
    ...     CheckResult("end_offsets_after_batches", False, "expected [1, 2], observed [1, 1]", "Counts are lost."),
    ...     CheckResult("compacted_changelog", True, "latest values read back", "Tables cannot be rebuilt."),
    ... ]))
    check                      result  detail
    -------------------------  ------  ------
    end_offsets_after_batches  FAIL    expected [1, 2], observed [1, 1]
                                       consequence: Counts are lost.
    compacted_changelog        PASS    latest values read back
    <BLANKLINE>
    1 of 2 checks failed: footfall cannot rely on this broker.

    """
    results = list(results)
    name_width = max([len("check"), *(len(r.name) for r in results)])
    indent = name_width + 2 + len("result") + 2
    detail_width = max(40, width - indent)
    lines = [f"{'check':<{name_width}}  result  detail", f"{'-' * name_width}  ------  ------"]
    for result in results:
        verdict = "PASS" if result.ok else "FAIL"
        body = textwrap.wrap(result.detail, detail_width) or [""]
        if not result.ok:
            body += textwrap.wrap(f"consequence: {result.consequence}", detail_width)
        lines.append(f"{result.name:<{name_width}}  {verdict:<6}  {body[0]}".rstrip())
        lines.extend(" " * indent + line for line in body[1:])
    failed = sum(not r.ok for r in results)
    lines.append("")
    if failed:
        lines.append(f"{failed} of {len(results)} checks failed: footfall cannot rely on this broker.")
    else:
        lines.append(f"all {len(results)} checks passed: the broker does what footfall relies on.")
    return "\n".join(lines)
