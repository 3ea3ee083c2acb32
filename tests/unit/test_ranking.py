"""How keyword queries read, how rankings fuse, and how chunks group into documents."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from query_api.keywords import KeywordQuery, read
from query_api.ranking import by_document, fuse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("what causes wing flutter?", KeywordQuery("what causes wing flutter?", "")),
        ('"heat transfer" at mach 3', KeywordQuery("heat transfer at mach 3", '"heat transfer"')),
        ("wing -flutter", KeywordQuery("wing", "-flutter")),
        ('wing -"boundary   layer"', KeywordQuery("wing", '-"boundary layer"')),
        ('"unterminated phrase', KeywordQuery("unterminated phrase", '"unterminated phrase"')),
        ("heat-transfer rates", KeywordQuery("heat-transfer rates", "")),
        ('- "" --', KeywordQuery("", "")),
        ("flutter or divergence", KeywordQuery("flutter or divergence", "")),
    ],
)
def test_free_words_rank_and_web_search_syntax_narrows(text: str, expected: KeywordQuery) -> None:
    assert read(text) == expected


@given(st.text())
def test_any_text_reads_into_words_and_a_narrowing_part(text: str) -> None:
    query = read(text)
    words = set(text.replace('"', " ").split())
    # Only words of the input are ranked or required; nothing is invented.
    assert set(query.terms.split()) <= words
    assert {part.strip('-"') for part in query.required.split()} - {""} <= words | {
        w.lstrip("-") for w in words
    }


def hit(doc_id: str, ordinal: int, score: float = 0.0) -> dict[str, Any]:
    return {"id": hash((doc_id, ordinal)), "doc_id": doc_id, "ordinal": ordinal, "score": score}


def test_fusion_rewards_agreement_of_both_rankings() -> None:
    vector = [hit("a", 0), hit("b", 0), hit("c", 0)]
    keyword = [hit("b", 0), hit("d", 0), hit("e", 0)]
    fused = fuse([vector, keyword], k=3)
    assert [h["doc_id"] for h in fused] == ["b", "a", "d"]
    assert fused[0]["score"] == pytest.approx(1 / 62 + 1 / 61)
    assert [h["doc_id"] for h in fuse([vector, keyword])] == ["b", "a", "d", "c", "e"]


def test_by_document_returns_distinct_documents_with_their_best_chunks() -> None:
    ranked = [hit("a", 3, 0.9), hit("a", 1, 0.8), hit("b", 0, 0.7), hit("a", 2, 0.6),
              hit("a", 0, 0.5), hit("c", 4, 0.4), hit("d", 0, 0.3)]  # fmt: skip
    documents = by_document(ranked, k=3, chunks_per_document=3)
    assert [[(c["doc_id"], c["ordinal"]) for c in chunks] for chunks in documents] == [
        [("a", 3), ("a", 1), ("a", 2)],
        [("b", 0)],
        [("c", 4)],
    ]
    assert [len(chunks) for chunks in by_document(ranked, k=2, chunks_per_document=1)] == [1, 1]
