"""Micro-batches close when the stream goes quiet: an event on an idle stream is handed over
at once, events already waiting come with it, and acks follow the caller's work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ingest_worker.sources.kafka.batching import ready_batches


@dataclass
class FakeChannel:
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)


@dataclass
class FakeStream:
    """A stream over an asyncio queue, as faust's reads its channel's queue."""

    channel: FakeChannel = field(default_factory=FakeChannel)
    enable_acks: bool = True
    acked: list[str] = field(default_factory=list)

    async def events(self) -> AsyncIterator[str]:
        while True:
            yield await self.channel.queue.get()

    async def ack(self, event: str) -> bool:
        self.acked.append(event)
        return True


async def test_an_event_on_an_idle_stream_is_a_batch_at_once() -> None:
    stream = FakeStream()
    stream.channel.queue.put_nowait("only")
    batches = ready_batches(stream, 256)
    assert await asyncio.wait_for(anext(batches), 1) == ["only"]
    assert stream.enable_acks is False  # acked by ready_batches, after the batch is handled
    assert stream.acked == []


async def test_the_events_waiting_come_as_one_batch_up_to_the_maximum() -> None:
    stream = FakeStream()
    for name in "abcde":
        stream.channel.queue.put_nowait(name)
    batches = ready_batches(stream, 3)
    assert await anext(batches) == ["a", "b", "c"]
    assert await anext(batches) == ["d", "e"]
    assert stream.acked == ["a", "b", "c"]


async def test_a_quiet_gap_lets_a_batch_wait_for_a_late_event() -> None:
    def late(stream: FakeStream) -> None:
        stream.channel.queue.put_nowait("first")
        asyncio.get_running_loop().call_later(0.05, stream.channel.queue.put_nowait, "late")

    waiting = FakeStream()
    late(waiting)
    assert await asyncio.wait_for(anext(ready_batches(waiting, 256, quiet_s=0.5)), 5) == [
        "first",
        "late",
    ]
    eager = FakeStream()
    late(eager)
    eager_batches = ready_batches(eager, 256, quiet_s=0)
    assert await anext(eager_batches) == ["first"]
    assert await asyncio.wait_for(anext(eager_batches), 5) == ["late"]
