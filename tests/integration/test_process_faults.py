"""Real processes, real faults: Postgres stopped and restarted under a folder worker, a Kafka
worker and the API; a folder worker killed with SIGKILL again and again. Nothing is lost,
nothing stale, and nobody has to restart anything."""

from __future__ import annotations

import random
import shutil
import signal
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import psycopg
import pytest

from ingest_worker import database, migrations
from ingest_worker.sources.kafka.client import end_offsets, ensure_topic
from kafka_dev.broker import Broker
from query_api.bm25 import Bm25
from query_api.state import ApiState
from tests.fix_db import private_data_dir
from tests.fix_kafka import KafkaSetup
from tests.fix_services import free_port, wait_until
from tests.integration.event_script import (
    applied_everything,
    final_state,
    indexed_state,
    publish,
    publish_in_background,
    script,
)
from tests.integration.test_model_check import CrashPlan, FakeEmbedder


@pytest.fixture
def own_postgres() -> Iterator[tuple[Path, str]]:
    """A server of this test's own, so that it can be stopped."""
    data_dir = private_data_dir("freshindex-outage-pg-")
    url = database.start_embedded(data_dir)
    yield data_dir, url
    database.stop_embedded(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)


def test_after_a_database_restart_no_request_is_given_a_connection_it_broke(
    own_postgres: tuple[Path, str],
) -> None:
    """A restart breaks every idle pooled connection, and each would fail the request that
    takes it next (a 503). Once the API's listener is back, they have been replaced."""
    data_dir, url = own_postgres
    with database.connect(url) as conn:
        migrations.apply(conn)
    state = ApiState((url, None), (lambda: FakeEmbedder(CrashPlan()), None), None, False, Bm25())
    state.open()
    try:
        state.pool.wait()
        idle = [state.pool.getconn() for _ in range(3)]
        for conn in idle:
            state.pool.putconn(conn)
        listened = state.listener.generation
        database.stop_embedded(data_dir)
        database.start_embedded(data_dir)
        wait_until(lambda: state.listener.generation > listened, 60, "the listener to be back")
        for _ in idle:
            with state.pool.connection(timeout=5) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        state.close()


def files_indexed(url: str) -> dict[str, str]:
    """doc_id → text of the live folder documents."""
    try:
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                """SELECT d.doc_id, string_agg(c.text, '\n\n' ORDER BY c.ordinal)
                   FROM documents d JOIN chunks c USING (tenant, doc_id)
                   WHERE d.source LIKE 'folder:%%' AND NOT d.deleted GROUP BY d.doc_id"""
            ).fetchall()
    except psycopg.Error:  # down, or not migrated yet
        return {}
    return dict(rows)


def files_on_disk(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in folder.iterdir()}


def write(folder: Path, rng: random.Random, count: int) -> None:
    """Create, edit and delete some files."""
    for _ in range(count):
        path = folder / f"note-{rng.randrange(40):02d}.txt"
        if path.exists() and rng.random() < 0.2:
            path.unlink()
        else:
            path.write_text(f"Note {path.stem} says {rng.random():.6f} about the harbour.")


def test_a_database_restart_is_ridden_out_by_workers_and_api(
    own_postgres: tuple[Path, str], kafka_broker: Broker, tmp_path: Path
) -> None:
    data_dir, url = own_postgres
    with KafkaSetup(kafka_broker, url, "outage-docs", "outage-group", tmp_path) as setup:
        ensure_topic(setup.settings, setup.topic)
        folder = tmp_path / "notes"
        folder.mkdir()
        rng = random.Random(5)
        write(folder, rng, 20)
        port = free_port()
        setup.spawn("worker", "folder", str(folder), name="folder")
        setup.spawn(name="kafka")
        setup.spawn("api", "--port", str(port), name="api")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as api:
            wait_until(lambda: files_indexed(url) == files_on_disk(folder), 120, "the first files")
            events = script(documents=60, events=500, seed=3)
            before, during = events[:250], events[250:]  # the second half meets the outage
            publisher = publish_in_background(kafka_broker.bootstrap, setup.topic, before, 5)
            wait_until(lambda: applied_everything(url, setup.topic, {0: 1}), 120, "Kafka progress")
            publisher.join()

            database.stop_embedded(data_dir)
            wait_until(lambda: _status(api, "/readyz") == 503, 30, "readyz to report the outage")
            down = api.post("/v1/search", json={"query": "harbour"})
            assert down.status_code == 503 and down.headers["Retry-After"]
            write(folder, rng, 15)  # the folder worker sees these while the database is away
            publisher = publish_in_background(kafka_broker.bootstrap, setup.topic, during, 2)
            for name in ("folder", "kafka"):  # each met the outage, and is waiting it out
                wait_until(partial(logged, setup, name, "retrying"), 60, f"{name} to retry")
            database.start_embedded(data_dir)

            publisher.join()
            wait_until(
                lambda: applied_everything(
                    url, setup.topic, end_offsets(setup.settings, setup.topic)
                ),
                180,
                "every Kafka event to be applied",
            )
            kafka_docs = {d: s for d, s in indexed_state(url).items() if d.startswith("doc-")}
            assert kafka_docs == final_state(events)
            wait_until(lambda: files_indexed(url) == files_on_disk(folder), 60, "the files written")
            assert _status(api, "/readyz") == 200
            assert api.post("/v1/search", json={"query": "harbour"}).status_code == 200
            assert all(p.poll() is None for p in setup.processes), "a process died"
            for process in setup.processes:
                process.send_signal(signal.SIGTERM)
                assert process.wait(60) == 0


