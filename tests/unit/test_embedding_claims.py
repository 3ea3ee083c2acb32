"""How claimed texts are cut into model calls (`embedding_claims.slices`)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from ingest_worker.embedding_claims import slices


@given(st.lists(st.integers(0, 300)), st.integers(1, 1000))
def test_slices_cover_every_text_in_order_and_are_as_large_as_the_budget_allows(
    lengths: list[int], budget: int
) -> None:
    bounds = slices(lengths, budget)
    assert [i for start, end in bounds for i in range(start, end)] == list(range(len(lengths)))
    for start, end in bounds:
        assert end > start
        assert sum(lengths[start:end]) <= budget or end - start == 1  # a long text alone
    for (start, end), (following, _) in itertools.pairwise(bounds):
        assert sum(lengths[start : end + 1]) > budget  # the next text would not have fitted
        assert following == end


def test_a_text_longer_than_the_budget_is_embedded_on_its_own() -> None:
    assert slices([10, 500, 10, 10], 100) == [(0, 1), (1, 2), (2, 4)]
