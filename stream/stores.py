"""The stores a worker holds in memory: each one's pipeline, where it stands in the input, and its idle clock.

A store comes into memory on its first message (or when its partition is assigned:
`load_saved`), from what the `stores` table holds (`operators.pipeline.persistence`), and
leaves when its partition goes, or when it has been idle long enough (eviction, below). The
pipeline's configuration (bucket length, time zone, stages) comes from the settings
(`pipeline_params`, `stage_factories`).

Idle stores. A silent store's event time is taken to run on with the wall clock:
its watermark at its last event plus the wall time since. `idle_ticks` says which
stores have a bucket due to close that way.

Eviction (`FOOTFALL_STORE_IDLE_EVICT_S`, 0 = never). A store leaves memory (`evict_idle`) once
it has had no event for that long (wall clock, counted from its last event or from when it came
into memory; idle ticks do not count, or a silent store would be ticked every bucket forever),
and nothing of it would be lost or is still to come: it is not `dirty`, the table holds its state
at the offset it stands at (a store left unsaved, `state_too_large`, or one whose saved value was
refused, stays), and, with idle ticks on, no bucket with events is still open (the ticks close it
first) and no tick sent for it is still on its way back. Its saved value stays in the table and
its changelog; its next message (an event, or a late tick) reloads it through `_load`, exactly as
after a rebalance, and its counts continue. Only then: like any store loaded from the table, its
saved watermark is where the ticks left it, so events hours ahead of it move it only once
corroborated (`StoreParams.watermark_corroboration`), while they count in their buckets at once.
A sweep runs at most every `sweep_every_ms`, from `load_saved` (the idle-tick timer, every second)
and from `get` (so it runs with idle ticks off as well, as messages come). `evicted` counts them.

`load_saved` brings a partition's saved stores into memory once per assignment (`forget` of the
partition, on every rebalance, makes it due again), not at every round: an evicted store stays
out until its next message, so memory stays flat however many ids were ever seen.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from footfall.operators.pipeline.persistence import (
    StateRefused,
    legacy_stage_key,
    parsed,
    read_stage_value,
    read_store_value,
    stage_key,
    store_value,
)
from footfall.operators.pipeline.stage import StageFactory
from footfall.operators.pipeline.store import StoreParams
from footfall.operators.pipeline.store_pipeline import STAGES, StorePipeline
from footfall.operators.windows.dedupe import max_ids_for
from footfall.stream.records import StoreMeta
from footfall.stream.settings import Settings

__all__ = ["REROUTE_MEMORY", "HeldStore", "ReroutedSeen", "StoreRegistry", "pipeline_params", "stage_factories"]

logger = logging.getLogger(__name__)


def pipeline_params(settings: Settings, store_id: str) -> StoreParams:
    """How `store_id`'s events are counted, from the settings."""
    s = settings
    return StoreParams(
        bucket_ms=s.bucket_ms, grace_ms=s.grace_ms, tz=s.timezone_of_store.get(store_id, s.timezone),
        reset_at=s.reset_at, dedupe_horizon_ms=s.dedupe_horizon_s * 1000, target_wait_s=s.target_wait_s,
    )


#: Re-routed messages a store remembers per source partition (the newest source offsets); older ones are
#: taken as applied. A resend comes at the next flush, so this many later ones from the same source
#: partition to the same store would have to overtake it for it to be taken wrongly for a repeat.
REROUTE_MEMORY = 2048


