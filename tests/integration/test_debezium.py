"""Database rows as documents, end to end with the real thing: a Postgres table captured by
Debezium's Postgres connector in Kafka Connect, a genuine broker, `freshindex worker kafka`
in Debezium mode, and the API. The snapshot is indexed once; inserts, updates and deletes
follow; a row deleted while the worker is down is gone after its restart."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from ingest_worker.embedding import Embedder
from ingest_worker.sources.kafka.client import ensure_topic
from kafka_dev.broker import Broker
from kafka_dev.connect import TABLE_SQL, Connect, SourcePostgres
from tests.fix_db import private_data_dir
from tests.fix_kafka import KafkaSetup
from tests.fix_services import serve_api, wait_until
from tests.integration.helpers import document, search

ROWS = [
    (1, "Leave", "Employees get thirty days of annual leave.", "hr"),
    (2, "Laptops", "Engineers choose their laptop every three years.", "it"),
    (3, "Parking", "The car park opens at seven in the morning.", "facilities"),
]
CDC_ENV = {
    "FRESHINDEX_KAFKA_FORMAT": "debezium",
    "FRESHINDEX_CDC_DOC_ID": "articles/{id}",
    "FRESHINDEX_CDC_TEXT": "{title}\n\n{body}",
    "FRESHINDEX_CDC_TITLE": "title",
    "FRESHINDEX_CDC_METADATA": "team",
}


@pytest.fixture
def source() -> Iterator[SourcePostgres]:
    data_dir = private_data_dir("freshindex-test-cdc-")
    pg = SourcePostgres(data_dir).start()
    try:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute(TABLE_SQL)
            conn.cursor().executemany("INSERT INTO articles VALUES (%s, %s, %s, %s)", ROWS)
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def cdc(
    kafka_broker: Broker,
    source: SourcePostgres,
    db_url: str,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[KafkaSetup]:
    """Connect capturing `articles` (snapshot first) into a topic the worker reads."""
    connect = Connect(tmp_path / "connect", kafka_broker.bootstrap, source, topic_prefix="cdc")
    setup = KafkaSetup(kafka_broker, db_url, connect.topic, "cdc-group", tmp_path)
    ensure_topic(setup.settings, setup.topic)  # 6 partitions, keyed by primary key
    for name, value in CDC_ENV.items():
        monkeypatch.setenv(name, value)
    try:
        connect.start()
        yield setup
    finally:
        setup.kill_all()
        connect.stop()


def sql(source: SourcePostgres, statement: str, *params: Any) -> None:
    with psycopg.connect(source.url, autocommit=True) as conn:
        conn.execute(statement, params)


def history(db_url: str, doc_id: str) -> list[tuple[str, int]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT op, version FROM changes WHERE doc_id = %s ORDER BY id", (doc_id,)
        ).fetchall()
    return [(str(op), int(version)) for op, version in rows]


def top(api: httpx.Client, query: str) -> str | None:
    hits = search(api, query, k=1)
    return hits[0]["doc_id"] if hits else None


def test_rows_follow_the_table_through_debezium(
    cdc: KafkaSetup, source: SourcePostgres, db_url: str, embedder: Embedder
) -> None:
    worker = cdc.spawn()
    with serve_api(db_url, embedder) as api:
        for row_id, *_ in ROWS:
            wait_until(lambda i=row_id: document(api, f"articles/{i}"), 240,  # type: ignore[misc]
                       f"snapshot row {row_id} indexed\n{cdc.log_text()}")  # fmt: skip
        snapshot = document(api, "articles/1")
        assert snapshot is not None and snapshot["title"] == "Leave"
        assert snapshot["metadata"] == {"team": "hr"} and snapshot["version"] > 0

        sql(source, "INSERT INTO articles VALUES (4, 'Bikes', 'Bike leasing for all.', 'hr')")
        sql(source, "UPDATE articles SET body = 'Leave now includes sabbaticals.' WHERE id = 1")
        sql(source, "DELETE FROM articles WHERE id = 2")
        wait_until(lambda: document(api, "articles/4"), 120, "the insert")
        wait_until(lambda: document(api, "articles/2") is None, 120, "the delete")
        wait_until(lambda: top(api, "sabbaticals") == "articles/1", 120, "the update")
        updated = document(api, "articles/1")
        assert updated is not None and updated["version"] > snapshot["version"]

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=120) == 0, cdc.log_text()
        sql(source, "DELETE FROM articles WHERE id = 3")
        sql(source, "UPDATE articles SET body = 'E-bike leasing too.' WHERE id = 4")
        cdc.spawn()
        wait_until(lambda: document(api, "articles/3") is None, 240, "the delete while down")
        wait_until(lambda: top(api, "e-bike leasing") == "articles/4", 120, "the update")

    # The snapshot was indexed once; every change exactly once, in LSN order.
    assert [op for op, _ in history(db_url, "articles/1")] == ["upsert", "upsert"]
    assert [op for op, _ in history(db_url, "articles/3")] == ["upsert", "delete"]
    for doc_id in ("articles/1", "articles/2", "articles/3", "articles/4"):
        versions = [v for _, v in history(db_url, doc_id)]
        assert versions == sorted(versions) and len(set(versions)) == len(versions)
