"""Prometheus metrics of the process (prometheus-client's default registry).

Workers serve them on FRESHINDEX_METRICS_PORT (127.0.0.1) when set; the API serves them at
GET /metrics together with index-wide gauges read from Postgres (see query_api.index_metrics).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS = Counter(
    "freshindex_events",
    "Document events handled, by source, op and outcome.",
    ["source", "op", "outcome"],
)
CHUNKS_EMBEDDED = Counter("freshindex_chunks_embedded", "Chunk texts sent to the model.")
CHUNKS_REUSED = Counter(
    "freshindex_chunks_reused", "Chunks indexed without calling the model (kept or cached)."
)
EMBED_BATCH_SIZE = Histogram(
    "freshindex_embed_batch_size",
    "Texts per model call.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
)
EMBED_SECONDS = Histogram(
    "freshindex_embed_seconds",
    "Time per model call.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
FRESHNESS_SECONDS = Histogram(
    "freshindex_freshness_seconds",
    "End-to-end freshness: event time (or file mtime) to committed in the index.",
    ["source"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
SEARCH_SECONDS = Histogram(
    "freshindex_search_seconds",
    "POST /v1/search latency (including any wait_for).",
    ["mode"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def source_label(source: str) -> str:
    """Bounded label values: 'kafka:<topic>' or 'folder:<folder name>'."""
    kind, _, name = source.partition(":")
    return f"{kind}:{name.rstrip('/').rsplit('/', 1)[-1]}" if kind == "folder" else source
