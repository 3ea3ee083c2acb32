"""Micro-batches of a faust stream that close when the stream goes quiet, not on a timer.

faust's `take_events(n, within)` wakes up every `within` seconds to look at its buffer, so
an event on an idle worker waits for the next tick (measured here: producer → handler p50
19.3 ms with a 10 ms tick, 12.1 ms taking events one by one). `ready_batches` hands over an
event as soon as nothing more is waiting behind it, and everything already waiting with it:
idle, a batch is one event at once; under load, the events that arrived while the previous
batch was embedded come as one batch (up to `max_events`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Protocol


class _Queue(Protocol):
    def empty(self) -> bool: ...


class _Channel(Protocol):
    @property
    def queue(self) -> _Queue: ...


class Stream(Protocol):
    """What `ready_batches` uses of a faust Stream (faust's own types lack these)."""

    @property
    def channel(self) -> _Channel: ...

    enable_acks: bool

    def events(self) -> AsyncIterator[Any]: ...

    async def ack(self, event: Any) -> bool: ...


async def ready_batches(
    stream: Stream, max_events: int, quiet_s: float = 0.0
) -> AsyncIterator[list[Any]]:
    """Batches of the stream's events: a batch closes when `max_events` are in it, or when
    no further event is queued and none arrives within `quiet_s` (0: close as soon as the
    queue is empty). Events are acked once the caller is done with their batch, as
    `take_events` does."""
    queue = stream.channel.queue
    stream.enable_acks = False
    batch: list[Any] = []
    async for event in stream.events():
        batch.append(event)
        if len(batch) < max_events and await _more_coming(queue, quiet_s):
            continue
        yield batch
        for done in batch:
            await stream.ack(done)
        batch = []


async def _more_coming(queue: _Queue, quiet_s: float) -> bool:
    """Is an event queued, or does one arrive within `quiet_s`? Looks once more after the
    event loop has run what is ready (the consumer hands over a fetch message by message)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + quiet_s
    await asyncio.sleep(0)
    while queue.empty():
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(remaining, 0.001))
    return True
