"""The real command line: a worker and an API in separate processes share one embedded
database, and both stop cleanly on SIGTERM (which also stops the embedded Postgres)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.fix_db import private_data_dir
from tests.fix_services import free_port, wait_until
from tests.integration.helpers import document, search, write

FRESHINDEX = str(Path(sys.executable).with_name("freshindex"))


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = private_data_dir("freshindex-test-processes-")
    yield path
    for proc in psutil.process_iter(["cmdline"]):  # never leave a server behind
        if str(path) in " ".join(proc.info["cmdline"] or []):
            proc.kill()
    shutil.rmtree(path, ignore_errors=True)


def spawn(args: list[str], cwd: Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [FRESHINDEX, *args],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def embedded_postgres_running(data_dir: Path) -> bool:
    return any(
        p.info["name"] == "postgres" and str(data_dir) in " ".join(p.info["cmdline"] or [])
        for p in psutil.process_iter(["name", "cmdline"])
    )


def test_worker_and_api_processes_share_the_embedded_database(
    tmp_path: Path, data_dir: Path
) -> None:
    workdir = tmp_path
    inbox = workdir / "inbox"
    inbox.mkdir()
    env = {"FRESHINDEX_DATA_DIR": str(data_dir), "FRESHINDEX_DEBOUNCE_S": "0.1"}
    port = free_port()
    worker = spawn(["worker", "folder", str(inbox)], workdir, workdir / "worker.log", **env)
    api = spawn(["api", "--port", str(port)], workdir, workdir / "api.log", **env)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

    def ready() -> bool:
        try:
            return client.get("/readyz").status_code == 200
        except httpx.TransportError:
            assert api.poll() is None, (workdir / "api.log").read_text()
            return False

    try:
        wait_until(ready, 120, "the API process")
        write(inbox / "hello.md", "# Hello\n\nGreetings from a separate worker process.\n")
        wait_until(lambda: document(client, "hello.md"), 120, "the worker process to index")
        assert search(client, "greetings", k=1)[0]["doc_id"] == "hello.md"
    finally:
        for proc in (worker, api):
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=60) for proc in (worker, api)]
        client.close()
    assert codes == [0, 0], (workdir / "worker.log").read_text()
    wait_until(
        lambda: not embedded_postgres_running(data_dir),
        30,
        "the embedded Postgres to stop with its last process",
    )
