"""The retrieval benchmark end to end on a 100-document slice of the shipped collection: real
folder worker and API processes, queries over HTTP, the reference BM25. The quality figures
themselves belong to the benchmark (bench/README.md); here they only have to be computed,
and the benchmark must leave no server behind."""

from __future__ import annotations

from pathlib import Path

import psutil

from bench import retrieval
from tests.fix_services import free_port


def test_the_retrieval_benchmark_runs_on_a_slice(tmp_path: Path) -> None:
    assert retrieval.CRANFIELD.is_dir(), "the shared Cranfield collection is missing"
    port, folder = str(free_port()), str(tmp_path)
    result = retrieval.main(
        ["--limit", "100", "--port", port, "--results", folder, "--tmp", folder]
    )
    assert result["documents"] == 100 and result["queries"] > 0 and result["chunks"] >= 100
    for system in (*retrieval.MODES, "reference_bm25 (bm25s)"):
        assert 0 < result[system]["ndcg@10"] <= 1 and 0 < result[system]["recall@100"] <= 1
    for mode in retrieval.MODES:
        assert 0 < result[mode]["p50_ms"] <= result[mode]["p99_ms"]
    [result_file] = tmp_path.glob("retrieval_*.json")
    assert _processes_in(tmp_path) == []  # it stopped its Postgres, not just deleted its folder
    assert [p.name for p in tmp_path.iterdir()] == [result_file.name]


def _processes_in(folder: Path) -> list[str]:
    return [
        command
        for p in psutil.process_iter(["cmdline"])
        if str(folder) in (command := " ".join(p.info["cmdline"] or ()))
    ]
