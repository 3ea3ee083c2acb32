"""The API reads from a real streaming replica (made with pg_basebackup from the embedded
Postgres binaries) while the pipeline writes to the primary. The test holds the replica's
replay (pg_wal_replay_pause) so that it is behind for as long as it needs: read-your-writes
still holds, because the search waits for the replica to replay past the awaited commit."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import psycopg
import pytest

from ingest_worker import database, migrations, reindex
from ingest_worker.embedding import Embedder
from ingest_worker.pipeline import Pipeline
from ingest_worker.store import Store
from tests.fix_db import private_data_dir
from tests.fix_services import serve_api, wait_until
from tests.integration.helpers import upsert


@dataclass
class Replicated:
    primary_url: str
    replica_url: str


@pytest.fixture
def replicated() -> Iterator[Replicated]:
    primary_dir = private_data_dir("freshindex-primary-")
    primary_url = database.start_embedded(primary_dir)
    server = database.embedded_server(primary_dir, start=False)
    user = server.system_user  # pgserver runs postgres as its own user when we are root
    replica_root = private_data_dir("freshindex-replica-")
    if user:
        shutil.chown(replica_root, user)
    pgdata = replica_root / "pgdata"

    def run(command: str, *args: str, check: bool = True) -> None:
        subprocess.run([str(server.bin_path / command), *args], check=check, user=user,
                       capture_output=True, timeout=120)  # fmt: skip

    primary_socket = parse_qs(urlparse(primary_url).query)["host"][0]
    run("pg_basebackup", "-h", primary_socket, "-U", "postgres", "-D", str(pgdata), "-R",
        "-X", "stream", "--checkpoint=fast")  # fmt: skip
    for copied in pgdata.glob(".s.PGSQL.*"):  # the primary's socket lock, copied along
        copied.unlink()
    with (pgdata / "postgresql.auto.conf").open("a") as conf:
        conf.write("hot_standby = on\n")
    run("pg_ctl", "-w", "-D", str(pgdata), "-l", str(replica_root / "replica.log"),
        "-o", f'-h "" -k {pgdata}', "start")  # fmt: skip
    try:
        yield Replicated(primary_url, f"postgresql://postgres:@/postgres?host={pgdata}")
    finally:
        run("pg_ctl", "-w", "-D", str(pgdata), "-m", "fast", "stop", check=False)
        database.stop_embedded(primary_dir)
        shutil.rmtree(replica_root, ignore_errors=True)
        shutil.rmtree(primary_dir, ignore_errors=True)


def test_read_your_writes_holds_on_a_lagging_replica(
    replicated: Replicated, embedder: Embedder
) -> None:
    with database.connect(replicated.primary_url) as conn:
        migrations.apply(conn)
    primary = Store(database.connect(replicated.primary_url), embedder.model_name)
    reindex.activate(primary.conn, primary.model, embedder.dimensions)
    pipeline = Pipeline(primary, embedder)
    with psycopg.connect(replicated.replica_url, autocommit=True) as replica:
        wait_until(lambda: _replayed_schema(replica), 30, "the replica to replay the schema")
        assert replica.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)

    with (
        serve_api(
            replicated.primary_url, embedder, read_database_url=replicated.replica_url
        ) as api,
        psycopg.connect(replicated.replica_url, autocommit=True) as replica,
    ):
        for version in (1, 2, 3):
            replica.execute("SELECT pg_wal_replay_pause()")
            wait_until(lambda: _replay_state(replica) == "paused", 30, "the replay to pause")
            pipeline.process(
                [upsert("memo.md", f"Memo version {version}: lunch moves to noon.", version)]
            )
            unwaited = api.post("/v1/search", json={"query": "when is lunch"}).json()
            # The replica really is behind: it shows the version before.
            assert [h["version"] for h in unwaited["hits"]][:1] == (
                [version - 1] if version > 1 else []
            )
            awaited = [{"doc_id": "memo.md", "version": version}]
            short = {"query": "lunch", "wait_for": awaited, "wait_timeout_ms": 300}
            answer = api.post("/v1/search", json=short).json()
            assert answer["fresh"] is False  # the primary has it, the replica not yet
            assert answer["missing"][0]["doc_id"] == "memo.md"

            long = {"query": "when is lunch", "wait_for": awaited, "wait_timeout_ms": 10_000}
            with ThreadPoolExecutor(1) as pool:
                waiting = pool.submit(api.post, "/v1/search", json=long)
                replica.execute("SELECT pg_wal_replay_resume()")
                answer = waiting.result(timeout=60).json()
            assert answer["fresh"] is True and answer["missing"] == []
            assert answer["hits"][0]["version"] == version  # found on the first call
    primary.conn.close()


def _replay_state(replica: psycopg.Connection[tuple[object, ...]]) -> object:
    row = replica.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()
    return row[0] if row else None


def _replayed_schema(replica: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = replica.execute("SELECT to_regclass('active_model') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return False
    return replica.execute("SELECT count(*) FROM active_model").fetchone() == (1,)
