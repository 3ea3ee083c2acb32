"""Plain numbered SQL migrations, applied once in order, each in its own transaction.

Applied files are recorded with a SHA-256 checksum; an applied file that was edited since is
refused, because the database would no longer match what the file says.

The files ship inside the package (`ingest_worker/sql_migrations`, package data read with
importlib.resources, so that an installed wheel can migrate); in the repository that folder is
a link to the top-level `migrations/`, where they are written and reviewed.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import psycopg

from ingest_worker.errors import ConfigurationError

log = logging.getLogger(__name__)

MIGRATIONS_DIR: Traversable = resources.files("ingest_worker") / "sql_migrations"
_FILENAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 0x66726573  # advisory lock: one migrator at a time across processes


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Traversable = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in order; refuses stray or duplicate numbers."""
    migrations: dict[int, Migration] = {}
    files = (p for p in directory.iterdir() if p.name.endswith(".sql"))
    for path in sorted(files, key=lambda p: p.name):
        match = _FILENAME.match(path.name)
        if not match:
            raise ConfigurationError(f"{path} is not named NNNN_name.sql; rename it")
        version = int(match.group(1))
        if version in migrations:
            raise ConfigurationError(f"two migrations are numbered {version:04d}; renumber one")
        migrations[version] = Migration(version, path.name, path.read_text(encoding="utf-8"))
    return [migrations[v] for v in sorted(migrations)]


def pending(
    conn: psycopg.Connection[Any], directory: Traversable = MIGRATIONS_DIR
) -> list[Migration]:
    """Migrations not yet applied; raises if an applied one was edited or is missing."""
    applied = _applied(conn)
    available = discover(directory)
    by_version = {m.version: m for m in available}
    for version, (name, checksum) in applied.items():
        known = by_version.get(version)
        if known is None:
            raise ConfigurationError(
                f"the database has migration {name}, which this freshindex does not know; "
                "upgrade freshindex"
            )
        if known.checksum != checksum:
            raise ConfigurationError(
                f"migration {name} was edited after it was applied; restore the original "
                "file and put the change in a new numbered migration"
            )
    return [m for m in available if m.version not in applied]


def apply(
    conn: psycopg.Connection[Any], directory: Traversable = MIGRATIONS_DIR
) -> list[Migration]:
    """Apply pending migrations; returns what was applied. Safe to run concurrently."""
    done: list[Migration] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        _ensure_table(conn)
        for migration in pending(conn, directory):
            log.info("applying migration %s", migration.name)
            with conn.transaction():
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            done.append(migration)
    return done


def _ensure_table(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               version    integer     PRIMARY KEY,
               name       text        NOT NULL,
               checksum   text        NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )


def _applied(conn: psycopg.Connection[Any]) -> dict[int, tuple[str, str]]:
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return {}
    rows = conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
    return {int(v): (str(n), str(c)) for v, n, c in rows}