def logged(setup: KafkaSetup, name: str, text: str) -> bool:
    return text in setup.log_text(name)


def changed_since(url: str, change: int) -> bool:
    return last_change(url) > change


def last_change(url: str) -> int:
    """The id of the newest committed change (0 before the first, or while unreachable)."""
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT coalesce(max(id), 0) FROM changes").fetchone()
    except psycopg.Error:
        return 0
    return int(row[0]) if row else 0


def test_a_folder_worker_killed_again_and_again_loses_nothing(
    db_url: str, kafka_broker: Broker, tmp_path: Path
) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    rng = random.Random(11)
    write(folder, rng, 30)
    with KafkaSetup(kafka_broker, db_url, "unused", "unused", tmp_path) as setup:
        for kill in range(6):
            before = last_change(db_url)
            worker = setup.spawn("worker", "folder", str(folder), name="folder")
            # Kill while it indexes: after it committed something (the model loads first,
            # ~30 s on a busy machine), then a random moment later, writing files meanwhile.
            wait_until(partial(changed_since, db_url, before), 180, f"progress before kill {kill}")
            for _ in range(rng.randint(0, 5)):
                write(folder, rng, rng.randint(0, 3))
                time.sleep(rng.uniform(0.05, 0.5))
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            write(folder, rng, rng.randint(3, 6))  # changes while no worker runs
        last = setup.spawn("worker", "folder", str(folder), name="folder")
        wait_until(lambda: files_indexed(db_url) == files_on_disk(folder), 120, "the final state")
        last.send_signal(signal.SIGTERM)
        assert last.wait(60) == 0, setup.log_text("folder")


def _status(api: httpx.Client, path: str) -> int:
    try:
        return api.get(path).status_code
    except httpx.HTTPError:
        return 0


def test_a_broker_restart_mid_stream_loses_nothing(db_url: str, tmp_path: Path) -> None:
    """The worker is mid-stream when the broker dies: the whole stream is published (and
    acknowledged) first, so the outage meets the worker's fetches and commits, not the
    test's producer, and the end offsets are the acks' rather than a new client's."""
    broker = Broker(tmp_path / "kafka").start()  # its own: the shared one must stay up
    setup = KafkaSetup(broker, db_url, "restart-docs", "restart-group", tmp_path)
    try:
        ensure_topic(setup.settings, setup.topic)
        worker = setup.spawn(name="kafka")
        wait_until(partial(logged, setup, "kafka", "resuming at offset"), 180, "partitions")
        events = script(documents=80, events=600, seed=13)
        ends = publish(broker.bootstrap, setup.topic, events)
        wait_until(lambda: applied_everything(db_url, setup.topic, {0: 1}), 90, "progress")
        broker.kill()  # SIGKILL: no clean shutdown of the broker either
        assert not applied_everything(db_url, setup.topic, ends), "the stream ended first"
        time.sleep(5)
        broker.start()
        wait_until(
            lambda: applied_everything(db_url, setup.topic, ends),
            180,
            "every event to be applied after the restart",
        )
        assert indexed_state(db_url) == final_state(events)
        assert worker.poll() is None, setup.log_text("kafka")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
    finally:
        setup.kill_all()
        broker.stop()
