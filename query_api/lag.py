"""How far each source is behind: Kafka's latest offsets vs the positions the index applied."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ingest_worker.sources.kafka.events import source_name, topic_of

log = logging.getLogger(__name__)

LatestOffsets = Callable[[str], Mapping[int, int]]  # topic → partition → next offset


class CachedLatestOffsets:
    """Kafka end offsets per topic, cached briefly (stats pages are polled), each fetch
    bounded by a deadline.

    A fresh kafka-python client can wait without a timeout for a broker that came back
    (its bootstrap after an outage; seen in the broker-restart test), so the fetch runs on a
    daemon thread, at most one per topic, and a caller waits for it at most `timeout_s`:
    past that the lag is unknown (None) rather than the request hung. A late answer still
    fills the cache for the next caller."""

    def __init__(self, fetch: LatestOffsets, ttl_s: float = 2.0, timeout_s: float = 5.0) -> None:
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._cache: dict[str, tuple[float, Mapping[int, int] | None]] = {}
        self._in_flight: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def __call__(self, topic: str) -> Mapping[int, int] | None:
        with self._lock:
            cached = self._cache.get(topic)
            if cached and time.monotonic() - cached[0] < self._ttl_s:
                return cached[1]
            fetching = self._in_flight.get(topic)
            if fetching is None:
                fetching = threading.Thread(
                    target=self._refresh, args=(topic,), name=f"kafka-offsets-{topic}", daemon=True
                )
                self._in_flight[topic] = fetching
                fetching.start()
        fetching.join(self._timeout_s)
        if fetching.is_alive():
            log.warning("Kafka has not told the end offsets of %s yet: lag unknown", topic)
            return None
        with self._lock:
            cached = self._cache.get(topic)
        return cached[1] if cached else None

    def _refresh(self, topic: str) -> None:
        try:
            offsets: Mapping[int, int] | None = self._fetch(topic)
        except Exception as e:  # Kafka away: lag unknown, the rest of the stats still useful
            log.warning("cannot read Kafka offsets of %s: %s", topic, e)
            offsets = None
        with self._lock:
            self._cache[topic] = (time.monotonic(), offsets)
            del self._in_flight[topic]


def with_lag(
    positions: list[dict[str, Any]], latest: Callable[[str], Mapping[int, int] | None] | None
) -> list[dict[str, Any]]:
    """Add `latest_offset` and `lag` (events not yet applied) to each Kafka position, and
    a row for partitions that have events but no applied position yet."""
    rows = [dict(p, latest_offset=None, lag=None) for p in positions]
    if latest is None:
        return rows
    for topic in sorted({t for r in rows if (t := topic_of(r["source"])) is not None}):
        offsets = latest(topic)
        if offsets is None:
            continue
        seen = set()
        for row in rows:
            if row["source"] == source_name(topic):
                seen.add(row["partition"])
                end = offsets.get(row["partition"])
                if end is not None:
                    row["latest_offset"] = end - 1
                    row["lag"] = max(0, end - 1 - row["position"])
        for partition, end in sorted(offsets.items()):
            if partition not in seen and end > 0:
                rows.append(
                    {
                        "source": source_name(topic),
                        "partition": partition,
                        "position": None,
                        "updated_at": None,
                        "latest_offset": end - 1,
                        "lag": end,
                    }
                )
    return rows
