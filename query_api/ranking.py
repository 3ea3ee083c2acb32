"""Pure ranking steps after the SQL: fusing two rankings, and grouping chunks by document.
A ranked chunk is a row with its chunk `id`, its `doc_id` and its `score`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Row = dict[str, Any]
RRF_K = 60  # the usual reciprocal-rank-fusion constant (Cormack et al., 2009)


def fuse(rankings: Sequence[Sequence[Row]], k: int | None = None) -> list[Row]:
    """Reciprocal rank fusion: score = sum of 1 / (60 + rank) over the rankings (the k best,
    or all). Ranks, not scores, are fused: cosine similarities and BM25 scores live on
    unrelated scales."""
    fused: dict[int, Row] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            entry = fused.setdefault(hit["id"], {**hit, "score": 0.0})
            entry["score"] += 1.0 / (RRF_K + rank)
    return sorted(fused.values(), key=lambda h: h["score"], reverse=True)[:k]


def by_document(ranked: Sequence[Row], k: int, chunks_per_document: int) -> list[list[Row]]:
    """The first k distinct documents of a chunk ranking, each as its best chunks in ranking
    order (at most `chunks_per_document`)."""
    documents: dict[str, list[Row]] = {}
    for hit in ranked:
        chunks = documents.get(hit["doc_id"])
        if chunks is None:
            if len(documents) < k:
                documents[hit["doc_id"]] = [hit]
        elif len(chunks) < chunks_per_document:
            chunks.append(hit)
    return list(documents.values())
