from __future__ import annotations

from pathlib import Path

import pytest

from ingest_worker import database, migrations
from ingest_worker.errors import ConfigurationError


def copy_migrations(target: Path) -> Path:
    target.mkdir()
    for migration in migrations.discover():
        (target / migration.name).write_text(migration.sql)
    return target


def test_migrations_apply_once_in_order(empty_db_url: str, tmp_path: Path) -> None:
    folder = copy_migrations(tmp_path / "m")
    (folder / "0099_extra.sql").write_text("CREATE TABLE extra (id int);")
    with database.connect(empty_db_url) as conn:
        assert [m.name for m in migrations.apply(conn, folder)][-1] == "0099_extra.sql"
        assert migrations.apply(conn, folder) == []
        assert migrations.pending(conn, folder) == []
        rows = conn.execute("SELECT version, checksum FROM schema_migrations ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == [m.version for m in migrations.discover()] + [99]


def test_an_edited_applied_migration_is_refused(empty_db_url: str, tmp_path: Path) -> None:
    folder = copy_migrations(tmp_path / "m")
    with database.connect(empty_db_url) as conn:
        migrations.apply(conn, folder)
        first = sorted(folder.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited\n")
        with pytest.raises(ConfigurationError, match="was edited after it was applied"):
            migrations.apply(conn, folder)


def test_a_failing_migration_leaves_nothing_behind(empty_db_url: str, tmp_path: Path) -> None:
    folder = copy_migrations(tmp_path / "m")
    (folder / "0099_broken.sql").write_text("CREATE TABLE half (id int); SELECT nonsense;")
    with database.connect(empty_db_url) as conn:
        with pytest.raises(Exception, match="nonsense"):
            migrations.apply(conn, folder)
        assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)
        assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,)


def test_badly_named_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "init.sql").write_text("SELECT 1")
    with pytest.raises(ConfigurationError, match=r"NNNN_name\.sql"):
        migrations.discover(tmp_path)
