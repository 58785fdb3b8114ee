"""The stores a worker holds in memory: each one's pipeline, where it stands in the input, and its idle clock.

A store comes into memory on its first message (or when its partition is assigned:
`load_saved`), from what the `stores` table holds (`operators.pipeline.persistence`), and
leaves when its partition goes. The pipeline's configuration (bucket length, time
zone, stages) comes from the settings (`pipeline_params`, `stage_factories`).

Idle stores. A silent store's event time is taken to run on with the wall clock:
its watermark at its last event plus the wall time since. `idle_ticks` says which
stores have a bucket due to close that way.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from footfall.operators.pipeline.persistence import (
    StateRefused,
    legacy_stage_key,
    read_stage_value,
    read_store_value,
    stage_key,
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
    wall_ms: int = field(default_factory=lambda: int(time.time() * 1000))  # when it last had an event
    wm_at_wall_ms: int | None = None  # its watermark then
    ticked_to_ms: int = -1  # the newest idle tick sent for it
    # Re-routed messages applied, by source partition and offset: one sent again (its source re-applied
    # after a crash, or its failed send resent after later ones) is recognised whatever its events' age.
    rerouted: ReroutedSeen = field(default_factory=ReroutedSeen)

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

    def __len__(self) -> int:
        return len(self._stores)

    def __getitem__(self, store_id: str) -> HeldStore:
        return self._stores[store_id]

    def known(self, store_id: str) -> bool:
        """In memory, or saved in the table."""
        return store_id in self._stores or self.table.get(store_id) is not None

    def get(self, store_id: str, partition: int) -> HeldStore:
        """The store, from memory or from the table (a new one when neither has it)."""
        store = self._stores.get(store_id)
        if store is None:
            store = self._stores[store_id] = self._load(store_id, partition)
        return store

    def _load(self, store_id: str, partition: int) -> HeldStore:
        params = pipeline_params(self.settings, store_id)
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
        return gone

    def load_saved(self, partitions: set[int]) -> None:
        """Bring the stores the table holds for `partitions` (this worker's) into memory, so silent ones get ticks."""
        for key, saved in list(self.table.data.items()):
            if key in self._stores or key.startswith("~") or not isinstance(saved, dict):
                continue
            partition = saved.get("partition", saved.get("p"))
            if partition in partitions:
                try:
                    self.get(key, partition)
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
