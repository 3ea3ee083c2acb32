"""Search modes over real HTTP with the real model: BM25's OR semantics and web-search syntax,
results grouped by document, and tenants kept apart in keyword and hybrid search."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ingest_worker.pipeline import Pipeline
from tests.integration.helpers import upsert

ABSTRACTS = {
    "flutter.txt": "Wing flutter at transonic speeds: the aeroelastic instability of thin "
    "swept wings was measured in the wind tunnel.",
    "heat.txt": "Heat transfer in laminar boundary layers over a flat plate at high Mach "
    "numbers, with and without suction.",
    "nozzle.txt": "Shock waves in a convergent-divergent nozzle: the boundary layer separates "
    "behind the shock.",
}


def ranked(api: httpx.Client, query: str, **body: Any) -> list[dict[str, Any]]:
    response = api.post("/v1/search", json={"query": query, **body})
    assert response.status_code == 200, response.text
    return list(response.json()["hits"])


def doc_ids(api: httpx.Client, query: str, **body: Any) -> list[str]:
    return [hit["doc_id"] for hit in ranked(api, query, **body)]


@pytest.fixture
def abstracts(pipeline: Pipeline) -> None:
    pipeline.process([upsert(doc_id, text) for doc_id, text in ABSTRACTS.items()])


@pytest.mark.usefixtures("abstracts")
def test_keyword_search_matches_any_word_of_a_question(api: httpx.Client) -> None:
    # Most words of the question appear in no abstract: every word must not be required.
    assert doc_ids(api, "what causes the flutter of aircraft wings?", mode="keyword") == [
        "flutter.txt"
    ]
    # Two abstracts share "boundary layer"; the one with more of the query's words wins.
    assert doc_ids(api, "boundary layer heat transfer", mode="keyword") == [
        "heat.txt",
        "nozzle.txt",
    ]
    assert doc_ids(api, "the of and", mode="keyword") == []  # stop words only


@pytest.mark.usefixtures("abstracts")
def test_web_search_syntax_narrows_keyword_and_hybrid_hits(api: httpx.Client) -> None:
    assert doc_ids(api, "boundary layer -shock", mode="keyword") == ["heat.txt"]
    assert doc_ids(api, 'layer -"flat plate"', mode="keyword") == ["nozzle.txt"]
    # Hybrid adds what only the vector half finds, narrowed by the same syntax.
    assert "nozzle.txt" not in doc_ids(api, "boundary layer -shock", mode="hybrid")
    assert "heat.txt" not in doc_ids(api, 'layer -"flat plate"', mode="hybrid")
    for mode in ("keyword", "hybrid"):
        assert doc_ids(api, '"shock waves" boundary layer', mode=mode) == ["nozzle.txt"]


@pytest.mark.usefixtures("abstracts")
def test_hybrid_finds_what_either_half_finds(api: httpx.Client) -> None:
    # No word in common with any abstract, only meaning: the vector half finds it.
    assert doc_ids(api, "aircraft oscillations", mode="keyword") == []
    assert doc_ids(api, "aircraft oscillations", mode="hybrid", k=1) == ["flutter.txt"]
    # A rare exact word: the keyword half ranks it first.
    assert doc_ids(api, "suction", mode="hybrid", k=1) == ["heat.txt"]


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_group_by_document_returns_distinct_documents_with_their_best_chunks(
    api: httpx.Client, pipeline: Pipeline, mode: str
) -> None:
    long = "\n\n".join(
        f"Section {i}: annual leave rules, part {i}, for carry-over of leave days."
        for i in range(8)
    )
    events = [upsert("handbook.md", long, content_type="text/markdown")]
    memo = "Memo {}: annual leave is approved by managers."
    events += [upsert(f"memo{i}.txt", memo.format(i)) for i in range(4)]
    pipeline.process(events)
    chunks = ranked(api, "annual leave days", mode=mode, k=5)
    assert [h["doc_id"] for h in chunks].count("handbook.md") > 1  # chunks repeat documents
    hits = ranked(api, "annual leave days", mode=mode, k=5, group_by="document",
                  chunks_per_document=3)  # fmt: skip
    assert len(hits) == 5 and len({h["doc_id"] for h in hits}) == 5
    handbook = next(h for h in hits if h["doc_id"] == "handbook.md")
    assert len(handbook["more_chunks"]) == 2
    scores = [handbook["score"], *(c["score"] for c in handbook["more_chunks"])]
    assert scores == sorted(scores, reverse=True)
    assert all(c["ordinal"] != handbook["ordinal"] for c in handbook["more_chunks"])
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_a_tenant_sees_only_its_documents_scored_by_its_own_statistics(
    api: httpx.Client, pipeline: Pipeline, mode: str
) -> None:
    pipeline.process([upsert(doc_id, text, tenant="a") for doc_id, text in ABSTRACTS.items()])
    before = ranked(api, "shock boundary layer", mode=mode, filter={"tenant": "a"})
    # Tenant b floods the index with the query's words: tenant a's scores must not move.
    pipeline.process(
        [upsert(f"b{i}.txt", f"shock {i} in the boundary layer", tenant="b") for i in range(30)]
    )
    after = ranked(api, "shock boundary layer", mode=mode, filter={"tenant": "a"})
    assert after == before
    assert {h["doc_id"] for h in after} <= set(ABSTRACTS)
    assert {h["doc_id"] for h in ranked(api, "shock", mode=mode, filter={"tenant": "b"})} <= {
        f"b{i}.txt" for i in range(30)
    }
