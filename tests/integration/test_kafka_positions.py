"""Where a Kafka worker resumes, and what it does with a batch that skipped ahead of the
index (real Postgres and model; the broker side is covered by test_kafka_faults)."""

from __future__ import annotations

import logging
import threading

import pytest

from ingest_worker.events import DocumentEvent, SourcePosition
from ingest_worker.pipeline import Pipeline
from ingest_worker.sources.kafka.resume import start_positions
from ingest_worker.sources.kafka.worker import _process_until_done
from ingest_worker.store import Store
from tests.integration.helpers import upsert

SOURCE = "kafka:docs"


def at(offset: int, doc_id: str, text: str) -> DocumentEvent:
    return upsert(doc_id, text, position=SourcePosition(SOURCE, 0, offset))


def test_a_partition_never_read_starts_before_its_log_start(store: Store) -> None:
    assert start_positions(store.conn, SOURCE, {0: 0, 1: 7}) == {0: -1, 1: 6}
    store.conn.execute(
        "UPDATE source_positions SET position = 30 WHERE source = %s AND partition = 0", (SOURCE,)
    )
    assert start_positions(store.conn, SOURCE, {0: 0, 1: 7}) == {0: 30, 1: 6}  # kept


def test_events_deleted_by_retention_before_indexing_are_reported(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    start_positions(store.conn, SOURCE, {0: 0})
    with caplog.at_level(logging.ERROR):
        assert start_positions(store.conn, SOURCE, {0: 50}) == {0: 49}
    assert "events 0..49 were deleted by Kafka retention" in caplog.text


def test_a_batch_past_a_gap_is_held_back_and_the_gap_reported(
    pipeline: Pipeline, store: Store
) -> None:
    start_positions(store.conn, SOURCE, {0: 0})
    first = [at(0, "a", "apples v1"), at(1, "b", "boats v1")]
    report, gaps = _process_until_done(pipeline, first, threading.Event())
    assert (report.outcomes["applied"], gaps) == (2, {})
    # Offsets 2..4 never reached this worker (faust dropped them in a rebalance).
    skipped_ahead = [at(5, "a", "apples v3"), at(6, "c", "cherries v1")]
    report, gaps = _process_until_done(pipeline, skipped_ahead, threading.Event())
    assert (sum(report.outcomes.values()), gaps) == (0, {0: 2})
    assert store.applied_positions(SOURCE) == {0: 1}
    re_read = [
        at(2, "a", "apples v2"),
        at(3, "d", "dates v1"),
        at(4, "b", "boats v2"),
        *skipped_ahead,
    ]
    report, gaps = _process_until_done(pipeline, re_read, threading.Event())
    assert gaps == {}
    assert store.applied_positions(SOURCE) == {0: 6}
    texts = dict(store.conn.execute("SELECT doc_id, string_agg(text, '') FROM chunks GROUP BY 1"))
    assert texts == {"a": "apples v3", "b": "boats v2", "c": "cherries v1", "d": "dates v1"}
