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
from tests.integration.helpers import document


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
