"""`freshindex worker kafka`: a faust-streaming app whose agent applies micro-batches of
document events through the pipeline.

The index does not rely on faust's offset commits (they can run ahead of processing: see
faust-streaming #527, #606). Each document's transaction records the partition's position,
and whenever faust seeks partitions "to the committed offsets" (after every rebalance), this
app's consumer seeks them to the position stored in Postgres instead. Replayed events are
harmless: their versions are not newer than what is stored. Kafka offsets are still committed
(after the database commit) so that lag tools see the group's progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import faust
import psycopg
from faust.transport import drivers
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from ingest_worker import kafka_events
from ingest_worker.errors import Retryable
from ingest_worker.events import DocumentEvent
from ingest_worker.pipeline import BatchReport, Pipeline
from ingest_worker.settings import Settings

log = logging.getLogger(__name__)

StoredPositions = Callable[[str], Mapping[int, int]]  # topic → {partition: position}


class IndexPositionsConsumer(faust_aiokafka.Consumer):
    """Seeks assigned partitions to the positions the index has durably applied."""

    stored_positions: ClassVar[StoredPositions | None] = None

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = dict(await super().seek_to_committed())
        lookup = type(self).stored_positions
        if lookup is None:
            return committed
        assignment = self.assignment()
        stored = {
            topic: await asyncio.to_thread(lookup, topic)
            for topic in {tp.topic for tp in assignment}
        }
        for tp in assignment:
            position = stored[tp.topic].get(tp.partition)
            if position is not None and committed.get(tp) != position + 1:
                log.info("%s: resuming after position %d stored in the index", tp, position)
                await self._seek(tp, position + 1)
                committed[tp] = position + 1
        return committed


class IndexPositionsTransport(faust_aiokafka.Transport):
    Consumer = IndexPositionsConsumer


drivers.TRANSPORTS.aliases["freshindex"] = f"{__name__}:IndexPositionsTransport"


DeadLetterSink = Callable[[DocumentEvent, bytes | None, bytes | None], None]


def build_app(
    settings: Settings,
    pipeline: Pipeline,
    stored_positions: StoredPositions,
    dead_letter_sink: DeadLetterSink | None = None,
) -> faust.App:
    """The faust app; `dead_letter_sink(event, key, value)` gets each poison message."""
    IndexPositionsConsumer.stored_positions = stored_positions
    app = faust.App(
        settings.kafka_group_id,
        broker=[f"freshindex://{server}" for server in settings.kafka_bootstrap_servers.split(",")],
        broker_credentials=_credentials(settings),
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=max(0.5, settings.kafka_session_timeout_s / 5),
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.kafka_partitions,
        topic_allow_declare=False,
        web_enabled=settings.worker_web_port > 0,
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        web_port=settings.worker_web_port or 6066,
        store="memory://",
        autodiscover=False,
        stream_wait_empty=False,
        broker_commit_every=1,
        broker_commit_interval=1.0,
    )
    topic = app.topic(
        settings.kafka_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.kafka_partitions,
    )
    # One thread does all blocking work (model, database), so the event loop keeps
    # heartbeating while a batch is embedded.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline")
    stopping = threading.Event()

    @app.agent(topic, name="freshindex-ingest")
    async def ingest(stream: Any) -> None:  # a faust Stream; StreamT lacks take_events
        async for batch in stream.take_events(
            settings.kafka_batch_size, within=settings.kafka_batch_wait_s
        ):
            messages = [e.message for e in batch]
            events = [
                kafka_events.decode(
                    topic=m.topic,
                    partition=m.partition,
                    offset=m.offset,
                    key=m.key,
                    value=m.value,
                    timestamp_ms=int(m.timestamp * 1000) if m.timestamp else None,
                )
                for m in messages
            ]
            # Shielded: on shutdown the batch in hand still finishes and commits (the
            # interpreter waits for the executor's thread); only retries stop.
            work = asyncio.get_running_loop().run_in_executor(
                executor, _process_until_done, pipeline, events, stopping
            )
            started = time.monotonic()
            try:
                report = await asyncio.shield(work)
            except asyncio.CancelledError:
                stopping.set()
                raise
            log.debug(
                "batch of %d events: %s, %d chunks embedded in %.2fs",
                len(events),
                dict(report.outcomes),
                report.chunks_embedded,
                time.monotonic() - started,
            )
            if dead_letter_sink and report.dead_letters:
                originals = {(m.partition, m.offset): (m.key, m.value) for m in messages}
                for event in report.dead_letters:
                    assert event.position is not None
                    dead_letter_sink(
                        event, *originals[(event.position.partition, event.position.position)]
                    )

    return app


def _process_until_done(
    pipeline: Pipeline, events: list[DocumentEvent], stopping: threading.Event
) -> BatchReport:
    """Apply the batch, retrying while the database is away: an event is never skipped.
    When the worker is stopping, give up retrying: the next worker to own the partition
    resumes from the position stored in the index."""
    delay = 0.5
    while True:
        try:
            return pipeline.process(events)
        except (Retryable, psycopg.OperationalError, psycopg.InterfaceError) as e:
            if stopping.is_set():
                raise
            log.warning("batch of %d events failed (%s); retrying in %.1fs", len(events), e, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
            with contextlib.suppress(Retryable):  # still away: the next attempt fails again
                pipeline.store.reconnect()


def _credentials(settings: Settings) -> Any:
    protocol = settings.kafka_security_protocol.upper()
    ssl_context = None
    if protocol in ("SSL", "SASL_SSL"):
        import ssl

        ssl_context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            mechanism=settings.kafka_sasl_mechanism or "PLAIN",
            ssl_context=ssl_context,
        )
    return faust.SSLCredentials(ssl_context) if ssl_context else None
