"""Index-wide gauges read from Postgres at scrape time (they hold across all processes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import psycopg_pool
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from query_api import queries
from query_api.lag import with_lag


class IndexCollector(Collector):
    def __init__(
        self,
        pool: Callable[[], psycopg_pool.ConnectionPool[Any]],
        lag_probe: Callable[[str], Any] | None,
    ) -> None:
        self._pool = pool
        self._lag_probe = lag_probe

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        try:
            with self._pool().connection(timeout=2.0) as conn:
                stats = queries.stats(conn)
        except (psycopg.Error, psycopg_pool.PoolTimeout):
            up = GaugeMetricFamily("freshindex_index_up", "1 if Postgres answered the scrape.")
            up.add_metric([], 0)
            yield up
            return
        up = GaugeMetricFamily("freshindex_index_up", "1 if Postgres answered the scrape.")
        up.add_metric([], 1)
        yield up
        for name, help_text in (
            ("documents", "Documents in the index (not deleted)."),
            ("chunks", "Chunks in the index."),
            ("dead_letters", "Open dead letters (not resolved by a later version)."),
        ):
            gauge = GaugeMetricFamily(f"freshindex_index_{name}", help_text)
            gauge.add_metric([], stats[name])
            yield gauge
        cache = GaugeMetricFamily(
            "freshindex_index_embedding_cache", "Vectors in the embedding cache."
        )
        cache.add_metric([], stats["embedding_cache"])
        yield cache
        held = GaugeMetricFamily(
            "freshindex_deletes_held",
            "Documents whose deletes the mass-delete guard holds, per source.",
            labels=["source"],
        )
        for hold in stats["deletes_held"]:
            held.add_metric([hold["source"]], hold["deletes"])
        yield held
        for name in [n for n in stats if n.endswith("_total")]:  # the lifetime counters
            counter = CounterMetricFamily(
                f"freshindex_index_{name.removesuffix('_total')}",
                f"All processes: {name.replace('_', ' ')}.",
            )
            counter.add_metric([], stats[name])
            yield counter
        lag = GaugeMetricFamily(
            "freshindex_source_lag_events",
            "Events not applied yet, per source and partition.",
            labels=["source", "partition"],
        )
        for row in with_lag(stats["sources"], self._lag_probe):
            if row["lag"] is not None:
                lag.add_metric([row["source"], str(row["partition"])], row["lag"])
        yield lag
