"""Files a real folder holds: odd names, empty and binary files, a named pipe, files that
vanish or cannot be read at the moment they are read. Each is indexed or becomes a dead
letter; none stops the worker."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from ingest_worker.pipeline import Pipeline
from ingest_worker.sources.folder.paths import make_roots
from ingest_worker.sources.folder.watcher import FolderWorker
from ingest_worker.store import Store

NAMES = [
    "with space.md", "ünïcödé \u2013 naïve.md", "new\nline.md", "tab\tname.txt", "'quote\".txt",
]  # fmt: skip


def test_odd_files_are_indexed_or_dead_lettered(
    pipeline: Pipeline, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    for i, name in enumerate(NAMES):
        (root / name).write_text(f"Document number {i} has an odd name.")
    (root / "empty.txt").write_bytes(b"")
    (root / "blob.txt").write_bytes(bytes(range(256)) * 50)
    (root / "broken.pdf").write_bytes(b"%PDF-1.4\n" + b"\x00garbage" * 100)
    os.mkfifo(root / "pipe.txt")  # reading it would block forever: must be skipped
    (root / "vanishing.md").write_text("Gone before it is read.")
    (root / "locked.md").write_text("Cannot be read.")  # tests run as root: chmod cannot lock

    real_read = Path.read_bytes

    def read_bytes(path: Path) -> bytes:
        if path.name == "vanishing.md":
            path.unlink()
            raise FileNotFoundError(path)
        if path.name == "locked.md":
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    worker = FolderWorker(make_roots([root]), pipeline, debounce_s=0.05)
    worker.run(threading.Event(), once=True)

    live = {
        doc_id
        for doc_id, deleted in store.conn.execute("SELECT doc_id, deleted FROM documents")
        if not deleted
    }
    dead = {r[0]: r[1] for r in store.conn.execute("SELECT doc_id, reason FROM dead_letters")}
    assert set(NAMES) <= live
    assert "pipe.txt" not in live | set(dead) and "vanishing.md" not in live | set(dead)
    assert {"blob.txt", "broken.pdf", "locked.md"} <= set(dead)
    assert "Permission denied" in dead["locked.md"]
    assert "empty.txt" in live | set(dead)  # an empty file is either an empty document or told
