"""A real Postgres+pgvector (embedded, one per test session) and a fresh, migrated database
per test, cloned from a template in ~0.1 s."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from ingest_worker import database, migrations

TEMPLATE = "freshindex_template"
_numbers = itertools.count()


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The server's maintenance database; the template is migrated once."""
    url = database.start_embedded(Path(tmp_path_factory.mktemp("embedded")))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    with database.connect(make_conninfo(url, dbname=TEMPLATE)) as conn:
        migrations.apply(conn)
    return url


@contextmanager
def _database(pg_url: str, prefix: str, template: str | None) -> Iterator[str]:
    name = f"{prefix}_{next(_numbers)}"
    clause = f" TEMPLATE {template}" if template else ""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}{clause}")
    yield make_conninfo(pg_url, dbname=name)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def db_url(pg_url: str) -> Iterator[str]:
    with _database(pg_url, "test", TEMPLATE) as url:
        yield url


@pytest.fixture
def empty_db_url(pg_url: str) -> Iterator[str]:
    """A database with no migrations applied."""
    with _database(pg_url, "empty", None) as url:
        yield url
