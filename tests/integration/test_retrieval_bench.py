"""The retrieval benchmark end to end on a 100-document slice of the shipped collection: real
folder worker and API processes, queries over HTTP, the reference BM25. The quality figures
themselves belong to the benchmark (bench/README.md); here they only have to be computed."""

from __future__ import annotations

from pathlib import Path

from bench import retrieval
from tests.fix_services import free_port


def test_the_retrieval_benchmark_runs_on_a_slice(tmp_path: Path) -> None:
    assert retrieval.CRANFIELD.is_dir(), "the shared Cranfield collection is missing"
    result = retrieval.main(
        ["--limit", "100", "--port", str(free_port()), "--results", str(tmp_path)]
    )
    assert result["documents"] == 100 and result["queries"] > 0 and result["chunks"] >= 100
    for system in (*retrieval.MODES, "reference_bm25 (bm25s)"):
        assert 0 < result[system]["ndcg@10"] <= 1 and 0 < result[system]["recall@100"] <= 1
    for mode in retrieval.MODES:
        assert 0 < result[mode]["p50_ms"] <= result[mode]["p99_ms"]
    assert len(list(tmp_path.glob("retrieval_*.json"))) == 1
