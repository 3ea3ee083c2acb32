"""`worker folder --publish-to-kafka` + `worker kafka`: the folder tests, end to end through
a genuine broker, in separate processes."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from tests.fix_kafka import KafkaSetup
from tests.fix_services import wait_until
from tests.integration.helpers import document, save_atomically, search, stats, write


def test_watchers_publishing_to_kafka_feed_the_worker_group(
    kafka_setup: KafkaSetup, api: httpx.Client, tmp_path: Path
) -> None:
    root = tmp_path / "shared"
    write(root / "before.md", "# Before\n\nWritten before the watcher started, about tides.\n")
    kafka_setup.spawn()
    kafka_setup.spawn("worker", "folder", str(root), "--publish-to-kafka", name="watcher")
    wait_until(lambda: document(api, "before.md"), 120, "the initial scan to arrive")

    write(root / "notes/cats.md", "# Cats\n\nCats purr when they are content and warm.\n")
    save_atomically(root / "space.md", "# Space\n\nThe rocket reached orbit after a countdown.\n")
    wait_until(
        lambda: document(api, "notes/cats.md") and document(api, "space.md"), 60, "new files"
    )
    assert search(api, "feline purring", k=1)[0]["doc_id"] == "notes/cats.md"

    write(root / "space.md", "# Space\n\nThe submarine dived below the arctic ice.\n")
    wait_until(
        lambda: "submarine" in search(api, "underwater vessel", k=1)[0]["text"], 60, "the edit"
    )
    (root / "notes").rename(root / "pets")
    wait_until(
        lambda: document(api, "pets/cats.md") and not document(api, "notes/cats.md"),
        60,
        "the folder move",
    )
    (root / "space.md").unlink()
    shutil.rmtree(root / "pets")
    wait_until(lambda: stats(api)["documents"] == 1, 60, "the deletes")
    assert document(api, "before.md") is not None
    assert all(p.poll() is None for p in kafka_setup.processes)
    assert "Traceback" not in kafka_setup.log_text("watcher")
