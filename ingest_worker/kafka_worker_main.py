"""Running a Kafka worker process: database, model, pipeline, dead-letter topic, faust."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Mapping

import faust

from ingest_worker import runtime
from ingest_worker.database import connect
from ingest_worker.events import DocumentEvent
from ingest_worker.settings import Settings
from ingest_worker.sources.kafka import events as kafka_events
from ingest_worker.sources.kafka.client import Publisher, ensure_topic
from ingest_worker.sources.kafka.worker import build_app
from ingest_worker.store import start_positions

log = logging.getLogger(__name__)


def run(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT; faust's worker owns the event loop and the signals."""
    # Until faust installs its handlers, SIGTERM means "stop starting": exit cleanly (and
    # release the embedded Postgres) rather than die by the signal while the model loads.
    signal.signal(signal.SIGTERM, _stop_starting)
    url = runtime.prepare_database(settings)
    ensure_topic(settings, settings.kafka_topic)
    ensure_topic(settings, settings.dlq_topic)
    # faust elects the group's leader through this topic and only warns when it is missing.
    ensure_topic(settings, f"{settings.kafka_group_id}-__assignor-__leader", partitions=1)
    embedder = runtime.load_embedder(settings, url)
    pipeline = runtime.build_pipeline(settings, url, embedder)
    dlq = Publisher(settings, create_topic=False)

    def resume_positions(topic: str, log_starts: Mapping[int, int]) -> Mapping[int, int]:
        with connect(url) as conn:  # its own connection: called from faust's thread
            return start_positions(conn, kafka_events.source_name(topic), log_starts)

    def dead_letter(event: DocumentEvent, key: bytes | None, value: bytes | None) -> None:
        reason = str(event.poison) if event.poison else "see the dead_letters table"
        dlq.send_raw(key, value, topic=settings.dlq_topic, headers=[("reason", reason.encode())])

    app = build_app(settings, pipeline, resume_positions, dead_letter)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    finally:
        dlq.close()


def _stop_starting(signum: int, _: object) -> None:
    log.info("signal %d while starting: exiting", signum)
    sys.exit(0)
