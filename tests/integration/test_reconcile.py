"""Changes made while freshindex was stopped are applied when it starts again."""

from __future__ import annotations

from pathlib import Path

import httpx

from ingest_worker.pipeline import Pipeline
from tests.fix_services import start_folder_worker, wait_until
from tests.integration.helpers import document, search, stats, write


def test_files_changed_while_stopped_are_reconciled_at_start(
    api: httpx.Client, pipeline: Pipeline, tmp_path: Path
) -> None:
    root = tmp_path / "docs"
    write(root / "keep.md", "# Keep\n\nThis file stays the same about rivers.\n")
    write(root / "edit.md", "# Edit\n\nThis file will change, about mountains.\n")
    write(root / "gone.md", "# Gone\n\nThis file will be deleted, about deserts.\n")
    write(root / "sub/inner.md", "# Inner\n\nThis folder will be removed, about forests.\n")
    first = start_folder_worker(root, pipeline)
    wait_until(lambda: stats(api)["documents"] == 4, what="the initial scan")
    first.halt()
    embedded_before = stats(api)["chunks_embedded_total"]

    write(root / "edit.md", "# Edit\n\nThis file changed, now about oceans.\n")
    (root / "gone.md").unlink()
    (root / "sub/inner.md").unlink()
    (root / "sub").rmdir()
    write(root / "new.md", "# New\n\nA file added while stopped, about volcanoes.\n")

    second = start_folder_worker(root, pipeline)
    try:
        wait_until(
            lambda: (
                document(api, "new.md")
                and document(api, "gone.md") is None
                and document(api, "sub/inner.md") is None
            ),
            what="reconciliation",
        )
        assert document(api, "edit.md")["version"] == 2  # type: ignore[index]
        assert document(api, "keep.md")["version"] == 1  # type: ignore[index]
        assert "oceans" in search(api, "sea water", k=1)[0]["text"]
        assert stats(api)["documents"] == 3
        # new.md and edit.md: one new chunk each; keep.md is not even read again
        assert stats(api)["chunks_embedded_total"] - embedded_before == 2
    finally:
        second.halt()
