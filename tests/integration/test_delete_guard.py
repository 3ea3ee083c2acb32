"""The mass-delete guard, with real files, watchdog, a real broker and the `freshindex` CLI:
deletes one by one go through, a batch or reconcile that would delete most of a folder (or a
Kafka batch most of a topic's documents) is held (log, status, stats, metric) until
`freshindex confirm-deletes`, and a folder that comes back clears the hold."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from ingest_worker.pipeline import Pipeline
from tests.fix_kafka import FRESHINDEX, KafkaSetup
from tests.fix_services import start_folder_worker, wait_until
from tests.integration.helpers import document, stats, write


def fill(root: Path, n: int) -> None:
    for i in range(n):
        write(root / f"page-{i:02}.md", f"# Page {i}\n\nPage {i} describes exhibit {i}.\n")


def freshindex(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db_url}
    return subprocess.run([FRESHINDEX, *args], env=env, capture_output=True, text=True)


def held(api: httpx.Client) -> list[dict[str, object]]:
    return list(stats(api)["deletes_held"])


def test_a_mass_delete_is_held_until_confirmed(
    api: httpx.Client,
    pipeline: Pipeline,
    db_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = tmp_path / "docs"
    fill(root, 30)
    # a long debounce: the burst of removals below is one batch even on a busy machine
    running = start_folder_worker(root, pipeline, debounce_s=1.0)
    try:
        wait_until(lambda: stats(api)["documents"] == 30, 120, "the initial scan")
        (root / "page-00.md").unlink()
        wait_until(lambda: document(api, "page-00.md") is None, 60, "a single delete")

        for i in range(1, 26):
            (root / f"page-{i:02}.md").unlink()
        wait_until(lambda: held(api), 60, "the guard to hold the burst of deletes")
        [hold] = held(api)
        assert hold["source"] == f"folder:{root}" and hold["deletes"] == 25
        assert stats(api)["documents"] == 29
        assert "holding deletes" in caplog.text
        status = freshindex(db_url, "status")
        assert status.returncode == 0 and "deletes HELD: folder:" in status.stdout
        assert "confirm-deletes" in status.stdout
        metrics = api.get("/metrics").text
        assert f'freshindex_deletes_held{{source="folder:{root}"}} 25.0' in metrics

        confirmed = freshindex(db_url, "confirm-deletes", f"folder:{root}")
        assert confirmed.returncode == 0, confirmed.stderr
        wait_until(lambda: stats(api)["documents"] == 4, 60, "the confirmed deletes")
        assert held(api) == []
        assert freshindex(db_url, "confirm-deletes", f"folder:{root}").returncode == 1
    finally:
        running.halt()


def test_an_emptied_root_is_held_and_its_return_clears_the_hold(
    api: httpx.Client, pipeline: Pipeline, tmp_path: Path
) -> None:
    root = tmp_path / "share"
    fill(root, 24)
    running = start_folder_worker(root, pipeline)
    try:
        wait_until(lambda: stats(api)["documents"] == 24, 120, "the initial scan")
        root.rename(tmp_path / "share.mounted")  # an unmount leaves an empty mount point
        root.mkdir()
        wait_until(lambda: held(api), 60, "the guard to hold the reconcile's deletes")
        assert held(api)[0]["deletes"] == 24 and stats(api)["documents"] == 24

        root.rmdir()
        (tmp_path / "share.mounted").rename(root)  # mounted again
        wait_until(lambda: held(api) == [], 60, "the hold to clear")
        assert stats(api)["documents"] == 24
    finally:
        running.halt()


def test_a_kafka_batch_deleting_most_documents_waits_for_confirmation(
    kafka_setup: KafkaSetup, api: httpx.Client, db_url: str
) -> None:
    source = f"kafka:{kafka_setup.topic}"
    with kafka_setup.publisher() as publisher:
        for i in range(30):
            publisher.upsert(f"page-{i:02}", text=f"Page {i} describes exhibit {i}.")
    first = kafka_setup.spawn()
    wait_until(lambda: stats(api)["documents"] == 30, 180, "the 30 upserts")
    first.terminate()
    assert first.wait(120) == 0
    with kafka_setup.publisher() as publisher:  # a producer's bug: most documents deleted
        for i in range(25):
            if i % 2:
                publisher.delete(f"page-{i:02}")
            else:
                publisher.tombstone(f"page-{i:02}")
    # One batch takes the whole backlog: it waits up to 2 s to fill, and it is all there.
    kafka_setup.spawn(name="second", FRESHINDEX_KAFKA_BATCH_WAIT_S="2")
    wait_until(lambda: held(api), 180, "the guard to hold the batch")
    [hold] = held(api)
    assert hold["source"] == source and hold["deletes"] == 25 and hold["documents"] == 30
    assert stats(api)["documents"] == 30  # nothing of the batch applied
    assert "holding deletes" in kafka_setup.log_text("second")

    confirmed = freshindex(db_url, "confirm-deletes", source)
    assert confirmed.returncode == 0, confirmed.stderr
    wait_until(lambda: stats(api)["documents"] == 5, 60, "the confirmed deletes")
    assert held(api) == []
