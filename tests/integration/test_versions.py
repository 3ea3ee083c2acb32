"""The commit protocol's invariants, through the real pipeline, model and Postgres."""

from __future__ import annotations

import psycopg

from ingest_worker.events import DocumentEvent, Op
from ingest_worker.pipeline import Pipeline
from ingest_worker.store import Store
from tests.integration.helpers import upsert


def delete(doc_id: str, version: int | None) -> DocumentEvent:
    return DocumentEvent(doc_id=doc_id, op=Op.DELETE, source="test", version=version)


def indexed(store: Store, doc_id: str) -> tuple[int, bool, list[str]]:
    row = store.conn.execute(
        "SELECT version, deleted FROM documents WHERE doc_id = %s", (doc_id,)
    ).fetchone()
    assert row is not None
    texts = [
        r[0]
        for r in store.conn.execute(
            "SELECT text FROM chunks WHERE doc_id = %s ORDER BY ordinal", (doc_id,)
        )
    ]
    return row[0], row[1], texts


def counter(store: Store, name: str) -> int:
    row = store.conn.execute("SELECT value FROM counters WHERE name = %s", (name,)).fetchone()
    return int(row[0]) if row else 0


def test_an_older_version_never_overwrites_a_newer_one(pipeline: Pipeline, store: Store) -> None:
    pipeline.process([upsert("a", "version five about apples", 5)])
    report = pipeline.process([upsert("a", "version three about pears", 3)])
    assert report.outcomes["stale"] == 1
    assert indexed(store, "a") == (5, False, ["version five about apples"])
    report = pipeline.process([upsert("a", "a duplicate delivery of five", 5)])
    assert report.outcomes["stale"] == 1
    assert indexed(store, "a")[2] == ["version five about apples"]
    assert counter(store, "events_stale_total") == 2


def test_a_delete_is_not_undone_by_a_late_older_upsert(pipeline: Pipeline, store: Store) -> None:
    pipeline.process([upsert("b", "first about boats", 1)])
    pipeline.process([delete("b", 3)])
    assert indexed(store, "b") == (3, True, [])
    pipeline.process([upsert("b", "late second about boats", 2)])
    assert indexed(store, "b") == (3, True, [])
    pipeline.process([upsert("b", "fourth brings it back", 4)])
    assert indexed(store, "b") == (4, False, ["fourth brings it back"])


def test_a_delete_for_an_unknown_document_leaves_a_tombstone(
    pipeline: Pipeline, store: Store
) -> None:
    pipeline.process([delete("c", 7)])
    pipeline.process([upsert("c", "reordered older upsert", 6)])
    assert indexed(store, "c") == (7, True, [])


def test_one_batch_with_reordered_versions_keeps_the_newest(
    pipeline: Pipeline, store: Store
) -> None:
    report = pipeline.process(
        [upsert("d", "two", 2), upsert("d", "nine", 9), upsert("d", "four", 4)]
    )
    assert indexed(store, "d") == (9, False, ["nine"])
    assert report.outcomes == {"stale": 2, "applied": 1}


def test_a_chunk_text_is_embedded_once_across_documents_and_versions(
    pipeline: Pipeline, store: Store
) -> None:
    shared = "A shared paragraph that appears in several documents about licensing terms."
    pipeline.process([upsert("x", shared, 1), upsert("y", shared, 1)])
    assert counter(store, "chunks_embedded_total") == 1
    pipeline.process([delete("x", 2), upsert("y", "something else entirely", 2)])
    pipeline.process([upsert("z", shared, 1)])  # the text is gone from chunks, not the cache
    assert counter(store, "chunks_embedded_total") == 2
    assert indexed(store, "z")[2] == [shared]


def test_each_version_commits_atomically_with_notify(pipeline: Pipeline, store: Store) -> None:
    listener = psycopg.connect(store.conn.info.dsn, autocommit=True)
    listener.execute("LISTEN freshindex_changes")
    pipeline.process([upsert("e", "# E\n\none\n\ntwo paragraphs here", 1)])
    notes = list(listener.notifies(timeout=5, stop_after=1))
    assert '"doc_id": "e"' in notes[0].payload and '"version": 1' in notes[0].payload
    listener.close()
