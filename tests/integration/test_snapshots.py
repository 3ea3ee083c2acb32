"""A search reads in several statements and on two connections: all of them see one
snapshot, so a version committed meanwhile shows in none of them (real Postgres)."""

from __future__ import annotations

from ingest_worker import database
from query_api import snapshots


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
