"""The worker's consumer fetches with a short wait (`stream.fetch_wait`), where Faust alone sets 1,500 ms."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import faust

from footfall.stream.app import FlowApp
from footfall.stream.fetch_wait import FETCH_MAX_WAIT_MS


def kafka_consumer_of(app: faust.App) -> object:
    """The aiokafka consumer the app's Faust consumer would start in its thread (made, not started)."""
    async def make() -> object:
        return app.consumer._thread._create_consumer(asyncio.get_running_loop())

    return asyncio.run(make())


def test_the_worker_app_fetches_with_the_short_wait_and_plain_faust_does_not():
    settings = {"broker": "kafka://127.0.0.1:1", "store": "memory://", "autodiscover": False,
                "datadir": Path(tempfile.mkdtemp(prefix="footfall-test-"))}
    ours = kafka_consumer_of(FlowApp("fetch-wait-test", **settings))
    plain = kafka_consumer_of(faust.App("fetch-wait-plain", **settings))
    assert ours._fetch_max_wait_ms == FETCH_MAX_WAIT_MS == 100
    assert plain._fetch_max_wait_ms == 1500  # what Faust sets: the reason for the module
