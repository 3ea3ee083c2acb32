"""The end-offset cache behind lag: cached briefly, and never longer to answer than its
deadline, even when the Kafka client under it never returns."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from query_api.lag import CachedLatestOffsets


class BlockingFetch:
    """A fetch that answers only once released, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()

    def __call__(self, topic: str) -> Mapping[int, int]:
        self.calls += 1
        assert self.release.wait(30), "the test never released the fetch"
        return {0: 7}


def test_offsets_are_fetched_once_within_the_ttl() -> None:
    calls: list[str] = []

    def fetch(topic: str) -> Mapping[int, int]:
        calls.append(topic)
        return {0: 3, 1: 5}

    latest = CachedLatestOffsets(fetch, ttl_s=60)
    assert latest("docs") == {0: 3, 1: 5}
    assert latest("docs") == {0: 3, 1: 5}
    assert latest("other") == {0: 3, 1: 5}
    assert calls == ["docs", "other"]


def test_a_fetch_that_never_returns_makes_the_lag_unknown_not_the_caller_hang() -> None:
    fetch = BlockingFetch()
    latest = CachedLatestOffsets(fetch, ttl_s=60, timeout_s=0.05)
    assert latest("docs") is None
    assert latest("docs") is None  # waits for the fetch in flight rather than starting another
    assert fetch.calls == 1
    fetch.release.set()
    for _ in range(200):  # the late answer fills the cache for the next caller
        if (offsets := latest("docs")) is not None:
            break
    assert offsets == {0: 7}
    assert fetch.calls == 1


def test_a_failing_fetch_makes_the_lag_unknown_and_is_retried_after_the_ttl() -> None:
    answers: list[Exception | Mapping[int, int]] = [OSError("no broker"), {0: 1}]

    def fetch(topic: str) -> Mapping[int, int]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    latest = CachedLatestOffsets(fetch, ttl_s=0)
    assert latest("docs") is None
    assert latest("docs") == {0: 1}
