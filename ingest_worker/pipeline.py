"""Events → committed document versions: the data flow of DESIGN.md in one place.

For a batch of events: drop the ones a later event in the batch supersedes; read the stored
versions and chunk hashes; parse and chunk what changed; embed only chunk texts this model has
never seen (one batched call for the whole batch, outside any transaction); then commit each
document version in its own short transaction.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from ingest_worker import delete_guard, embedding_cache, embedding_claims, metrics
from ingest_worker.chunking import split
from ingest_worker.embedding import Embedder, Vector
from ingest_worker.errors import ConfigurationError, EmbeddingFailed, PoisonInput
from ingest_worker.events import DocumentEvent, Op, Outcome, SourcePosition
from ingest_worker.parsing import parse
from ingest_worker.positions import Watermarks
from ingest_worker.store import (
    DocKey,
    DocumentChange,
    MissingVectors,
    ModelSwitched,
    Store,
    StoredDocument,
)

log = logging.getLogger(__name__)


@dataclass
class BatchReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    chunks_embedded: int = 0
    dead_letters: list[tuple[DocumentEvent, PoisonInput]] = field(default_factory=list)

    def add(self, other: BatchReport) -> None:
        self.outcomes.update(other.outcomes)
        self.chunks_embedded += other.chunks_embedded
        self.dead_letters += other.dead_letters


class EventSink(Protocol):
    """Where a source sends its events: the pipeline itself, or Kafka (`KafkaSink`)."""

    on_committed: Callable[[DocumentEvent, Outcome], None] | None

    def process(self, events: Sequence[DocumentEvent]) -> BatchReport: ...

    def live_documents(self, source: str) -> dict[str, str | None]:
        """doc_id → fingerprint of the documents of `source` in the index."""
        ...

    def record_dead_letter(self, event: DocumentEvent, error: Exception) -> None: ...

    def guard_deletes(self, source: str, deletes: int, documents: int) -> bool:
        """May `deletes` of the `documents` of `source` go ahead (see `delete_guard`)?"""
        ...

    def deletes_confirmed(self, source: str) -> bool:
        """Has an operator confirmed the held deletes of `source`?"""
        ...

    def reconnect(self) -> None:
        """Replace a broken database connection (raises while the database is away)."""
        ...


@dataclass
class Pipeline:
    store: Store
    embedder: Embedder
    max_file_bytes: int = 20 * 1024 * 1024
    chunk_max_tokens: int | None = None
    on_committed: Callable[[DocumentEvent, Outcome], None] | None = None
    load_model: Callable[[str], Embedder] | None = None  # to follow `freshindex reindex`
    delete_threshold: delete_guard.Threshold = field(default_factory=delete_guard.Threshold)
    claim_lease_s: float = 60.0  # how long other workers wait for a text this one embeds
    claim_owner: str = field(default_factory=lambda: uuid.uuid4().hex)

    def process(self, events: Sequence[DocumentEvent]) -> BatchReport:
        try:
            return self._process(events)
        except ModelSwitched as e:  # a reindex finished: embed with the index's new model
            if self.load_model is None:
                raise ConfigurationError(
                    f"the index switched to model {e.model}; restart this worker"
                ) from e
            log.info("the index switched to model %s; loading it", e.model)
            self.embedder = self.load_model(e.model)
            self.store.model = self.embedder.model_name
            return self._process(events)  # what was committed before is now stale: harmless

    def _process(self, events: Sequence[DocumentEvent]) -> BatchReport:
        report = BatchReport()
        groups = coalesce(events)
        watermarks = Watermarks(events)
        if superseded := len(events) - len(groups):
            self.store.record_stale(superseded)
            report.outcomes[Outcome.STALE.value] += superseded
            for winner, covered in groups:
                for event in covered:
                    if event is not winner:
                        _count(event, Outcome.STALE)
        states = self.store.load_states((e.tenant, e.doc_id) for e, _ in groups)
        changes: list[tuple[DocumentChange, list[DocumentEvent]]] = []
        for event, covered in groups:
            try:
                changes.append((self._prepare(event, states), covered))
            except PoisonInput as e:
                self.store.record_dead_letter(event, e, watermarks.done(covered))
                report.dead_letters.append((event, e))
                self._report(report, event, Outcome.DEAD_LETTER)
        vectors, embedded_by, failed = self._vectors_for([c for c, _ in changes], states)
        report.chunks_embedded = len(embedded_by)
        for change, covered in changes:
            if errors := [failed[c.hash] for c in change.chunks or () if c.hash in failed]:
                error = EmbeddingFailed(f"the model failed on this document's text: {errors[0]!r}")
                self.store.record_dead_letter(change.event, error, watermarks.done(covered))
                report.dead_letters.append((change.event, error))
                self._report(report, change.event, Outcome.DEAD_LETTER)
                continue
            outcome = self._commit(change, vectors, embedded_by, watermarks.done(covered))
            self._report(report, change.event, outcome)
        return report

    def live_documents(self, source: str) -> dict[str, str | None]:
        return self.store.live_documents(source)

    def record_dead_letter(self, event: DocumentEvent, error: Exception) -> None:
        self.store.record_dead_letter(event, error)

    def guard_deletes(self, source: str, deletes: int, documents: int) -> bool:
        return delete_guard.check(
            self.store.conn, self.delete_threshold, source, deletes, documents
        )

    def deletes_confirmed(self, source: str) -> bool:
        return delete_guard.confirmed(self.store.conn, source)

    def reconnect(self) -> None:
        self.store.reconnect()

    def _report(self, report: BatchReport, event: DocumentEvent, outcome: Outcome) -> None:
        report.outcomes[outcome.value] += 1
        _count(event, outcome)
        if self.on_committed:
            self.on_committed(event, outcome)

    def _prepare(
        self, event: DocumentEvent, states: dict[DocKey, StoredDocument]
    ) -> DocumentChange:
        """Parse and chunk an upsert, unless its content is what is stored already."""
        if event.poison is not None:
            raise event.poison
        if event.op is Op.DELETE:
            return DocumentChange(event)
        content = event.content or b""
        content_hash = hashlib.sha256(content).digest()
        stored = states.get((event.tenant, event.doc_id))
        if stored is not None and not stored.deleted and stored.content_hash == content_hash:
            return DocumentChange(event, content_hash=content_hash)
        parsed = parse(
            content,
            content_type=event.content_type,
            filename=event.filename,
            max_bytes=self.max_file_bytes,
        )
        max_tokens = min(
            self.chunk_max_tokens or self.embedder.max_tokens, self.embedder.max_tokens
        )
        chunks = split(parsed.blocks, self.embedder.count_tokens, max_tokens=max_tokens)
        return DocumentChange(event, content_hash, parsed.title, chunks)

    def _embed(self, texts: list[str]) -> list[Vector]:
        metrics.EMBED_BATCH_SIZE.observe(len(texts))
        with metrics.EMBED_SECONDS.time():
            vectors = self.embedder.embed(texts)
        metrics.CHUNKS_EMBEDDED.inc(len(texts))
        return vectors

    def _embed_splitting(
        self, texts: dict[bytes, str]
    ) -> tuple[dict[bytes, Vector], dict[bytes, Exception]]:
        """Embed in one call; if the model fails (out of memory, a text it chokes on), embed
        each half on its own, down to single texts: only a text that fails alone is lost."""
        try:
            return dict(zip(texts, self._embed(list(texts.values())), strict=True)), {}
        except Exception as e:  # torch raises RuntimeError subclasses, MemoryError, ...
            if len(texts) == 1:
                log.warning("the model failed on a chunk even alone: %r", e)
                return {}, {next(iter(texts)): e}
            log.warning("the model failed on %d chunks (%r); splitting the batch", len(texts), e)
            items = list(texts.items())
            half = len(items) // 2
            first, first_failed = self._embed_splitting(dict(items[:half]))
            second, second_failed = self._embed_splitting(dict(items[half:]))
            return {**first, **second}, {**first_failed, **second_failed}

    def _vectors_for(
        self, changes: Sequence[DocumentChange], states: dict[DocKey, StoredDocument]
    ) -> tuple[dict[bytes, Vector], dict[bytes, DocKey], dict[bytes, Exception]]:
        """Vectors for every chunk not already stored with its document: from the cache, or
        embedded now in one batched call. Also: which document each embedded hash was for,
        and the hashes the model failed on."""
        texts: dict[bytes, str] = {}
        owner: dict[bytes, DocKey] = {}
        for change in changes:
            key = (change.event.tenant, change.event.doc_id)
            stored = states.get(key)
            have = stored.chunk_hashes if stored is not None else frozenset()
            for chunk in change.chunks or ():
                if chunk.hash not in have and chunk.hash not in texts:
                    texts[chunk.hash] = chunk.embed_text
                    owner[chunk.hash] = key
        vectors = embedding_cache.lookup(self.store.conn, self.store.model, texts)
        if to_embed := {h: t for h, t in texts.items() if h not in vectors}:
            fresh, failed, shared = embedding_claims.embed_once(
                self.store.conn,
                self.store.model,
                to_embed,
                self._embed_splitting,
                self.claim_owner,
                self.claim_lease_s,
            )
            vectors.update(fresh | shared)
            return vectors, {h: owner[h] for h in fresh}, failed
        return vectors, {}, {}

    def _commit(
        self,
        change: DocumentChange,
        vectors: dict[bytes, Vector],
        embedded_by: dict[bytes, DocKey],
        positions: tuple[SourcePosition, ...],
    ) -> Outcome:
        key = (change.event.tenant, change.event.doc_id)
        embedded = sum(1 for c in change.chunks or () if embedded_by.get(c.hash) == key)
        change = DocumentChange(
            change.event, change.content_hash, change.title, change.chunks, embedded
        )
        metrics.CHUNKS_REUSED.inc(max(0, len(change.chunks or ()) - embedded))
        try:
            return self.store.apply(change, vectors, positions)
        except MissingVectors as e:  # another writer changed this document since we read it
            log.info("%s changed concurrently; embedding %d more chunks", key, len(e.hashes))
            texts = {c.hash: c.embed_text for c in change.chunks or () if c.hash in e.hashes}
            fresh = dict(zip(texts, self._embed(list(texts.values())), strict=True))
            embedding_cache.keep(self.store.conn, fresh, self.store.model)
            return self.store.apply(change, {**vectors, **fresh}, positions)


def _count(event: DocumentEvent, outcome: Outcome) -> None:
    """Metrics and one structured log line per handled event."""
    position = event.position
    log.log(
        logging.DEBUG if outcome is Outcome.STALE else logging.INFO,
        "%s %s v%s: %s",
        event.op.value,
        event.doc_id,
        event.version,
        outcome.value,
        extra={
            "doc_id": event.doc_id,
            "version": event.version,
            "source": event.source,
            "tenant": event.tenant,
            "outcome": outcome.value,
            "partition": position.partition if position else None,
            "position": position.position if position else None,
        },
    )
    source = metrics.source_label(event.source)
    metrics.EVENTS.labels(source, event.op.value, outcome.value).inc()
    if event.event_time is not None and outcome in (Outcome.APPLIED, Outcome.UNCHANGED):
        age = (datetime.now(UTC) - event.event_time).total_seconds()
        metrics.FRESHNESS_SECONDS.labels(source).observe(max(0.0, age))


def coalesce(events: Sequence[DocumentEvent]) -> list[tuple[DocumentEvent, list[DocumentEvent]]]:
    """Per document, the event that wins and the events it covers (itself included).

    The winner has the highest explicit version; among equal or absent versions, the last.
    Poison events stand alone: they are dead-lettered one by one.
    """
    groups: dict[object, tuple[DocumentEvent, list[DocumentEvent]]] = {}
    for index, event in enumerate(events):
        key: object = index if event.poison else (event.tenant, event.doc_id)
        current = groups.get(key)
        if current is None:
            groups[key] = (event, [event])
        else:
            current[1].append(event)
            if _order(event) >= _order(current[0]):
                groups[key] = (event, current[1])
    return list(groups.values())


def _order(event: DocumentEvent) -> float:
    return float("inf") if event.version is None else float(event.version)
