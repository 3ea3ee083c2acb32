"""Kafka scale-out on one machine: 1, 2 and 4 `freshindex worker kafka` processes in one group
on an 8-partition topic. Per worker count: bulk throughput (the PostgreSQL manual's pages as
one burst), freshness of that burst (Kafka timestamp → committed, per document), and whether
per-document order held (versionless edits, so only delivery order decides the winner).

    .venv/bin/python -m bench.kafka_scaling [--files 120] [--workers 1 2 4]
"""

from __future__ import annotations

import argparse
import random
from typing import Any

import psycopg
from kafka import KafkaProducer

from bench.corpus import percentile, save_result
from bench.folder_ingest import bare_model, pipeline_chunks
from bench.kafka_ingest import PARTITIONS, applied_all, bulk, kafka_bench, wait
from ingest_worker.embedding import SentenceTransformerEmbedder
from ingest_worker.settings import Settings
from ingest_worker.sources.kafka import events as kafka_events
from ingest_worker.sources.kafka.client import end_offsets

ORDER_DOCS, ORDER_EDITS = 200, 5


def drain_and_order(producer: KafkaProducer, settings: Settings, url: str) -> dict[str, Any]:
    """After the burst: its per-document freshness, then the order check."""
    topic = settings.kafka_topic
    with psycopg.connect(url) as conn:
        ages = [
            float(r[0]) for r in conn.execute(
                "SELECT extract(epoch FROM indexed_at - event_time) * 1000 FROM documents "
                "WHERE doc_id LIKE '%%.html' AND event_time IS NOT NULL"
            )
        ]  # fmt: skip
    # Versionless edits interleaved across documents: the last one sent must win.
    rng = random.Random(len(ages))
    last: dict[str, str] = {}
    for e in range(ORDER_EDITS):
        for d in range(ORDER_DOCS):
            doc_id, text = f"order-{d:03d}", f"Order check {d} edit {e} {rng.random():.6f}."
            key, value = kafka_events.encode(doc_id, text=text, content_type="text/plain")
            producer.send(topic, key=key, value=value)
            last[doc_id] = text
    producer.flush()
    wait(lambda: applied_all(url, topic, end_offsets(settings, topic)))
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT doc_id, string_agg(text, '') FROM chunks "
            "WHERE doc_id LIKE 'order-%%' GROUP BY 1"
        ).fetchall()
    indexed: dict[str, str] = dict(rows)
    return {
        "burst_freshness_ms_p50": round(percentile(ages, 50)),
        "burst_freshness_ms_p99": round(percentile(ages, 99)),
        "order_documents": ORDER_DOCS,
        "order_edits_each": ORDER_EDITS,
        "documents_out_of_order": sum(1 for d, text in last.items() if indexed.get(d) != text),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=120)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    with kafka_bench("freshindex-scale-", args.files) as (work, files, broker, server_url):
        embedder = SentenceTransformerEmbedder()
        embedder.embed(["warm up"] * 32)
        bare = bare_model(embedder, pipeline_chunks(files, embedder))
        del embedder
        runs = [
            bulk(n, files, broker, server_url, work, topic=f"scale{n}", then=drain_and_order)
            for n in args.workers
        ]
    save_result(
        "kafka_scaling",
        {
            "corpus": f"postgresql-doc-15 HTML, first {len(files)} files, as Kafka events",
            "partitions": PARTITIONS,
            "bare_model_chunks_per_s": round(bare, 2),
            "runs": [{**r, "over_bare": round(r["chunks_per_s"] / bare, 3)} for r in runs],
        },
    )


if __name__ == "__main__":
    main()
