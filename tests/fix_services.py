"""Running parts: the store and pipeline on a test database, a folder worker in a thread,
and the HTTP API served by uvicorn on a free loopback port."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from ingest_worker import database, reindex
from ingest_worker.embedding import Embedder
from ingest_worker.pipeline import Pipeline
from ingest_worker.sources.folder.paths import make_roots
from ingest_worker.sources.folder.watcher import FolderWorker
from ingest_worker.store import Store
from query_api.app import create_app
from query_api.lag import LatestOffsets

# Every wait gets this many times its nominal timeout. The timeouts are written for an idle
# machine; on a busy 2-core one (CI beside other work) a process's start-up, which loads the
# model (~30 s idle), takes several times longer. A condition that holds returns at once.
PATIENCE = float(os.environ.get("FRESHINDEX_TEST_PATIENCE", "3"))


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    """Poll until `predicate()` is truthy; fail the test with `what` after PATIENCE times
    `timeout` seconds."""
    deadline = time.monotonic() + timeout * PATIENCE
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(
                f"timed out after {timeout * PATIENCE:.0f}s waiting for {what or predicate}"
            )
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def store(db_url: str, embedder: Embedder) -> Iterator[Store]:
    conn = database.connect(db_url)
    store = Store(conn, embedder.model_name)
    reindex.activate(conn, store.model, embedder.dimensions)
    yield store
    conn.close()


@pytest.fixture
def pipeline(store: Store, embedder: Embedder) -> Pipeline:
    return Pipeline(store, embedder)


@dataclass
class RunningWorker:
    root: Path
    worker: FolderWorker
    stop: threading.Event
    thread: threading.Thread
    errors: list[BaseException] = field(default_factory=list)

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the folder worker did not stop"
        assert not self.errors, self.errors


def start_folder_worker(
    root: Path, pipeline: Pipeline, debounce_s: float = 0.15, rescan_interval_s: float = 3600
) -> RunningWorker:
    worker = FolderWorker(
        make_roots([root]), pipeline, debounce_s=debounce_s, rescan_interval_s=rescan_interval_s
    )
    stop = threading.Event()
    running = RunningWorker(root, worker, stop, threading.Thread())

    def run() -> None:
        try:
            worker.run(stop)
        except BaseException as e:
            running.errors.append(e)
            raise

    running.thread = threading.Thread(target=run, name="folder-worker", daemon=True)
    running.thread.start()
    return running


@pytest.fixture
def folder_worker(tmp_path: Path, pipeline: Pipeline) -> Iterator[RunningWorker]:
    root = tmp_path / "docs"
    root.mkdir()
    running = start_folder_worker(root, pipeline)
    yield running
    running.halt()


@contextmanager
def serve_api(
    db_url: str,
    embedder: Embedder,
    latest_offsets: LatestOffsets | None = None,
    load_model: Callable[[str], Embedder] | None = None,
    require_keys: bool = False,
    read_database_url: str | None = None,
) -> Iterator[httpx.Client]:
    """The real app on a real socket; yields a client with its base URL."""
    port = free_port()
    app = create_app(
        db_url,
        lambda: embedder,
        latest_offsets,
        load_model,
        require_keys=require_keys,
        read_database_url=read_database_url,
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    wait_until(lambda: server.started, 30, "the API to start")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        assert not thread.is_alive(), "the API did not stop"


@pytest.fixture
def api(db_url: str, embedder: Embedder) -> Iterator[httpx.Client]:
    with serve_api(db_url, embedder) as client:
        yield client
