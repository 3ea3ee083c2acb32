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

from ingest_worker import api_keys
from ingest_worker.database import connect
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
    with log.open("wb") as out:  # the child keeps its own copy of the file
        return subprocess.Popen(
            [FRESHINDEX, *args], cwd=cwd, env={**os.environ, **env}, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip


def embedded_postgres_running(data_dir: Path) -> bool:
    return any(
        p.info["name"] == "postgres" and str(data_dir) in " ".join(p.info["cmdline"] or [])
        for p in psutil.process_iter(["name", "cmdline"])
    )


def ready(client: httpx.Client, process: subprocess.Popen[bytes], log: Path) -> bool:
    try:
        return client.get("/readyz").status_code == 200
    except httpx.TransportError:
        assert process.poll() is None, log.read_text()
        return False


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM, and it must exit 0 within a minute."""
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0, log.read_text()


def kill(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_worker_and_api_processes_share_the_embedded_database(
    tmp_path: Path, data_dir: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    env = {"FRESHINDEX_DATA_DIR": str(data_dir), "FRESHINDEX_DEBOUNCE_S": "0.1"}
    port = free_port()
    worker_log, api_log = tmp_path / "worker.log", tmp_path / "api.log"
    worker = spawn(["worker", "folder", str(inbox)], tmp_path, worker_log, **env)
    api = spawn(["api", "--port", str(port)], tmp_path, api_log, **env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            wait_until(lambda: ready(client, api, api_log), 180, "the API process")
            write(inbox / "hello.md", "# Hello\n\nGreetings from a separate worker process.\n")
            wait_until(lambda: document(client, "hello.md"), 180, "the worker process to index")
            assert search(client, "greetings", k=1)[0]["doc_id"] == "hello.md"
            stop(worker, worker_log)  # the first to exit leaves Postgres to the other
            assert embedded_postgres_running(data_dir)
            assert search(client, "greetings", k=1)[0]["doc_id"] == "hello.md"
            stop(api, api_log)  # the last one stops it
        wait_until(
            lambda: not embedded_postgres_running(data_dir),
            30,
            "the embedded Postgres to stop with its last process",
        )
    finally:
        kill(worker, api)


def test_up_serves_the_sample_folder_and_status_reports_it(tmp_path: Path, data_dir: Path) -> None:
    """The README's first minute: `freshindex up` in an empty folder, then `status`."""
    env = {"FRESHINDEX_DATA_DIR": str(data_dir), "FRESHINDEX_DEBOUNCE_S": "0.1"}
    port = free_port()
    log = tmp_path / "up.log"
    up = spawn(["up", "--port", str(port)], tmp_path, log, **env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            wait_until(lambda: ready(client, up, log), 180, "freshindex up")
            wait_until(lambda: document(client, "welcome.md"), 120, "the sample document")
            write(tmp_path / "inbox" / "leave.md", "# Leave\n\nEmployees get 25 days of leave.\n")
            wait_until(lambda: document(client, "leave.md"), 120, "a dropped file")
            assert search(client, "how many vacation days", k=1)[0]["doc_id"] == "leave.md"
            status = subprocess.run(
                [FRESHINDEX, "status"], cwd=tmp_path, env={**os.environ, **env},
                capture_output=True, text=True, timeout=120, check=True,
            )  # fmt: skip
            lines = dict(line.split(None, 1) for line in status.stdout.splitlines() if line)
            assert lines["documents"].strip() == "2" and int(lines["chunks"]) >= 2
            assert lines["model"].strip() == "all-MiniLM-L6-v2"
        stop(up, log)
    finally:
        kill(up)


def test_an_api_listening_beyond_loopback_requires_keys(tmp_path: Path, db_url: str) -> None:
    """`freshindex api --host 0.0.0.0` (in a network namespace of its own, so that it is
    reachable from nowhere but that namespace): every /v1 endpoint answers 401 without a
    key, and an admin key opens /v1/stats."""
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        pytest.fail("util-linux's unshare and nsenter are needed (apt-get install util-linux)")
    port = free_port()
    log = tmp_path / "api.log"
    command = f'ip link set lo up && exec "{FRESHINDEX}" api --host 0.0.0.0 --port {port}'
    with log.open("wb") as out:
        api = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", command], cwd=tmp_path,
            env={**os.environ, "DATABASE_URL": db_url}, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def status(path: str, key: str | None = None) -> int:
        """GET `path` from inside the API's namespace (0: not answering yet)."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        url = f"http://127.0.0.1:{port}{path}"
        code = (
            "import httpx\n"
            f"try: print(httpx.get({url!r}, headers={headers!r}).status_code)\n"
            "except httpx.TransportError: print(0)"
        )
        inside = subprocess.run(
            ["nsenter", f"--net=/proc/{api.pid}/ns/net", sys.executable, "-c", code],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return int(inside.stdout)

    try:
        wait_until(lambda: api.poll() is None and status("/readyz") == 200, 180, "the API")
        for path in ("/v1/stats", "/v1/dead-letters", "/v1/documents/x", "/v1/changes"):
            assert status(path) == 401, path
        with connect(db_url) as conn:
            admin, _ = api_keys.create(conn, None, "ops")
        assert status("/v1/stats", admin) == 200
        stop(api, log)
    finally:
        kill(api)
