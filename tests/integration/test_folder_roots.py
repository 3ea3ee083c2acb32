"""Watched roots that are replaced, re-pointed or removed, with real files and watchdog: the
worker watches what is at the root's path now, and a root that is gone deletes nothing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import psycopg
import pytest

from ingest_worker.pipeline import Pipeline
from tests.fix_services import RunningWorker, start_folder_worker, wait_until
from tests.integration.helpers import document, stats, write


def version_of(api: httpx.Client, doc_id: str) -> int | None:
    info = document(api, doc_id)
    return None if info is None else int(info["version"])


def deletes_committed(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM changes WHERE op = 'delete'").fetchone()
    return int(row[0]) if row else -1


def test_a_root_renamed_away_and_recreated_is_watched_again(
    api: httpx.Client, folder_worker: RunningWorker, tmp_path: Path
) -> None:
    root = folder_worker.root
    write(root / "old.md", "# Old\n\nA note in the first folder, about herons.\n")
    wait_until(lambda: document(api, "old.md"), what="the first folder's file")

    root.rename(tmp_path / "docs.previous")  # what mv-based syncs and deploy tools do
    root.mkdir()
    write(root / "new.md", "# New\n\nA note in the replacing folder, about cranes.\n")
    # the rescan is an hour away: only re-watching the new folder finds this file
    wait_until(lambda: document(api, "new.md"), 60, "the file in the replacing folder")
    wait_until(lambda: document(api, "old.md") is None, 60, "old.md, absent from the new folder")

    write(tmp_path / "docs.previous/stray.md", "# Stray\n\nWritten into the old folder.\n")
    write(root / "later.md", "# Later\n\nWritten into the new folder after the stray.\n")
    wait_until(lambda: document(api, "later.md"), 60, "a later file in the new folder")
    assert document(api, "stray.md") is None
    assert stats(api)["documents"] == 2


def test_a_symlinked_root_re_pointed_follows_the_new_target(
    api: httpx.Client, pipeline: Pipeline, db_url: str, tmp_path: Path
) -> None:
    first, second = tmp_path / "release-1", tmp_path / "release-2"
    write(first / "guide.md", "# Guide\n\nRelease one explains the kiln.\n")
    write(second / "manual.md", "# Manual\n\nRelease two explains the lathe.\n")
    link = tmp_path / "current"
    link.symlink_to(first)
    running = start_folder_worker(link, pipeline)
    try:
        wait_until(lambda: document(api, "guide.md"), 60, "the first target's file")
        staged = tmp_path / "current.new"
        staged.symlink_to(second)
        os.replace(staged, link)  # an atomic re-point, as deploy tools do it
        wait_until(
            lambda: document(api, "manual.md") and document(api, "guide.md") is None,
            60,
            "the index to follow the new target",
        )
        write(first / "stale.md", "# Stale\n\nWritten into the old target.\n")
        write(second / "fresh.md", "# Fresh\n\nWritten into the new target.\n")
        wait_until(lambda: document(api, "fresh.md"), 60, "a file written into the new target")
        assert document(api, "stale.md") is None
        with psycopg.connect(db_url) as conn:
            sources = {r[0] for r in conn.execute("SELECT DISTINCT source FROM documents")}
        assert sources == {f"folder:{link}"}  # the link names the source, not its target
    finally:
        running.halt()


def test_a_root_removed_then_restored_deletes_nothing(
    api: httpx.Client,
    pipeline: Pipeline,
    db_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = tmp_path / "share"
    texts = {
        f"note-{i}.md": f"# Note {i}\n\nNote {i} is about bird number {i}.\n" for i in range(5)
    }
    for name, text in texts.items():
        write(root / name, text)
    running = start_folder_worker(root, pipeline)
    try:
        wait_until(lambda: stats(api)["documents"] == 5, 60, "the initial scan")
        shutil.rmtree(root)  # deleted (or unmounted): not the same as emptied
        wait_until(lambda: "is gone" in caplog.text, 30, "the warning that the root is gone")

        staging = tmp_path / "share.restoring"
        for name, text in texts.items():
            write(staging / name, text)
        write(staging / "note-0.md", "# Note 0\n\nNote 0 is now about a heron.\n")
        staging.rename(root)  # restored as a whole, one file edited meanwhile
        wait_until(lambda: version_of(api, "note-0.md") == 2, 60, "the restored root's edit")
        assert stats(api)["documents"] == 5
        assert deletes_committed(db_url) == 0
        assert "was restored" in caplog.text
    finally:
        running.halt()