class ReroutedSeen:
    """Which re-routed messages a store has applied, by `(source partition, source offset)`, exactly.

    A re-routed message is sent again when its source is re-applied after a crash, or when its
    send failed and the next flush resends it: by then later re-routes from the same source may
    have arrived, so "the highest source offset seen" is not enough. Each source partition keeps
    the set of its offsets applied, the newest `limit` of them; below those, a `floor`: offsets at
    or under it count as applied (a saved value of the earlier scheme, a plain highest offset, is
    read as that floor).

    >>> seen = ReroutedSeen(limit=3)
    >>> [seen.first_time("0", o) for o in (5, 7, 6, 7, 9, 5)]
    [True, True, True, False, True, False]
    >>> seen.to_state()
    {'0': {'floor': 5, 'seen': [6, 7, 9]}}
    >>> ReroutedSeen.from_state({"0": 7}).first_time("0", 7), ReroutedSeen.from_state({"0": 7}).first_time("0", 8)
    (False, True)

    """

    __slots__ = ("_floor", "_seen", "limit")

    def __init__(self, limit: int = REROUTE_MEMORY) -> None:
        self.limit = limit
        self._floor: dict[str, int] = {}
        self._seen: dict[str, set[int]] = {}

    def first_time(self, source: str, offset: int) -> bool:
        """True, and remembered, the first time `source`'s message at `offset` comes; False for a repeat."""
        if offset <= self._floor.get(source, -1):
            return False
        seen = self._seen.setdefault(source, set())
        if offset in seen:
            return False
        seen.add(offset)
        if len(seen) > self.limit:
            oldest = sorted(seen)[: len(seen) - self.limit]
            seen.difference_update(oldest)
            self._floor[source] = max(self._floor.get(source, -1), oldest[-1])
        return True

    def __bool__(self) -> bool:
        return bool(self._seen or self._floor)

    def to_state(self) -> dict[str, Any]:
        """Plain JSON-able state: per source partition, its floor and the offsets above it."""
        return {source: {"floor": self._floor.get(source, -1), "seen": sorted(self._seen.get(source, ()))}
                for source in sorted({*self._floor, *self._seen})}

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None, limit: int = REROUTE_MEMORY) -> ReroutedSeen:
        """From `to_state()`, or the earlier scheme's `{source: highest offset}`."""
        seen = cls(limit)
        for source, value in (state or {}).items():
            if isinstance(value, int):
                seen._floor[source] = value
            else:
                seen._floor[source] = int(value.get("floor", -1))
                seen._seen[source] = {int(o) for o in value.get("seen", ())}
        return seen


def stage_factories(settings: Settings) -> list[StageFactory]:
    """The built-in stages (`operators.pipeline.store_pipeline.STAGES`) and any named by `FOOTFALL_EXTRA_STAGES`."""
    factories: list[StageFactory] = [cls.from_settings(settings) for cls in STAGES]
    for path in settings.extra_stage_paths:
        module, _, name = path.partition(":")
        cls = getattr(importlib.import_module(module), name)
        factories.append(cls.from_settings(settings) if hasattr(cls, "from_settings") else cls())
    return factories


@dataclass
class HeldStore:
    """A store held in memory: its pipeline, and where its state stands in the input."""

    pipeline: StorePipeline
    partition: int
    offset: int  # last input offset applied to it
    # When it last had an event (or came into memory): its idle clock, and its eviction clock.
    wall_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    wm_at_wall_ms: int | None = None  # its watermark then
    ticked_to_ms: int = -1  # the newest idle tick sent for it
    # Re-routed messages applied, by source partition and offset: one sent again (its source re-applied
    # after a crash, or its failed send resent after later ones) is recognised whatever its events' age.
    rerouted: ReroutedSeen = field(default_factory=ReroutedSeen)
    # Bytes of its saved state's value and when they were measured (monotonic), by the checkpoint
    # that serialised it or by `Intake.fits`: the size check reuses the save's serialisation.
    state_value_bytes: int = -1
    state_measured_at: float = 0.0

    def serialise(self) -> tuple[dict[str, Any], bytes]:
        """The value that saves the store's state and its JSON bytes, whose size is noted (`state_value_bytes`)."""
        p = self.pipeline
        value = store_value(p.store_id, p.to_state(embed=True), self.partition, self.offset, self.rerouted.to_state())
        raw = orjson.dumps(value)
        self.state_value_bytes, self.state_measured_at = len(raw), time.monotonic()
        return value, raw

    @property
    def meta(self) -> StoreMeta:
        p = self.pipeline
        return StoreMeta(p.store_id, p.region, p.vertical, p.params.tz)


