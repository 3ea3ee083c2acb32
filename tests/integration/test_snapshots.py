"""A search reads in several statements and on two connections: all of them see one
snapshot, so a version committed meanwhile shows in none of them (real Postgres)."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from ingest_worker import database
from query_api import snapshots
from tests.fix_services import wait_until


def test_a_second_connection_reads_the_first_ones_snapshot(db_url: str) -> None:
    first, second, writer = (database.connect(db_url) for _ in range(3))
    try:
        writer.execute("CREATE TABLE IF NOT EXISTS snapshot_probe (n int)")
        writer.execute("TRUNCATE snapshot_probe")
        with snapshots.read_only(first):
            assert first.execute("SELECT count(*) FROM snapshot_probe").fetchone() == (0,)
            exported = snapshots.export(first)
            writer.execute("INSERT INTO snapshot_probe VALUES (1)")  # commits (autocommit)
            with snapshots.read_only(second, exported):
                assert second.execute("SELECT count(*) FROM snapshot_probe").fetchone() == (0,)
            assert first.execute("SELECT count(*) FROM snapshot_probe").fetchone() == (0,)
        # Outside the snapshot the committed row shows.
        assert second.execute("SELECT count(*) FROM snapshot_probe").fetchone() == (1,)
    finally:
        writer.execute("DROP TABLE IF EXISTS snapshot_probe")
        for conn in (first, second, writer):
            conn.close()


def test_sharing_a_snapshot_never_queues_behind_a_waiting_rewrite(db_url: str) -> None:
    """A table rewrite waits for the exporter's locks; a second connection that queued
    behind it while the exporter waits for that connection would hang both (a cycle through
    the client, which Postgres cannot detect). The import refuses at once instead."""
    exporter, importer, rewriter = (database.connect(db_url) for _ in range(3))
    try:
        with snapshots.read_only(exporter):
            exported = snapshots.export(exporter)
            rewrite = threading.Thread(
                target=rewriter.execute, args=("ALTER TABLE chunks ADD COLUMN probe int",)
            )
            rewrite.start()
            wait_until(lambda: _waits_for_a_lock(exporter, rewriter), 30, "the rewrite to wait")
            importer.execute("SET lock_timeout = '20s'")  # what a plain LOCK would wait
            started = time.monotonic()
            with (
                pytest.raises(psycopg.errors.LockNotAvailable),
                snapshots.read_only(importer, exported),
            ):
                pass
            assert time.monotonic() - started < 10
        rewrite.join(30)
        assert not rewrite.is_alive()  # it went ahead once the exporter was done
    finally:
        for conn in (exporter, importer, rewriter):
            conn.close()


def _waits_for_a_lock(observer: psycopg.Connection[Any], waiter: psycopg.Connection[Any]) -> bool:
    row = observer.execute(
        "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
        (waiter.info.backend_pid,),
    ).fetchone()
    return bool(row and row[0])
