"""`worker folder --publish-to-kafka`: a folder watcher that publishes instead of indexing, so
that many watchers on many machines feed one group of Kafka workers.

It reconciles against the index like a local watcher (reading the documents table), and
sends each change as a document event with two extra fields the Kafka workers store:
`origin` (the folder, so reconciliation finds its documents) and `fingerprint`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from ingest_worker import delete_guard
from ingest_worker.events import DocumentEvent, Op, Outcome
from ingest_worker.pipeline import BatchReport
from ingest_worker.sources.kafka.client import Publisher, guess_type
from ingest_worker.store import Store

log = logging.getLogger(__name__)


class KafkaSink:
    def __init__(
        self,
        publisher: Publisher,
        index: Store,
        dlq_topic: str,
        delete_threshold: delete_guard.Threshold | None = None,
    ) -> None:
        self.publisher = publisher
        self.index = index  # what the workers have indexed (and the delete guard's holds)
        self.dlq_topic = dlq_topic
        self.delete_threshold = delete_threshold or delete_guard.Threshold()
        self.on_committed: Callable[[DocumentEvent, Outcome], None] | None = None

    def process(self, events: Sequence[DocumentEvent]) -> BatchReport:
        report = BatchReport()
        for event in events:
            extra: dict[str, Any] = {"origin": event.source, "fingerprint": event.fingerprint}
            if event.op is Op.DELETE:
                self.publisher.delete(event.doc_id, tenant=event.tenant, extra=extra)
            else:
                self.publisher.upsert(
                    event.doc_id,
                    content=event.content or b"",
                    tenant=event.tenant,
                    content_type=guess_type(event.filename or event.doc_id),
                    event_time=event.event_time,
                    extra=extra,
                )
            report.outcomes["published"] += 1
            if self.on_committed:
                self.on_committed(event, Outcome.APPLIED)
        return report

    def live_documents(self, source: str) -> dict[str, str | None]:
        return self.index.live_documents(source)

    def guard_deletes(self, source: str, deletes: int, documents: int) -> bool:
        return delete_guard.check(
            self.index.conn, self.delete_threshold, source, deletes, documents
        )

    def deletes_confirmed(self, source: str) -> bool:
        return delete_guard.confirmed(self.index.conn, source)

    def reconnect(self) -> None:
        self.index.reconnect()

    def record_dead_letter(self, event: DocumentEvent, error: Exception) -> None:
        log.warning("dead letter: %s: %s", event.doc_id, error)
        self.publisher.send_raw(
            event.doc_id.encode(),
            event.content,
            topic=self.dlq_topic,
            headers=[("reason", str(error).encode())],
        )
