"""Seeing inside a running worker: where its asyncio tasks wait, and what its consumer fetches."""

from __future__ import annotations

import asyncio
import logging

import faust

__all__ = ["consumer_state", "log_task_stacks", "recovery_state"]

logger = logging.getLogger(__name__)


def _await_chain(awaitable: object) -> list[str]:
    """Where a coroutine waits: its frame, the frame of what it awaits, and so on down."""
    frames, seen = [], 0
    while awaitable is not None and seen < 40:
        seen += 1
        if isinstance(awaitable, asyncio.Task):
            awaitable = awaitable.get_coro()
            continue
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None) or getattr(
            awaitable, "ag_frame", None)
        if frame is not None:
            frames.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        nxt = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom", None) or getattr(
            awaitable, "ag_await", None)
        if nxt is None:
            if frame is None:
                frames.append(repr(awaitable)[:200])
            break
        awaitable = nxt
    return frames


def consumer_state(app: faust.App, topic: str) -> str:
    """Which input partitions Faust's consumer fetches from, and which it holds back (for the progress log)."""
    consumer = app.consumer

    def of_topic(tps: object) -> list[int]:
        return sorted(tp.partition for tp in (tps or ()) if tp.topic == topic)  # type: ignore[attr-defined]

    return (f"flow {'on' if consumer.flow_active else 'off'}, fetching {of_topic(consumer._active_partitions)}, "
            f"paused {of_topic(consumer._paused_partitions)}, buffer-full {of_topic(consumer._buffered_partitions)}")


def log_task_stacks() -> None:
    for task in asyncio.all_tasks():
        logger.warning("task %s waits at:\n  %s", task.get_name(), "\n  ".join(_await_chain(task)))


def recovery_state(app: faust.App, tps: list) -> str:
    """What Faust's consumer and its aiokafka consumer hold for changelog partitions `tps` (for a stall's log)."""
    parts: list[str] = []
    try:  # diagnostics never fail the caller; the aiokafka consumer lives in Faust's consumer thread: only read
        consumer = app.consumer
        parts.append(f"flow {'on' if consumer.flow_active else 'off'}")
        for tp in tps:
            where = ("fetching" if tp in (consumer._active_partitions or ()) else
                     "paused" if tp in consumer._paused_partitions else "neither fetching nor paused")
            parts.append(f"{tp.topic}[{tp.partition}] {where}, read offset {consumer._read_offset.get(tp)}")
        fetcher = app._fetcher  # type: ignore[attr-defined]
        drainer = getattr(fetcher, "_drainer", None)
        drained = "done" if drainer is not None and drainer.done() else drainer
        parts.append(f"fetcher {fetcher.state}, drainer {drained}")
        assignment = consumer._thread._consumer._subscription.subscription.assignment
        for tp in tps:
            state = assignment.state_value(tp) if assignment is not None else None
            if state is None:
                parts.append(f"aiokafka: {tp.topic}[{tp.partition}] not assigned")
            else:
                parts.append(f"aiokafka: {tp.topic}[{tp.partition}] paused {state.paused}, "
                             f"position {state._position}, status {state._status}, highwater {state.highwater}")
    except Exception as exc:
        parts.append(f"(the rest unreadable: {exc!r})")
    return "; ".join(parts)