class StoreRegistry:
    """The stores of this worker's partitions that are in memory (see the module docstring)."""

    def __init__(self, settings: Settings, table: Any) -> None:
        self.settings = settings
        self.table = table
        self.stages = stage_factories(settings)
        self._stores: dict[str, HeldStore] = {}
        #: Stores changed since their state was last saved.
        self.dirty: set[str] = set()
        #: Stores changed since their live outputs were last collected (a subset of `dirty`).
        self.touched: set[str] = set()
        #: Saved values refused (logged, that part started over) since start.
        self.refused = 0
        #: Stores evicted from memory since start (`evict_idle`).
        self.evicted = 0
        self.evict_after_ms = int(settings.store_idle_evict_s * 1000)
        #: How often at most `evict_idle` sweeps (from `get` and `load_saved`).
        self.sweep_every_ms = max(250, min(self.evict_after_ms // 4, 60_000))
        self._swept_at_ms = 0
        #: Partitions whose saved stores `load_saved` brought in since they were (re)assigned.
        self._loaded: set[int] = set()

    def __len__(self) -> int:
        return len(self._stores)

    def __getitem__(self, store_id: str) -> HeldStore:
        return self._stores[store_id]

    def __contains__(self, store_id: object) -> bool:
        return store_id in self._stores

    def known(self, store_id: str) -> bool:
        """In memory, or saved in the table."""
        return store_id in self._stores or self.table.get(store_id) is not None

    def get(self, store_id: str, partition: int) -> HeldStore:
        """The store, from memory or from the table (a new one when neither has it)."""
        self.maybe_evict()
        store = self._stores.get(store_id)
        if store is None:
            store = self._stores[store_id] = self._load(store_id, partition)
        return store

    def _load(self, store_id: str, partition: int, saved_value: Any = None) -> HeldStore:
        """The store rebuilt from the table; `saved_value`: its value already read and parsed (`load_saved`)."""
        params = pipeline_params(self.settings, store_id)
        if saved_value is None:
            saved_value = self.table.get(store_id)
        state, saved_partition, offset, rerouted = None, partition, -1, ReroutedSeen()
        if saved_value:
            try:
                saved = read_store_value(store_id, saved_value)
                state, offset = saved.state, saved.offset
                rerouted = ReroutedSeen.from_state(saved.rerouted)
                saved_partition = saved.partition if saved.partition is not None else partition
            except StateRefused as refused:
                logger.error("%s", refused)
                self.refused += 1
        stage_states = self._stage_states(store_id)
        try:
            pipeline = StorePipeline.from_state(store_id, params, self.stages, state, stage_states)
        except Exception:  # a saved flow this code cannot rebuild: say so, and count the store anew
            logger.exception("store %s: saved flow state unreadable; the store's counts start over", store_id)
            pipeline = StorePipeline.from_state(store_id, params, self.stages, None, stage_states)
        # Its duplicate memory bounded so that its saved state fits in one message (FOOTFALL_MAX_MESSAGE_BYTES);
        # ids beyond are forgotten oldest first, counted by the intake as `dedupe_overflow`.
        dedupe = pipeline.flow.dedupe
        dedupe.bound(max_ids_for(self.settings.max_message_bytes, dedupe.horizon_ms, dedupe.slot_ms))
        return HeldStore(pipeline, saved_partition, offset, wm_at_wall_ms=pipeline.watermark_ms, rerouted=rerouted)

    def _stage_states(self, store_id: str) -> Mapping[str, Any]:
        states = {}
        for factory in self.stages:
            value = self.table.get(stage_key(factory.name, store_id))
            legacy = legacy_stage_key(factory.name, store_id)
            if value is None and legacy is not None:
                value = self.table.get(legacy)
            try:
                states[factory.name] = read_stage_value(store_id, factory.name, value).state
            except StateRefused as refused:
                logger.error("%s", refused)
                self.refused += 1
        return states

    def forget(self, partitions: set[int]) -> list[str]:
        """Drop the stores of `partitions` from memory (after a rebalance the table is the truth)."""
        gone = [k for k, s in self._stores.items() if s.partition in partitions]
        for store_id in gone:
            del self._stores[store_id]
            self.dirty.discard(store_id)
            self.touched.discard(store_id)
        self._loaded.difference_update(partitions)
        return gone

    def load_saved(self, partitions: set[int]) -> None:
        """Bring the stores the table holds for `partitions` (this worker's) into memory, so silent ones get ticks.

        Once per assignment of a partition (see the module docstring: evicted stores stay out), and not
        the stores `FOOTFALL_STORE_IDS` no longer lets in. Then evicts what is due (`maybe_evict`).
        """
        self.maybe_evict()
        due = set(partitions) - self._loaded
        if not due:
            return
        self._loaded.update(due)
        allowed = self.settings.store_allowed
        for key, value in list(self.table.data.items()):
            if key in self._stores or key.startswith("~") or not allowed(key):
                continue
            try:
                saved = parsed(value)
            except Exception:  # unreadable: `get` says so if the store's events come
                continue
            if not isinstance(saved, dict):
                continue
            partition = saved.get("partition", saved.get("p"))
            if partition in due:
                try:
                    self._stores[key] = self._load(key, partition, saved)  # parsed once, not again by `get`
                except Exception:  # one store that cannot load must not keep the others from their ticks
                    logger.exception("store %s: could not be loaded from the table", key)

    def idle_ticks(self, now_ms: int) -> list[tuple[str, int]]:
        """`(store_id, advance_to_ms)` for stores silent for `FOOTFALL_IDLE_TIMEOUT_S` with a bucket to close.

        A tick is due when the store's event time, run on with the wall clock, reaches the
        close of its oldest open bucket (end + grace), once per close (`ticked` says it went out).
        """
        timeout_ms = int(self.settings.idle_timeout_s * 1000)
        if timeout_ms <= 0:
            return []
        out = []
        for store_id, store in self._stores.items():
            idle_ms = now_ms - store.wall_ms
            if idle_ms < timeout_ms or store.wm_at_wall_ms is None:
                continue
            next_close = store.pipeline.next_close_ms()
            target = store.wm_at_wall_ms + idle_ms
            if next_close is not None and target >= next_close > store.ticked_to_ms:
                out.append((store_id, target))
        return out

    def ticked(self, store_id: str, advance_to_ms: int) -> None:
        """The broker has the tick moving `store_id` to `advance_to_ms`: no other is due until its next close.

        Marked only once the tick is out, so a tick whose send failed is sent again at the next round.
        """
        store = self._stores.get(store_id)
        if store is not None:
            store.ticked_to_ms = max(store.ticked_to_ms, advance_to_ms)

    # -- eviction ------------------------------------------------------------------------------

    def maybe_evict(self, now_ms: int | None = None) -> list[str]:
        """`evict_idle`, when on and its last sweep is `sweep_every_ms` old."""
        if self.evict_after_ms <= 0:
            return []
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if now_ms - self._swept_at_ms < self.sweep_every_ms:
            return []
        return self.evict_idle(now_ms)

    def evictable(self, store_id: str, store: HeldStore, now_ms: int) -> bool:
        """Whether the store may leave memory now (the rule in the module docstring)."""
        if self.evict_after_ms <= 0 or now_ms - store.wall_ms < self.evict_after_ms or store_id in self.dirty:
            return False
        if self.settings.idle_timeout_s > 0:  # idle ticks on: they still have to close its buckets
            pipeline = store.pipeline
            if pipeline.flow.buckets.open_buckets():
                return False
            watermark = pipeline.watermark_ms
            if store.ticked_to_ms > (watermark if watermark is not None else -1):
                return False  # a tick is on its way back to it
        return self._saved_as_is(store_id, store)

    def _saved_as_is(self, store_id: str, store: HeldStore) -> bool:
        """The table holds the store's state at the partition and offset it stands at."""
        try:
            saved = parsed(self.table.data.get(store_id))
        except Exception:
            return False
        if not isinstance(saved, Mapping):
            return False
        partition = saved.get("partition", saved.get("p"))
        offset = saved.get("offset", saved.get("o"))
        return partition == store.partition and offset == store.offset

    def evict_idle(self, now_ms: int | None = None) -> list[str]:
        """Drop the stores `evictable` now from memory (their saved state stays in the table); their ids."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        self._swept_at_ms = now_ms
        if self.evict_after_ms <= 0:
            return []
        gone = [store_id for store_id, store in self._stores.items()
                if now_ms - store.wall_ms >= self.evict_after_ms and self.evictable(store_id, store, now_ms)]
        self._drop(gone)
        if gone:
            self.evicted += len(gone)
            logger.info("evicted %d idle stores from memory (%d left, %d since start)", len(gone),
                        len(self._stores), self.evicted)
        return gone

    def _drop(self, store_ids: Iterable[str]) -> None:
        for store_id in store_ids:
            del self._stores[store_id]
            self.touched.discard(store_id)
