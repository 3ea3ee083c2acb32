"""Files in a watched folder → search over real HTTP, with the real model and Postgres."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx

from ingest_worker.pipeline import Pipeline
from tests.fix_services import RunningWorker, start_folder_worker, wait_until
from tests.integration.helpers import (
    doc_ids,
    document,
    paragraphs,
    save_atomically,
    search,
    stats,
    write,
)
from tests.pdf_factory import make_pdf


def version_of(api: httpx.Client, doc_id: str) -> int | None:
    info = document(api, doc_id)
    return None if info is None else int(info["version"])


def test_create_edit_move_and_delete_files(api: httpx.Client, folder_worker: RunningWorker) -> None:
    root = folder_worker.root
    write(root / "animals/cats.md", "# Cats\n\nCats purr when they are content and warm.\n")
    write(root / "space.txt", "The rocket reached orbit after a long countdown.\n")
    wait_until(
        lambda: document(api, "animals/cats.md") and document(api, "space.txt"),
        what="both files indexed",
    )
    assert search(api, "feline purring", k=1)[0]["doc_id"] == "animals/cats.md"
    hit = search(api, "spaceflight launch", k=1)[0]
    assert hit["doc_id"] == "space.txt" and hit["version"] == 1 and hit["ordinal"] == 0

    write(root / "space.txt", "The submarine dived below the arctic ice.\n")
    wait_until(lambda: version_of(api, "space.txt") == 2, what="the edit")
    hit = search(api, "underwater vessel", k=1)[0]
    assert hit["doc_id"] == "space.txt" and "submarine" in hit["text"]
    assert all("rocket" not in h["text"] for h in search(api, "rocket orbit countdown"))

    (root / "animals").rename(root / "pets")
    wait_until(
        lambda: document(api, "pets/cats.md") and not document(api, "animals/cats.md"),
        what="the folder move",
    )
    assert doc_ids(api, "feline purring") == {"pets/cats.md", "space.txt"}

    (root / "space.txt").unlink()
    wait_until(lambda: document(api, "space.txt") is None, what="the delete")
    shutil.rmtree(root / "pets")
    wait_until(lambda: document(api, "pets/cats.md") is None, what="the folder delete")
    assert search(api, "cats submarine") == []
    counts = stats(api)
    assert counts["documents"] == 0 and counts["chunks"] == 0
    assert counts["dead_letters"] == 0


def test_resaving_an_unchanged_file_embeds_nothing(
    api: httpx.Client, folder_worker: RunningWorker
) -> None:
    path = write(folder_worker.root / "note.md", "# Note\n\nRemember to water the plants.\n")
    wait_until(lambda: document(api, "note.md"), what="the first save")
    before = stats(api)
    write(path, path.read_text())  # same bytes, new mtime
    wait_until(lambda: version_of(api, "note.md") == 2, what="the re-save")
    after = stats(api)
    assert after["chunks_embedded_total"] == before["chunks_embedded_total"]
    assert after["chunks_reused_total"] > before["chunks_reused_total"]


def test_editing_one_paragraph_of_a_long_document_embeds_at_most_two_chunks(
    api: httpx.Client, folder_worker: RunningWorker
) -> None:
    path = write(folder_worker.root / "report.md", paragraphs(50))
    info = wait_until(lambda: document(api, "report.md"), 120, "the long document")
    assert info["chunk_count"] >= 45
    before = stats(api)
    text = path.read_text().replace(
        "Paragraph 25 about topic", "Paragraph 25, revised, about topic"
    )
    write(path, text)
    wait_until(lambda: version_of(api, "report.md") == 2, what="the edit")
    embedded = stats(api)["chunks_embedded_total"] - before["chunks_embedded_total"]
    assert 1 <= embedded <= 2
    assert "revised" in search(api, "Paragraph 25, revised", k=1)[0]["text"]


def test_editor_temp_file_and_rename_indexes_the_final_file_once(
    api: httpx.Client, folder_worker: RunningWorker
) -> None:
    path = folder_worker.root / "draft.md"
    save_atomically(path, "# Draft\n\nFirst words about volcanoes.\n")
    write(folder_worker.root / "draft.md~", "# Backup\n\nA backup copy about glaciers.\n")
    write(folder_worker.root / "scratch.tmp", "temporary text about deserts")
    wait_until(lambda: document(api, "draft.md"), what="the saved file")
    save_atomically(path, "# Draft\n\nSecond words about volcanoes erupting.\n")
    wait_until(lambda: version_of(api, "draft.md") == 2, what="the second save")
    time.sleep(0.5)  # give any stray temp-file events time to (wrongly) land
    assert doc_ids(api, "glaciers deserts volcanoes") == {"draft.md"}
    assert stats(api)["documents"] == 1


def test_bad_files_become_dead_letters_and_the_worker_goes_on(
    api: httpx.Client, folder_worker: RunningWorker, tmp_path: Path
) -> None:
    root = folder_worker.root
    (root / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (root / "binary.txt").write_bytes(b"\x00\x01\x02\xff" * 100)
    (root / "slides.pptx").write_bytes(b"PK\x03\x04 zipped")
    outside = tmp_path / "outside.md"
    outside.write_text("# Secret\n\nThis file lives outside the watched folder.\n")
    (root / "link.md").symlink_to(outside)
    write(root / "good.md", "# Good\n\nA perfectly fine document about gardening.\n")
    (root / "paper.pdf").write_bytes(make_pdf([["Quantum tunnelling lets particles cross."]]))
    wait_until(lambda: stats(api)["dead_letters"] == 4, what="four dead letters")
    wait_until(
        lambda: document(api, "good.md") and document(api, "paper.pdf"), what="the good files"
    )
    assert search(api, "particles crossing barriers", k=1)[0]["doc_id"] == "paper.pdf"
    assert "Secret" not in str(search(api, "file outside the watched folder"))
    assert document(api, "link.md") is None


def test_content_change_is_seen_even_when_mtime_goes_backwards(
    api: httpx.Client, folder_worker: RunningWorker
) -> None:
    path = write(folder_worker.root / "restored.md", "# Restored\n\nOriginal text about owls.\n")
    wait_until(lambda: document(api, "restored.md"), what="the first version")
    old = os.stat(path)
    write(path, "# Restored\n\nBackup text about hawks.\n")
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns - 10**9))  # like a restored backup
    wait_until(lambda: version_of(api, "restored.md") == 2, what="the restored version")
    assert "hawks" in search(api, "birds of prey", k=1)[0]["text"]


def test_the_periodic_rescan_catches_a_change_no_file_event_reported(
    tmp_path: Path, pipeline: Pipeline, api: httpx.Client
) -> None:
    """A write through a hard link outside the watched folder: inotify reports it to no one
    watching the folder, and only the rescan (every second here) can see the file changed."""
    root, outside = tmp_path / "docs", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    write(root / "note.txt", "The first version talks about otters.")
    os.link(root / "note.txt", outside / "note.txt")
    running = start_folder_worker(root, pipeline, rescan_interval_s=1.0)
    try:
        wait_until(lambda: (document(api, "note.txt") or {}).get("version") == 1, 60, "v1")
        with (outside / "note.txt").open("w", encoding="utf-8") as f:  # same inode
            f.write("The second version talks about beavers instead.")
        wait_until(lambda: (document(api, "note.txt") or {}).get("version") == 2, 60, "v2")
        assert search(api, "beavers", k=1)[0]["doc_id"] == "note.txt"
    finally:
        running.halt()


def test_a_file_closed_after_writing_is_read_without_waiting_for_the_debounce(
    tmp_path: Path, pipeline: Pipeline, api: httpx.Client
) -> None:
    """With an hour of debounce, only the close-write path can index a file in time: a file
    still held open is left alone, and read as soon as its writer closes it."""
    root = tmp_path / "docs"
    root.mkdir()
    running = start_folder_worker(root, pipeline, debounce_s=3600)
    try:
        write(root / "closed.txt", "Written and closed: indexed at once.")
        wait_until(lambda: document(api, "closed.txt") is not None, 60, "closed.txt indexed")
        with (root / "open.txt").open("w", encoding="utf-8") as held:
            held.write("Still being written by a writer that keeps the file open.")
            held.flush()
            os.fsync(held.fileno())
            write(root / "marker.txt", "A later file, closed: indexed while open.txt is open.")
            wait_until(lambda: document(api, "marker.txt") is not None, 60, "marker indexed")
            assert document(api, "open.txt") is None  # modified, not closed: debounced
        wait_until(lambda: document(api, "open.txt") is not None, 60, "open.txt after close")
    finally:
        running.halt()
