"""Where results go: Redis (latest state, history, live push) and the dead-letter topic.

Redis layout (`<p>` is `FOOTFALL_TOPIC_PREFIX`; `schemas.keys.RedisKeys` names every key):

- `<p>:store:<store_id>:latest` (hash): the latest bucket record of the store, one field per
  record field (numbers as text, nested values as JSON). A restated revision of an older
  bucket (late data within the restate horizon) does not replace a newer bucket there.
- `<p>:store:<store_id>:live` (hash): the store's live record (windows, occupancy, today,
  queues), one field per record field, replaced whole on each update.
- A store's current-state keys (`latest`, `live`, `forecast`, `alerts`, the latest record of a
  stage's kind) expire `FOOTFALL_BUCKET_RETENTION_DAYS` after their last write (each write sets
  the expiry again): a store that vanished leaves Redis with its day hashes.
- `<p>:store:<store_id>:history` (stream, capped near `FOOTFALL_HISTORY_MAXLEN`): every record
  published, field `record` = the JSON record.
- `<p>:store:<store_id>:buckets:<YYYY-MM-DD>` (hash, expires after
  `FOOTFALL_BUCKET_RETENTION_DAYS`): field = bucket start (ISO, UTC), value = the JSON record
  (its latest revision: a restated bucket replaces its earlier revision, so the day's buckets
  sum to the day's total); the day is the bucket's local day in the store's time zone.
- `<p>:live:<store_id>` (pub/sub channel): every record (bucket and live), as JSON;
  `PSUBSCRIBE <p>:live:*` for all.
- `<p>:dead-letter:counts` (hash): dead-lettered inputs per reason.
- `<p>:stats` (hash): worker counters (`events`, `late`, `rerouted`, `redis_failures`...).

Writes are pipelined (one round trip per message, not per field); a failed write is
retried a bounded number of times by the client, then logged and counted, never raised
into the agent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import zoneinfo
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError

from footfall.operators.kpis.rollup import LIVE_SUMMED, SUMMED, compact, compact_live
from footfall.schemas.keys import CHAIN
from footfall.stream.ownership import PartitionOwners
from footfall.stream.records import live_rollup_record, rollup_record
from footfall.stream.settings import Settings

__all__ = ["DeadLetterLog", "RedisSink", "dead_letter_headers"]

logger = logging.getLogger(__name__)

#: Longest a Redis write may take, retries included, before it is logged and counted as failed.
_CALL_TIMEOUT_S = 10.0

#: Most records written in one pipeline.
CHUNK = 1000
#: A probe of a Redis known to be away waits this long at most (flushes must not hold the lock for 10 s).
PROBE_TIMEOUT_S = 0.5
#: Tries of a fenced write whose owner keys changed under it (each try checks them again).
FENCE_TRIES = 5

# Replace members' rows of a roll-up and keep the totals their sum (operators.kpis.rollup.RollUp's rule),
# then the same for the region's row in the chain, atomically: stores of every partition and worker
# meet here, and two writers never interleave. A row equal to the stored one changes nothing, so a
# record published twice counts once. One call takes every row of one region and slot in a flush:
# one call per record cost the worker a Redis round of argument packing per store and per second.
# KEYS: region members, region totals, chain members, chain totals; ARGV: region, names
# (comma-separated, row order), ttl seconds, then store id and row (JSON array) for each member.
# Returns the region and chain totals (HGETALL lists).
_ROLLUP_LUA = '''
local names = {}
for name in string.gmatch(ARGV[2], '[^,]+') do names[#names + 1] = name end
local function apply(members, totals, member, row_json)
  local old = redis.call('HGET', members, member)
  if old == row_json then return false end
  redis.call('HSET', members, member, row_json)
  local new = cjson.decode(row_json)
  local prev = {}
  if old then prev = cjson.decode(old) else redis.call('HINCRBY', totals, 'members', 1) end
  for i, name in ipairs(names) do
    local d = (new[i] or 0) - (prev[i] or 0)
    -- a new member writes every field, zeros too, so totals always carry the full set of names
    if d ~= 0 or not old then redis.call('HINCRBY', totals, name, d) end
  end
  redis.call('HINCRBY', totals, 'seq', 1)
  redis.call('EXPIRE', members, ARGV[3])
  redis.call('EXPIRE', totals, ARGV[3])
  return true
end
local changed = false
for i = 4, #ARGV - 1, 2 do
  if apply(KEYS[1], KEYS[2], ARGV[i], ARGV[i + 1]) then changed = true end
end
if changed then
  local values = redis.call('HMGET', KEYS[2], unpack(names))
  local row = {}
  for i = 1, #names do row[i] = tonumber(values[i]) or 0 end
  apply(KEYS[3], KEYS[4], ARGV[1], cjson.encode(row))
end
return {redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[4])}
'''

# Set a roll-up's latest hash unless it already holds a newer bucket, or a newer state of the same one
# (two writers may publish out of order). It expires with the totals it comes from: were it to outlive
# them, their `seq` would start again at 1 and never pass the one kept here.
# KEYS: the hash; ARGV: bucket start ms, seq, ttl seconds, field, value, ...
_SET_LATEST_LUA = '''
local bucket = tonumber(redis.call('HGET', KEYS[1], 'bucket_start_ms') or '-1')
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '-1')
local new_bucket, new_seq = tonumber(ARGV[1]), tonumber(ARGV[2])
if new_bucket > bucket or (new_bucket == bucket and new_seq > seq) then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], unpack(ARGV, 4))
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
'''


# Set a store's latest bucket hash from a restated revision unless it holds a newer bucket already (a
# restatement is of an older bucket, mostly). KEYS: the hash; ARGV: bucket start ms, field, value, ...
_SET_BUCKET_LATEST_LUA = '''
local bucket = tonumber(redis.call('HGET', KEYS[1], 'bucket_start_ms') or '-1')
if tonumber(ARGV[1]) >= bucket then
  redis.call('HSET', KEYS[1], unpack(ARGV, 2))
  return 1
end
return 0
'''

# Write a hash from one JSON object of strings (a record's `_flat` fields), then set its expiry; with
# "replace", drop its other fields first. A live record is about 80 fields: as an HSET, redis-py packed
# each field and value in Python (133 µs a record, and one live record per store a second); as one
# JSON argument, 11 µs. The values are strings on both sides, so the hash holds the same bytes.
# KEYS: the hash; ARGV: the fields (a JSON object of strings), ttl seconds, "replace" or "merge".
_HSET_JSON = '''
local flat = {}
if ARGV[1] ~= '' then
  local fields = cjson.decode(ARGV[1])
  for name, value in pairs(fields) do flat[#flat + 1] = name; flat[#flat + 1] = value end
  if ARGV[3] == 'replace' then redis.call('DEL', KEYS[1]) end
  for i = 1, #flat, 400 do redis.call('HSET', KEYS[1], unpack(flat, i, math.min(i + 399, #flat))) end
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
'''

# A record's writes as one command each, not two (live) or five (bucket): redis-py packed every command
# and parsed its reply in Python, and Redis writes took a fifth of the worker's main thread at 5,000 live
# stores (cProfile). The same commands run, in the same order, inside the script.
# Both start from `_HSET_JSON` (ARGV[1]: the hash's fields as JSON, empty for none; ARGV[2]: ttl seconds;
# ARGV[3]: "replace" or "merge"); ARGV[4]: the channel, ARGV[5]: the record.
# Live: KEYS: the live hash.
_WRITE_LIVE_LUA = _HSET_JSON + '''
redis.call('PUBLISH', ARGV[4], ARGV[5])
return #flat / 2
'''
# Bucket: KEYS: the latest hash, the history stream, the day hash; ARGV[1] is empty for a restated revision
# (it goes to the latest hash only if no newer bucket is there, `_SET_BUCKET_LATEST_LUA`); ARGV[6]: the
# history's approximate bound, ARGV[7]: the day hash's field.
_WRITE_BUCKET_LUA = _HSET_JSON + '''
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'record', ARGV[5])
redis.call('HSET', KEYS[3], ARGV[7], ARGV[5])
redis.call('EXPIRE', KEYS[3], ARGV[2])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return #flat / 2
'''


def _flat(record: dict[str, Any]) -> dict[str, str]:
    """A record as hash fields: strings as they are, anything else as JSON."""
    return {name: (v if isinstance(v, str) else orjson.dumps(v).decode()) for name, v in record.items()}


def _day_of(bucket_start_ms: int, tz: zoneinfo.ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(bucket_start_ms / 1000, tz).date().isoformat()


class RedisSink:
    """Publishes records to Redis: buckets and live state (latest hash, history stream, day hash, pub/sub),
    their roll-ups, forecasts (latest per series, history stream, pub/sub) and alerts (open ones per
    store, one history stream, one channel)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = settings.redis_keys
        self.client = aioredis.Redis.from_url(
            settings.redis_url,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            # No socket_timeout: on Python 3.11 redis-py then sends through asyncio.wait_for, which was
            # measured to lose 5-9% of outer cancellations (a stopping worker could hang); each call is
            # bounded with asyncio.timeout below instead.
            socket_connect_timeout=5,
        )
        self._tz = zoneinfo.ZoneInfo(settings.timezone)
        self._retention_s = settings.bucket_retention_days * 86_400
        self.failures = 0
        self._rollup = self.client.register_script(_ROLLUP_LUA)
        self._set_latest = self.client.register_script(_SET_LATEST_LUA)
        self._set_bucket_latest = self.client.register_script(_SET_BUCKET_LATEST_LUA)
        self._write_live_script = self.client.register_script(_WRITE_LIVE_LUA)
        self._write_bucket_script = self.client.register_script(_WRITE_BUCKET_LUA)
        self._writers = {"alert": self._write_alert, "forecast": self._write_forecast, "live": self._write_live,
                         "bucket": self._write_bucket}
        #: The input partitions this worker owns (`stream.ownership`): its writes are fenced by them.
        # A claim lapses after three session timeouts without its holder: by then Kafka has given the
        # partition away if its holder is merely frozen, and a re-created group's workers may take it.
        self.owners = PartitionOwners(self.keys, alive_ms=int(max(10.0, 3 * settings.session_timeout_s) * 1000))
        #: Records not written because their partition was lost to another worker, since start.
        self.fenced_records = 0

    async def publish(self, records: Iterable[dict[str, Any]], stats: Counter[str] | None = None,
                      partitions: Mapping[str, int] | None = None,
                      bodies: Mapping[int, bytes] | None = None) -> bool:
        """Write `records` and their roll-ups, then add `stats` to `<p>:stats`. False when Redis failed.

        `partitions` (store id -> input partition) fences the writes (`stream.ownership`): records of a
        partition another worker claimed since are dropped (counted in `fenced_records`), never written.
        `bodies`: records already serialised (for Kafka), by `id(record)`, written as they are.

        Records go in pipelines of at most `CHUNK` (a replay can hand over tens of thousands at
        once; one pipeline of them measured over the 10 s bound), each bounded in time. The
        counters are added last, only when every record and roll-up was written, so writing the
        same records again after a failure never counts them twice.
        """
        records = list(records)
        if not records and not stats:
            return True
        done = 0
        try:
            for i in range(0, len(records), CHUNK):
                chunk = records[i:i + CHUNK]
                async with asyncio.timeout(_CALL_TIMEOUT_S):
                    chunk = await self._write_records(chunk, partitions or {}, bodies or {})
                    await self._publish_rollups([r for r in chunk if r.get("type") in ("bucket", "live")])
                done += len(chunk)
            if stats:
                pipe = self.client.pipeline(transaction=False)
                for name, count in stats.items():
                    pipe.hincrby(self.keys.stats, name, count)
                async with asyncio.timeout(_CALL_TIMEOUT_S):
                    await pipe.execute()
            return True
        except (RedisError, OSError, TimeoutError) as exc:
            self.failures += 1
            logger.error("redis write failed after retries at record %d of %d (failures=%d): %r",
                         done, len(records), self.failures, exc)
            return False

    async def _write_records(self, records: list[dict[str, Any]], partitions: Mapping[str, int],
                             bodies: Mapping[int, bytes]) -> list[dict[str, Any]]:
        """Write the records of partitions this worker still owns, atomically with that check; return them."""
        owners = self.owners
        for _ in range(FENCE_TRIES):
            records = self._drop_lost(records, partitions)
            fenced = owners.fenced({partitions[r["store_id"]] for r in records if r["store_id"] in partitions})
            if not fenced:
                pipe = self.client.pipeline(transaction=False)
                await self._queue_records(pipe, records, bodies)
                await pipe.execute()
                return records
            order = sorted(fenced)
            owner_keys = [owners.key(p) for p in order]
            async with self.client.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(*owner_keys)
                    current = dict(zip(order, await pipe.mget(owner_keys), strict=True))
                    if owners.judge(current):
                        continue  # another worker claimed some: drop their records, try the rest
                    if any(value is None or int(value) < fenced[p] for p, value in current.items()):
                        await owners.check(self.client, order)  # Redis lost the keys: claim them again
                        continue
                    pipe.multi()
                    await self._queue_records(pipe, records, bodies)
                    await pipe.execute()
                    return records
                except WatchError:
                    continue  # an owner key changed between the check and the write: nothing was written
        raise RedisError(f"owner keys of partitions {sorted(fenced)} kept changing over {FENCE_TRIES} tries")

    def _drop_lost(self, records: list[dict[str, Any]], partitions: Mapping[str, int]) -> list[dict[str, Any]]:
        lost = self.owners.lost
        if not lost:
            return records
        kept = [r for r in records if partitions.get(r["store_id"]) not in lost]
        self.fenced_records += len(records) - len(kept)
        return kept

    async def _queue_records(self, pipe: Any, records: list[dict[str, Any]],
                             bodies: Mapping[int, bytes] | None = None) -> None:
        for record in records:
            write = self._writers.get(record.get("type"), self._write_other)
            body = bodies.get(id(record)) if bodies else None
            if body is None:
                body = orjson.dumps(record)
            await write(pipe, record, body)
            if record.get("type") == "bucket" and record.get("restated"):
                flat = [x for kv in _flat(record).items() for x in kv]
                await self._set_bucket_latest(keys=[self.keys.store_latest(record["store_id"])],
                                              args=[record["bucket_start_ms"], *flat], client=pipe)
                pipe.expire(self.keys.store_latest(record["store_id"]), self._retention_s)

    async def _write_alert(self, pipe: Any, record: dict[str, Any], body: bytes) -> None:
        # Open alerts per store (a resolved one leaves), every change in one history, one channel.
        k = self.keys
        open_key = k.store_alerts(record["store_id"])
        if record["state"] == "resolved":
            pipe.hdel(open_key, record["alert_id"])
        else:
            pipe.hset(open_key, record["alert_id"], body)
        pipe.expire(open_key, self._retention_s)  # current state: a store gone silent leaves with it
        pipe.xadd(k.alerts_history, {"record": body}, maxlen=self.settings.history_maxlen, approximate=True)
        pipe.publish(k.alerts_channel, body)

    async def _write_forecast(self, pipe: Any, record: dict[str, Any], body: bytes) -> None:
        # Latest per series (a hash field each), a capped history, and a push to dashboards.
        k, store = self.keys, record["store_id"]
        pipe.hset(k.store_forecast(store), record["series"], body)
        pipe.expire(k.store_forecast(store), self._retention_s)
        pipe.xadd(k.store_forecast_history(store), {"record": body}, maxlen=self.settings.history_maxlen,
                  approximate=True)
        pipe.publish(k.forecast_channel(store), body)

    async def _write_live(self, pipe: Any, record: dict[str, Any], body: bytes) -> None:
        # The store now: replaced whole, so a field that became null does not linger.
        k, store = self.keys, record["store_id"]
        await self._write_live_script(keys=[k.store_live(store)],
                                      args=[orjson.dumps(_flat(record)), self._retention_s, "replace",
                                            k.live_channel(store), body], client=pipe)

    async def _write_bucket(self, pipe: Any, record: dict[str, Any], body: bytes) -> None:
        # A restated revision goes to the latest hash only if no newer bucket is there (`_write_records`).
        k, store = self.keys, record["store_id"]
        latest = b"" if record.get("restated") else orjson.dumps(_flat(record))
        day = record.get("day") or _day_of(record["bucket_start_ms"], self._tz)
        await self._write_bucket_script(
            keys=[k.store_latest(store), k.store_history(store), k.store_day(store, day)],
            args=[latest, self._retention_s, "merge", k.live_channel(store), body, self.settings.history_maxlen,
                  record["bucket_start"]], client=pipe)

    async def _write_other(self, pipe: Any, record: dict[str, Any], body: bytes) -> None:
        # A record kind of a newer stage: the latest per store, a capped history, a channel.
        # The latest is one JSON string: a hash flattened field by field cannot tell a text field from
        # JSON (a text "null" from a null), and the reader of a new kind knows none of its fields.
        k, store, kind = self.keys, record["store_id"], record["type"]
        pipe.set(k.store_record(store, kind), body, ex=self._retention_s)
        pipe.xadd(k.store_record_history(store, kind), {"record": body}, maxlen=self.settings.history_maxlen,
                  approximate=True)
        pipe.publish(k.record_channel(kind, store), body)

    async def _publish_rollups(self, records: list[dict[str, Any]]) -> None:
        """Fold records into their region's and the chain's totals; publish the roll-ups that changed.

        Bucket records roll up per bucket (`<p>:rollup:<level>:<key>:<bucket_start_ms>:...`), live records
        into the stores' state now (`<p>:rollup:<level>:<key>:live:...`).
        """
        if not records:
            return
        k = self.keys
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (region, slot) -> its records, in order
        for record in records:
            slot = "live" if record["type"] == "live" else str(record["bucket_start_ms"])
            groups.setdefault((record.get("region") or "unassigned", slot), []).append(record)
        pipe = self.client.pipeline(transaction=False)
        for (region, slot), group in groups.items():
            live = slot == "live"
            args: list[Any] = [region, ",".join(LIVE_SUMMED if live else SUMMED), self._retention_s]
            for record in group:
                args += [record["store_id"], orjson.dumps(compact_live(record) if live else compact(record)).decode()]
            keys = [k.rollup_members("region", region, slot),
                    k.rollup_totals("region", region, slot),
                    k.rollup_members("chain", CHAIN, slot),
                    k.rollup_totals("chain", CHAIN, slot)]
            await self._rollup(keys=keys, args=args, client=pipe)
        results = await pipe.execute()
        newest: dict[tuple[str, str, str], dict[str, Any]] = {}
        for ((region, slot), group), (region_totals, chain_totals) in zip(groups.items(), results, strict=True):
            live = slot == "live"
            for level, key, flat in (("region", region, region_totals), ("chain", CHAIN, chain_totals)):
                totals = {k.decode(): int(v) for k, v in zip(flat[::2], flat[1::2], strict=True)}
                ident = (level, key, slot)
                if ident in newest and totals.get("seq", 0) <= newest[ident]["seq"]:
                    continue
                newest[ident] = live_rollup_record(level, key, totals) if live else \
                    rollup_record(level, key, group[-1], totals)
        pipe = self.client.pipeline(transaction=False)
        for (level, key, slot), rollup in newest.items():
            body = orjson.dumps(rollup)
            flat = [x for k, v in rollup.items() for x in (k, v if isinstance(v, str) else orjson.dumps(v).decode())]
            if slot == "live":
                await self._set_latest(keys=[k.rollup_live(level, key)],
                                       args=[0, rollup["seq"], self._retention_s, "bucket_start_ms", 0, *flat],
                                       client=pipe)
            else:
                await self._set_latest(keys=[k.rollup_latest(level, key)],
                                       args=[rollup["bucket_start_ms"], rollup["seq"], self._retention_s, *flat],
                                       client=pipe)
                pipe.xadd(k.rollup_history(level, key), {"record": body},
                          maxlen=self.settings.history_maxlen, approximate=True)
            pipe.publish(k.rollup_channel(level, key), body)
        await pipe.execute()

    async def count_dead_letter(self, reason: str) -> None:
        try:
            async with asyncio.timeout(_CALL_TIMEOUT_S):
                await self.client.hincrby(self.keys.dead_letter_counts, reason, 1)
        except (RedisError, OSError, TimeoutError) as exc:
            self.failures += 1
            logger.error("redis dead-letter count failed (reason=%s): %r", reason, exc)

    async def ping(self, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
        """Whether Redis answers now, within `timeout_s` (a cheap probe while it is known to be away)."""
        try:
            async with asyncio.timeout(timeout_s):
                return bool(await self.client.ping())
        except (RedisError, OSError, TimeoutError):
            return False

    async def lost_data(self) -> bool:
        """Whether Redis may lack what was published (restarted empty, flushed): its written marker is missing.

        Missing at a deployment's first flush too (its topics are empty: the rebuild costs
        nothing), and after a Redis wiped while the worker was down. `mark_written` sets it
        once the rebuild is done. Raises on a Redis failure.
        """
        async with asyncio.timeout(_CALL_TIMEOUT_S):
            return not await self.client.exists(self.keys.written_marker)

    async def mark_written(self) -> None:
        """Set the written marker (after Redis was rebuilt). Raises on a Redis failure."""
        async with asyncio.timeout(_CALL_TIMEOUT_S):
            await self.client.set(self.keys.written_marker, b"1")

    async def close(self) -> None:
        await self.client.aclose()


def dead_letter_headers(
    *, reason: str, error: str, topic: str, partition: int, offset: int, batch_index: int | None
) -> list[tuple[str, bytes]]:
    """Kafka headers of a dead-letter record; its value is the rejected input's bytes.

    >>> dict(dead_letter_headers(reason="not_json", error="JSONDecodeError: x", topic="t",
    ...                          partition=1, offset=7, batch_index=None))["footfall.reason"]
    b'not_json'

    """
    headers = [
        ("footfall.reason", reason.encode()),
        ("footfall.error", error[:2000].encode("utf-8", "replace")),
        ("footfall.source.topic", topic.encode()),
        ("footfall.source.partition", str(partition).encode()),
        ("footfall.source.offset", str(offset).encode()),
        ("footfall.received_at_ms", str(int(time.time() * 1000)).encode()),
    ]
    if batch_index is not None:
        headers.append(("footfall.batch_index", str(batch_index).encode()))
    return headers


class DeadLetterLog:
    """Counts dead letters per reason and logs at most one WARNING per reason per interval."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.counts: Counter[str] = Counter()
        self._last_logged: dict[str, float] = {}
        self._unlogged: Counter[str] = Counter()

    def record(self, reason: str, error: str, where: str) -> None:
        self.counts[reason] += 1
        now = time.monotonic()
        last = self._last_logged.get(reason)
        if last is not None and now - last < self.every_s:
            self._unlogged[reason] += 1
            return
        suppressed = self._unlogged.pop(reason, 0)
        self._last_logged[reason] = now
        logger.warning(
            "dead-lettered reason=%s at=%s error=%s total=%d%s",
            reason, where, error[:300], self.counts[reason],
            f" (+{suppressed} more since the last line)" if suppressed else "",
        )
