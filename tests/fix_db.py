"""A real Postgres+pgvector (embedded, one per test session) and a fresh, migrated database
per test, cloned from a template in ~0.1 s."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from ingest_worker import database, migrations

TEMPLATE = "freshindex_template"
_numbers = itertools.count()


def private_data_dir(prefix: str) -> Path:
    """A folder outside pytest's temp root: the embedded Postgres runs as another user, and
    any pytest run (re)sets its temp root to mode 0700, which would cut that user off."""
    return Path(tempfile.mkdtemp(prefix=prefix))


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """The server's maintenance database; the template is migrated once."""
    data_dir = private_data_dir("freshindex-test-pg-")
    url = database.start_embedded(data_dir)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    with database.connect(make_conninfo(url, dbname=TEMPLATE)) as conn:
        migrations.apply(conn)
    yield url
    database.stop_embedded(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)


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
