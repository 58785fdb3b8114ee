"""A topic the worker writes its own bytes to: through the app's producer, past Faust's per-message topic layer.

Every message the worker sends is already bytes, keyed and headed as it will be on
the wire, and its delivery is awaited by the checkpoint (`stream.outbox.Send`).
`faust.Topic.send` adds, per message, a `PendingMessage` and a `FutureMessage`,
key and value preparation, the send sensors and a completion callback: measured
with cProfile at 5,000 live stores (`footfall scale --profile`), that layer took
about 35 µs per send beside aiokafka's own, about 6 % of the worker's main thread,
where the worker sends one record per touched bucket and store every second.
`OutputTopic.send` hands the bytes to the producer Faust itself would use
(`App.maybe_start_producer`: the plain producer, or the transaction manager under
`exactly_once`), with the same partitioner (none given: the producer's, by key)
and the same future to await.

Examples
--------
>>> import asyncio
>>> class Producer:  # what `App.maybe_start_producer` returns, reduced to `send`
...     async def send(self, topic, key, value, partition, timestamp, headers):
...         future = asyncio.get_running_loop().create_future()
...         future.set_result((topic, key, value, headers))
...         return future
>>> class App:
...     async def maybe_start_producer(self):
...         return Producer()
>>> class Topic:
...     app = App()
...     def get_topic_name(self):
...         return "footfall.aggregates"
>>> async def main():
...     return await (await OutputTopic(Topic()).send(key=b"s1", value=b"{}", headers=[("h", b"1")]))
>>> asyncio.run(main())
('footfall.aggregates', b's1', b'{}', [('h', b'1')])

"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol

import faust

__all__ = ["OutputTopic", "RawTopic"]


class RawTopic(Protocol):
    """Where the worker sends bytes it has made itself: a `faust.Topic`, an `OutputTopic`, or a test's fake."""

    def get_topic_name(self) -> str: ...

    async def send(self, *, key: bytes | None = None, value: bytes | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> Awaitable[Any]: ...


class OutputTopic:
    """Send raw bytes to `topic` through the app's producer (see the module docstring)."""

    def __init__(self, topic: faust.TopicT) -> None:
        self.topic = topic
        self.app = topic.app
        self.name = topic.get_topic_name()

    def get_topic_name(self) -> str:
        return self.name

    async def send(self, *, key: bytes | None = None, value: bytes | None = None,
                   headers: list[tuple[str, bytes]] | None = None) -> Awaitable[Any]:
        """Hand one message to the producer; the returned future resolves when the broker has it."""
        producer = await self.app.maybe_start_producer()
        return await producer.send(self.name, key, value, None, None, headers)

    def __repr__(self) -> str:
        return f"OutputTopic({self.name!r})"
