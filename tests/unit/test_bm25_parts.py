"""The pure steps of a keyword ranking split into parts (query_api.bm25): how chunk ids are
cut, how the parts' counts become weights, and how their k best become the k best."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from query_api.bm25 import best, id_ranges, idf, weights


@given(first=st.integers(1, 10**6), span=st.integers(0, 10**5), parts=st.integers(1, 8))
def test_id_ranges_cover_every_id_once_in_order(first: int, span: int, parts: int) -> None:
    last = first + span
    ranges = id_ranges(first, last, parts)
    assert 1 <= len(ranges) <= parts
    ids = [i for lo, hi in ranges for i in range(lo, hi + 1)]
    assert ids == list(range(first, last + 1))
    sizes = [hi - lo + 1 for lo, hi in ranges]
    assert max(sizes) - min(sizes) <= 1  # balanced


def test_weights_sum_each_lexemes_postings_over_the_parts_and_drop_absent_ones() -> None:
    counts = [
        [("wing", 1, 3), ("shock", 2, 0), ("flutter", 1, 0)],
        [("wing", 1, 1), ("shock", 2, 5), ("flutter", 1, 0)],
    ]
    lexemes, weighted, postings = weights(counts, chunks=100)
    assert lexemes == ["wing", "shock"]
    assert weighted == [idf(100, 4), 2 * idf(100, 5)]
    assert postings == 9
    assert idf(100, 4) == math.log(1 + (100 - 4 + 0.5) / 4.5)


# chunk id -> (its score, the part that holds it): every chunk in exactly one part
chunks = st.dictionaries(
    st.integers(0, 1000), st.tuples(st.sampled_from([0.5, 1.0, 1.5, 2.0]), st.integers(0, 3))
)


def in_ranking_order(hit: tuple[int, float]) -> tuple[float, int]:
    return -hit[1], hit[0]  # score descending, ties by chunk id


@given(chunks=chunks, k=st.integers(0, 50))
def test_the_best_of_the_parts_best_are_the_best_of_all(
    chunks: dict[int, tuple[float, int]], k: int
) -> None:
    parts = [[(i, s) for i, (s, p) in chunks.items() if p == part] for part in range(4)]
    rankings = [
        [{"id": i, "doc_id": "d", "score": s} for i, s in sorted(part, key=in_ranking_order)[:k]]
        for part in parts
    ]
    everything = sorted(((i, s) for i, (s, _) in chunks.items()), key=in_ranking_order)[:k]
    assert [(h["id"], h["score"]) for h in best(rankings, k)] == everything
