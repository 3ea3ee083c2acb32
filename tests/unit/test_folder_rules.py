from __future__ import annotations

import functools
import threading
import time
from pathlib import Path, PurePosixPath

import pytest

from ingest_worker.errors import ConfigurationError
from ingest_worker.sources.folder.debouncing import Debouncer
from ingest_worker.sources.folder.paths import is_ignored, is_under, make_roots


@pytest.mark.parametrize(
    "path",
    [
        ".hidden.md",
        "notes/.git/config",
        "a.md.swp",
        "a.md~",
        "a.tmp",
        "#a.md#",
        "4913",
        "dir/.a.md.swx",
        "report.pdf.part",
        "~$report.docx",
    ],
)
def test_hidden_and_temporary_files_are_ignored(path: str) -> None:
    assert is_ignored(PurePosixPath(path))


@pytest.mark.parametrize("path", ["a.md", "dir/sub/b.pdf", "My Notes/ünïcode file.txt"])
def test_documents_are_not_ignored(path: str) -> None:
    assert not is_ignored(PurePosixPath(path))


def test_doc_ids_are_prefixed_only_with_several_roots(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    [single] = make_roots([tmp_path / "a"])
    assert single.doc_id(tmp_path / "a" / "x" / "y.md") == "x/y.md"
    first, _ = make_roots([tmp_path / "a", tmp_path / "b"])
    assert first.doc_id(tmp_path / "a" / "y.md") == "a/y.md"
    assert first.path_of("a/y.md") == tmp_path / "a" / "y.md"


def test_roots_must_exist_and_not_nest(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not a folder"):
        make_roots([tmp_path / "missing"])
    (tmp_path / "a" / "inner").mkdir(parents=True)
    with pytest.raises(ConfigurationError, match="inside"):
        make_roots([tmp_path / "a", tmp_path / "a" / "inner"])


def test_is_under_matches_whole_path_segments() -> None:
    assert is_under("docs/a.md", "docs") and is_under("docs", "docs")
    assert not is_under("docs2/a.md", "docs")


def test_debouncer_releases_a_burst_once_after_quiet_time() -> None:
    debouncer = Debouncer(quiet_s=0.2)
    path = Path("/x/a.md")
    for _ in range(5):
        debouncer.touch(path)
        time.sleep(0.03)
    assert debouncer.take_ready(timeout=0.05) == []
    started = time.monotonic()
    assert debouncer.take_ready(timeout=2) == [path]
    assert time.monotonic() - started < 1
    assert len(debouncer) == 0


def test_debouncer_wakes_a_waiting_taker() -> None:
    debouncer = Debouncer(quiet_s=0.0)
    threading.Timer(0.1, debouncer.touch, args=(Path("/x/b.md"),)).start()
    assert debouncer.take_ready(timeout=2) == [Path("/x/b.md")]


def test_debouncer_does_not_starve_a_file_that_keeps_changing() -> None:
    debouncer = Debouncer(quiet_s=10, max_delay_s=0.2)
    debouncer.touch(Path("/x/log.txt"))
    time.sleep(0.25)
    debouncer.touch(Path("/x/log.txt"))
    assert debouncer.take_ready(timeout=0.1) == [Path("/x/log.txt")]


def test_debouncer_takes_ready_paths_within_a_budget_and_at_least_one() -> None:
    debouncer = Debouncer(quiet_s=0.0)
    sizes = {Path("/x/a"): 5, Path("/x/b"): 4, Path("/x/c"): 2, Path("/x/huge"): 100}
    for path in sizes:
        debouncer.touch(path)
    take = functools.partial(debouncer.take_ready, timeout=1, weight=sizes.__getitem__)
    assert take(budget=10) == [Path("/x/a"), Path("/x/b")]
    assert take(budget=1) == [Path("/x/c")]  # over the budget alone: still taken
    assert take(budget=10, limit=5) == [Path("/x/huge")]
    assert len(debouncer) == 0
