"""Running a Kafka worker process: database, model, pipeline, dead-letter topic, faust."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import faust

from ingest_worker import kafka_events, runtime
from ingest_worker.database import connect
from ingest_worker.events import DocumentEvent
from ingest_worker.kafka_client import Publisher, ensure_topic
from ingest_worker.kafka_worker import build_app
from ingest_worker.settings import Settings
from ingest_worker.store import applied_positions

log = logging.getLogger(__name__)


def run(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT; faust's worker owns the event loop and the signals."""
    url = runtime.prepare_database(settings)
    ensure_topic(settings, settings.kafka_topic)
    ensure_topic(settings, settings.dlq_topic)
    embedder = runtime.load_embedder(settings, url)
    pipeline = runtime.build_pipeline(settings, url, embedder)
    dlq = Publisher(settings, create_topic=False)

    def stored_positions(topic: str) -> Mapping[int, int]:
        with connect(url) as conn:  # its own connection: called from faust's thread
            return applied_positions(conn, kafka_events.source_name(topic))

    def dead_letter(event: DocumentEvent, key: bytes | None, value: bytes | None) -> None:
        reason = str(event.poison) if event.poison else "see the dead_letters table"
        dlq.send_raw(key, value, topic=settings.dlq_topic, headers=[("reason", reason.encode())])

    app = build_app(settings, pipeline, stored_positions, dead_letter)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    finally:
        dlq.close()
