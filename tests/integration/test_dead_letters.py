"""Dead letters: listed over HTTP and the CLI, retried after the cause is fixed, purged."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx

from ingest_worker.events import DocumentEvent, Op
from ingest_worker.pipeline import Pipeline
from ingest_worker.sources import dead_letters
from tests.fix_kafka import FRESHINDEX
from tests.fix_services import RunningWorker, wait_until
from tests.integration.helpers import document, stats
from tests.pdf_factory import make_pdf


def test_list_retry_after_fixing_the_file_and_purge(
    api: httpx.Client, pipeline: Pipeline, db_url: str, tmp_path: Path
) -> None:
    broken = tmp_path / "notes.md"
    broken.write_bytes(b"# Notes\n\n\xff\xfe not utf-8 about pelicans")
    pipeline.process(
        [
            DocumentEvent(
                doc_id="notes.md",
                op=Op.UPSERT,
                source=f"folder:{tmp_path}",
                content=broken.read_bytes(),
                filename=str(broken),
            ),
            DocumentEvent(
                doc_id="slides.pptx",
                op=Op.UPSERT,
                source=f"folder:{tmp_path}",
                content=b"PK\x03\x04",
                filename=str(tmp_path / "slides.pptx"),
            ),
        ]
    )
    listed = api.get("/v1/dead-letters").json()
    assert {d["doc_id"] for d in listed} == {"notes.md", "slides.pptx"}
    assert any("not valid UTF-8" in d["reason"] for d in listed)
    env = {**os.environ, "DATABASE_URL": db_url}
    shown = subprocess.run(
        [FRESHINDEX, "dead-letters", "list"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "notes.md" in shown and "not valid UTF-8" in shown

    broken.write_text("# Notes\n\nPelicans scoop fish with their pouches.\n")
    report = dead_letters.retry(pipeline, None)
    assert report.outcomes == {"applied": 1, "dead_letter": 1}  # the .pptx is still unsupported
    assert document(api, "notes.md") is not None
    [left] = api.get("/v1/dead-letters").json()
    assert left["doc_id"] == "slides.pptx"

    purged = subprocess.run(
        [FRESHINDEX, "dead-letters", "purge", "--all"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "purged 1" in purged
    assert api.get("/v1/dead-letters").json() == []


def test_a_dead_letter_is_resolved_by_the_next_good_version_of_the_file(
    api: httpx.Client, folder_worker: RunningWorker
) -> None:
    paper = folder_worker.root / "paper.pdf"
    paper.write_bytes(b"%PDF-1.4 half written")
    wait_until(lambda: api.get("/v1/dead-letters").json(), 60, "the broken file's dead letter")
    assert stats(api)["dead_letters"] == 1

    paper.write_bytes(make_pdf([["Quantum tunnelling lets particles cross barriers."]]))
    wait_until(lambda: document(api, "paper.pdf"), 60, "the good version")
    assert stats(api)["dead_letters"] == 0
    assert api.get("/v1/dead-letters").json() == []
    [kept] = api.get("/v1/dead-letters", params={"state": "all"}).json()
    assert kept["doc_id"] == "paper.pdf" and kept["state"] == "resolved"
    assert kept["resolved_by_version"] == 1 and kept["resolved_at"] is not None
    assert api.get("/v1/dead-letters", params={"state": "resolved"}).json() == [kept]


def test_a_file_read_while_still_empty_is_retried_not_dead_lettered(
    api: httpx.Client, folder_worker: RunningWorker
) -> None:
    paper = folder_worker.root / "slow.pdf"
    paper.touch()  # created; the writer has not written yet
    wait_until(lambda: paper in folder_worker.worker.reader.empty_since, 60, "the empty read")
    paper.write_bytes(make_pdf([["Cormorants dive for fish."]]))
    wait_until(lambda: document(api, "slow.pdf"), 60, "the written file")
    assert api.get("/v1/dead-letters", params={"state": "all"}).json() == []


def test_an_empty_file_that_stays_empty_is_dead_lettered_in_the_end(
    api: httpx.Client, folder_worker: RunningWorker
) -> None:
    (folder_worker.root / "empty.pdf").touch()
    wait_until(lambda: stats(api)["dead_letters"] == 1, 60, "the empty file's dead letter")
    [letter] = api.get("/v1/dead-letters").json()
    assert letter["doc_id"] == "empty.pdf" and "empty" in letter["reason"]
