"""`freshindex worker kafka`: a faust-streaming app whose agent applies micro-batches of
document events through the pipeline.

The index does not rely on faust's offsets: faust commits what its stream has taken, not what
is applied (faust-streaming #527, #606), and during a rebalance it drops queued messages
without always seeking back. So each document's transaction records its partition's position;
whenever faust seeks partitions "to the committed offsets" (after every rebalance), this app's
consumer seeks them to the positions stored in Postgres; and a batch that skips ahead of a
stored position is held back from the gap on while the partition is re-read from it.
Replayed events are harmless: their versions are not newer than what is stored. Kafka offsets
are still committed so that lag tools see the group's progress.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import faust
from faust.transport import drivers
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from ingest_worker.events import DocumentEvent, Op
from ingest_worker.pipeline import BatchReport, Pipeline
from ingest_worker.positions import continuation
from ingest_worker.retrying import until_done
from ingest_worker.settings import Settings
from ingest_worker.sources.kafka import debezium
from ingest_worker.sources.kafka import events as kafka_events
from ingest_worker.sources.kafka.batching import ready_batches

log = logging.getLogger(__name__)

# (topic, {partition: log start offset}) → {partition: last applied position}, stored first
StartPositions = Callable[[str, Mapping[int, int]], Mapping[int, int]]


HOLD_POLL_S = 2.0  # how often a batch held by the delete guard looks for a confirmation


class IndexPositionsConsumer(faust_aiokafka.Consumer):
    """Reads the ingest topic from the positions the index has durably applied."""

    start_positions: ClassVar[StartPositions | None] = None
    topic: ClassVar[str | None] = None

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = dict(await super().seek_to_committed())
        committed.update(await self.rewind(self.assignment()))
        return committed

    async def rewind(self, partitions: Iterable[TP]) -> dict[TP, int]:
        """Seek the assigned ones among `partitions` to just after their stored positions."""
        lookup, topic = type(self).start_positions, type(self).topic
        wanted = {tp for tp in partitions if tp.topic == topic} & self.assignment()
        if lookup is None or topic is None or not wanted:
            return {}
        log_starts = await self.earliest_offsets(*wanted)
        stored = await asyncio.to_thread(
            lookup, topic, {tp.partition: log_starts[tp] for tp in wanted}
        )
        offsets = {tp: stored[tp.partition] + 1 for tp in wanted}
        for tp, offset in offsets.items():
            log.info(
                "%s: resuming at offset %d, after the position stored in the index", tp, offset
            )
            await self.seek(tp, offset)
        return offsets


class IndexPositionsTransport(faust_aiokafka.Transport):
    Consumer = IndexPositionsConsumer


drivers.TRANSPORTS.aliases["freshindex"] = f"{__name__}:IndexPositionsTransport"


# (event, why, the original key and value)
DeadLetterSink = Callable[[DocumentEvent, Exception, bytes | None, bytes | None], None]


def build_app(
    settings: Settings,
    pipeline: Pipeline,
    start_positions: StartPositions,
    dead_letter_sink: DeadLetterSink | None = None,
) -> faust.App:
    """The faust app; `dead_letter_sink(event, key, value)` gets each poison message."""
    IndexPositionsConsumer.start_positions = start_positions
    IndexPositionsConsumer.topic = settings.kafka_topic
    app = _faust_app(settings)
    topic = app.topic(
        settings.kafka_topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.kafka_partitions,
    )
    batches = _Batches(app, settings.kafka_topic, pipeline, dead_letter_sink)
    if settings.kafka_format == "debezium":
        batches.decode = debezium.decoder(
            debezium.CdcMapping(
                doc_id=settings.cdc_doc_id,
                text=settings.cdc_text,
                title=settings.cdc_title,
                metadata=tuple(c.strip() for c in settings.cdc_metadata.split(",") if c.strip()),
                tenant=settings.cdc_tenant,
            )
        )

    @app.agent(topic, name="freshindex-ingest")
    async def ingest(stream: Any) -> None:  # a faust Stream (see batching.Stream)
        async for batch in ready_batches(
            stream, settings.kafka_batch_size, settings.kafka_batch_wait_s
        ):
            await batches.handle([e.message for e in batch])

    return app


def _faust_app(settings: Settings) -> faust.App:
    return faust.App(
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
        # Keep the handlers `freshindex` configured (text or JSON) instead of faust's own.
        loghandlers=list(logging.getLogger().handlers),
        logging_config={"version": 1, "disable_existing_loggers": False},
    )


class _Batches:
    """What the agent does with each micro-batch of messages."""

    def __init__(
        self,
        app: faust.App,
        topic: str,
        pipeline: Pipeline,
        dead_letter_sink: DeadLetterSink | None,
    ) -> None:
        self.app = app
        self.topic = topic
        self.pipeline = pipeline
        self.dead_letter_sink = dead_letter_sink
        self.decode: debezium.Decoder = kafka_events.decode  # or Debezium's
        # One thread does all blocking work (model, database), so the event loop keeps
        # heartbeating while a batch is embedded.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline")
        self.stopping = threading.Event()
        # partition → (offset, when) of the last rewind
        self.rewound: dict[TP, tuple[int, float]] = {}

    async def handle(self, messages: list[Any]) -> None:
        events = [
            self.decode(
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
            self.executor, _process_until_done, self.pipeline, events, self.stopping
        )
        started = time.monotonic()
        try:
            report, gaps = await asyncio.shield(work)
        except asyncio.CancelledError:
            self.stopping.set()
            raise
        for partition, offset in gaps.items():
            await self.rewind(partition, offset)
        log.debug(
            "batch of %d events (offsets %s): %s, %d chunks embedded in %.2fs",
            len(events),
            _offset_ranges(messages),
            dict(report.outcomes),
            report.chunks_embedded,
            time.monotonic() - started,
        )
        if self.dead_letter_sink and report.dead_letters:
            originals = {(m.partition, m.offset): (m.key, m.value) for m in messages}
            for event, error in report.dead_letters:
                assert event.position is not None
                self.dead_letter_sink(
                    event, error, *originals[(event.position.partition, event.position.position)]
                )

    async def rewind(self, partition: int, offset: int) -> None:
        """Re-read a partition from a gap, once: until the seek takes effect, messages
        queued past the gap keep arriving (they are held back again, not re-sought)."""
        tp = TP(self.topic, partition)
        last = self.rewound.get(tp)
        if last is not None and last[0] == offset and time.monotonic() - last[1] < 5.0:
            return
        self.rewound[tp] = (offset, time.monotonic())
        consumer = self.app.consumer
        assert isinstance(consumer, IndexPositionsConsumer)
        await consumer.rewind([tp])


def _offset_ranges(messages: list[Any]) -> dict[int, tuple[int, int]]:
    """partition → (lowest, highest) offset in a batch, for debug logs."""
    ranges: dict[int, tuple[int, int]] = {}
    for m in messages:
        low, high = ranges.get(m.partition, (m.offset, m.offset))
        ranges[m.partition] = (min(low, m.offset), max(high, m.offset))
    return ranges


def _process_until_done(
    pipeline: Pipeline, events: list[DocumentEvent], stopping: threading.Event
) -> tuple[BatchReport, dict[int, int]]:
    """Apply the batch, retrying while the database is away: an event is never skipped.
    When the worker is stopping, give up retrying: the next worker to own the partition
    resumes from the position stored in the index. Also returns the partitions to re-read
    (partition → offset) because the batch skipped ahead of the index."""
    return until_done(
        lambda: _process_continuing(pipeline, events, stopping),
        pipeline.store.reconnect,
        stopping,
        f"batch of {len(events)} events",
    )


def _process_continuing(
    pipeline: Pipeline, events: list[DocumentEvent], stopping: threading.Event
) -> tuple[BatchReport, dict[int, int]]:
    """Apply the events that continue the stored positions; hold back those past a gap.
    A batch that would delete too many of the topic's documents waits for an operator."""
    offsets: dict[int, list[int]] = defaultdict(list)
    for event in events:
        assert event.position is not None
        offsets[event.position.partition].append(event.position.position)
    source = events[0].position.source if events and events[0].position else ""
    usable, gaps = continuation(offsets, pipeline.store.applied_positions(source))
    for partition, offset in gaps.items():
        log.info("%s partition %d: the batch skipped offsets from %d; re-reading them",
                 source, partition, offset)  # fmt: skip
    kept = [e for e in events if e.position and e.position.position <= usable[e.position.partition]]
    if not _deletes_allowed(pipeline, source, kept, stopping):
        return BatchReport(), {}  # stopping while held: the next owner reads them again
    return (pipeline.process(kept) if kept else BatchReport()), gaps


def _deletes_allowed(
    pipeline: Pipeline, source: str, events: list[DocumentEvent], stopping: threading.Event
) -> bool:
    """Wait while the batch's deletes are held by the mass-delete guard (nothing of the
    batch is applied, so its positions are not recorded); False if the worker stops first."""
    deleting = {e.doc_id for e in events if e.op is Op.DELETE}
    if len(deleting) <= pipeline.delete_threshold.minimum:  # cheap: no count needed
        return True
    live = pipeline.live_documents(source)
    deletes = len(deleting & live.keys())
    while not pipeline.guard_deletes(source, deletes, len(live)):
        if stopping.wait(HOLD_POLL_S):
            return False
    return True


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
