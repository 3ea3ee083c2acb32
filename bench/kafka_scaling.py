"""Kafka scale-out on one machine: 1, 2 and 4 `freshindex worker kafka` processes in one group
on an 8-partition topic. Per worker count: bulk throughput (the PostgreSQL manual's pages as
one burst), freshness of that burst (Kafka timestamp → committed, per document), and whether
per-document order held (versionless edits, so only delivery order decides the winner).

    .venv/bin/python -m bench.kafka_scaling [--files 120] [--workers 1 2 4]
"""

from __future__ import annotations

import argparse
import random
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaProducer

from bench.corpus import postgres_manual, save_result
from bench.folder_ingest import bare_model, percentile, pipeline_chunks
from bench.kafka_ingest import applied_all, counter, fresh_database, start_workers, wait, worker_env
from ingest_worker import database, kafka_events
from ingest_worker.embedding import SentenceTransformerEmbedder
from ingest_worker.kafka_client import end_offsets, ensure_topic
from ingest_worker.settings import Settings
from kafka_dev.broker import Broker

PARTITIONS = 8
ORDER_DOCS, ORDER_EDITS = 200, 5


def run(
    workers: int, files: list[Path], broker: Broker, server_url: str, work: Path
) -> dict[str, Any]:
    topic = f"scale{workers}"
    url = fresh_database(work, topic, server_url)
    settings = Settings(kafka_bootstrap_servers=broker.bootstrap, kafka_topic=topic)
    ensure_topic(settings, topic, PARTITIONS)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=20,
                             max_request_size=8 * 1024 * 1024)  # fmt: skip
    processes = start_workers(workers, worker_env(url, broker, topic), work)
    for p in range(PARTITIONS):  # settle: every partition assigned and consumed once
        key, value = kafka_events.encode(f"warmup-{p}", text="warm up", content_type="text/plain")
        producer.send(topic, key=key, value=value, partition=p)
    producer.flush()
    wait(lambda: applied_all(url, topic, end_offsets(settings, topic)))

    embedded_before = counter(url, "chunks_embedded_total")
    started = time.perf_counter()
    for path in files:
        key, value = kafka_events.encode(
            path.name, content=path.read_bytes(), content_type="text/html"
        )
        producer.send(topic, key=key, value=value)
    producer.flush()
    ends = end_offsets(settings, topic)
    wait(lambda: applied_all(url, topic, ends))
    seconds = time.perf_counter() - started
    chunks = counter(url, "chunks_embedded_total") - embedded_before
    with psycopg.connect(url) as conn:
        ages = [
            float(r[0]) for r in conn.execute(
                "SELECT extract(epoch FROM indexed_at - event_time) * 1000 FROM documents "
                "WHERE doc_id LIKE '%%.html' AND event_time IS NOT NULL"
            )
        ]  # fmt: skip

    # Order: versionless edits interleaved across documents; the last sent must win.
    rng = random.Random(workers)
    last: dict[str, str] = {}
    edits = [(d, e) for e in range(ORDER_EDITS) for d in range(ORDER_DOCS)]
    for d, e in edits:
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
    indexed = dict(rows)
    out_of_order = sum(1 for doc_id, text in last.items() if indexed.get(doc_id) != text)

    for process in processes:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    producer.close()
    return {
        "workers": workers,
        "chunks": chunks,
        "seconds": round(seconds, 1),
        "chunks_per_s": round(chunks / seconds, 2),
        "burst_freshness_ms_p50": round(percentile(ages, 50)),
        "burst_freshness_ms_p99": round(percentile(ages, 99)),
        "order_documents": ORDER_DOCS,
        "order_edits_each": ORDER_EDITS,
        "documents_out_of_order": out_of_order,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=120)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="freshindex-scale-"))
    files = sorted(postgres_manual().glob("*.html"))[: args.files]
    broker = Broker(work / "kafka").start()
    server_url = database.start_embedded(work / "pg")
    try:
        embedder = SentenceTransformerEmbedder()
        embedder.embed(["warm up"] * 32)
        bare = bare_model(embedder, pipeline_chunks(files, embedder))
        del embedder
        runs = [run(n, files, broker, server_url, work) for n in args.workers]
    finally:
        broker.stop()
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
