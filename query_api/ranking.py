"""Pure ranking steps after the SQL: fusing two rankings, and grouping chunks by document."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Row = dict[str, Any]
RRF_K = 60  # the usual reciprocal-rank-fusion constant (Cormack et al., 2009)


def fuse(rankings: Sequence[Sequence[Row]], k: int) -> list[Row]:
    """Reciprocal rank fusion: score = sum of 1 / (60 + rank) over the rankings. Ranks, not
    scores, are fused: cosine similarities and BM25 scores live on unrelated scales."""
    fused: dict[tuple[str, int], Row] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            key = (hit["doc_id"], hit["ordinal"])
            entry = fused.setdefault(key, {**hit, "score": 0.0})
            entry["score"] += 1.0 / (RRF_K + rank)
    return sorted(fused.values(), key=lambda h: h["score"], reverse=True)[:k]


def by_document(ranked: Sequence[Row], k: int, chunks_per_document: int) -> list[Row]:
    """The first k distinct documents of a chunk ranking: each is its best chunk (with its
    score) plus up to `chunks_per_document - 1` further chunks of it, best first, in
    `more_chunks`."""
    documents: dict[str, Row] = {}
    for hit in ranked:
        best = documents.get(hit["doc_id"])
        if best is None:
            if len(documents) < k:
                documents[hit["doc_id"]] = {**hit, "more_chunks": []}
        elif len(best["more_chunks"]) < chunks_per_document - 1:
            best["more_chunks"].append(
                {key: hit[key] for key in ("ordinal", "heading", "text", "score")}
            )
    return list(documents.values())
