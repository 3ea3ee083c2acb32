from __future__ import annotations

import hashlib

from ingest_worker.chunking import Chunk
from ingest_worker.diffing import StoredChunk, plan
from ingest_worker.events import DocumentEvent, Op
from ingest_worker.pipeline import coalesce


def chunks(*texts: str) -> list[Chunk]:
    return [Chunk(i, (), t, t, hashlib.sha256(t.encode()).digest()) for i, t in enumerate(texts)]


def stored(*texts: str) -> list[StoredChunk]:
    return [StoredChunk(100 + i, i, c.hash) for i, c in enumerate(chunks(*texts))]


def test_unchanged_document_is_a_noop() -> None:
    result = plan(chunks("a", "b", "c"), stored("a", "b", "c"))
    assert result.is_noop and result.kept == 3


def test_edit_in_the_middle_replaces_one_chunk() -> None:
    result = plan(chunks("a", "B", "c"), stored("a", "b", "c"))
    assert [c.text for c in result.insert] == ["B"]
    assert result.delete == (101,)
    assert result.renumber == ()


def test_insertion_renumbers_later_chunks_without_reembedding() -> None:
    result = plan(chunks("a", "new", "b", "c"), stored("a", "b", "c"))
    assert [c.text for c in result.insert] == ["new"]
    assert result.delete == ()
    assert result.renumber == ((101, 2), (102, 3))


def test_repeated_texts_match_one_to_one() -> None:
    result = plan(chunks("x", "x", "x"), stored("x", "y"))
    assert [c.ordinal for c in result.insert] == [1, 2]
    assert result.delete == (101,)
    assert result.kept == 1


def event(doc_id: str, version: int | None) -> DocumentEvent:
    return DocumentEvent(doc_id=doc_id, op=Op.UPSERT, source="test", version=version)


def test_coalesce_keeps_the_newest_event_per_document() -> None:
    events = [event("a", 2), event("b", None), event("a", 5), event("a", 3), event("b", None)]
    latest, superseded = coalesce(events)
    assert [(e.doc_id, e.version) for e in latest] == [("a", 5), ("b", None)]
    assert latest[1] is events[4]
    assert superseded == 3
