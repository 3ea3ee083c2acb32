"""Kafka ingest benchmark: bulk throughput vs the bare model (1 and 2 workers), and
publish → searchable freshness under a steady background load.

    .venv/bin/python -m bench.kafka_ingest [--files 120] [--probes 100] [--freshness-only]

Genuine Apache Kafka (kafka_dev), embedded Postgres, `freshindex worker kafka` processes.
Bulk: the worker(s) start and settle on an 8-partition topic, then the PostgreSQL manual's
HTML files are published as one burst of events (content_base64, text/html); throughput =
chunks embedded / (first send → every event applied). The bare model encodes exactly the
chunks the pipeline makes of those files in the same run, before and after: with torch
(what our peers run) and with the backend the workers use (`FRESHINDEX_EMBED_BACKEND`,
default auto). Freshness: one worker, probes published one at a time, idle and beside 5
background events/s; every other probe is found by searching again every 5 ms, the others by
one search that waits for the probe's Kafka position (read-your-writes).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from kafka import KafkaProducer
from psycopg import sql

from bench.corpus import p50_p99_ms, postgres_manual, save_result
from bench.folder_ingest import bare_model, bare_models, pipeline_chunks, serve
from bench.processes import FRESHINDEX
from ingest_worker import database, embedding_backends, migrations
from ingest_worker.change_log import applied_positions
from ingest_worker.embedding import DEFAULT_MODEL, Embedder
from ingest_worker.positions import caught_up
from ingest_worker.settings import Settings
from ingest_worker.sources.kafka import events as kafka_events
from ingest_worker.sources.kafka.client import end_offsets, ensure_topic
from kafka_dev.broker import Broker

PARTITIONS = 8


@contextmanager
def kafka_bench(prefix: str, file_count: int) -> Iterator[tuple[Path, list[Path], Broker, str]]:
    """(work folder, the manual's first HTML files, a running broker, the embedded server)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    files = sorted(postgres_manual().glob("*.html"))[:file_count]
    broker = Broker(work / "kafka").start()
    try:
        yield work, files, broker, database.start_embedded(work / "pg")
    finally:
        broker.stop()


def fresh_database(work: Path, name: str, server_url: str) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(server_url, dbname=name)
    with database.connect(url) as conn:
        migrations.apply(conn)
    return url


def applied_all(url: str, topic: str, ends: dict[int, int]) -> bool:
    """Every offset below `ends` (partition → next offset) is applied in the index."""
    time.sleep(0.25)  # polling lightly: the worker needs the CPU
    with psycopg.connect(url) as conn:
        return caught_up(applied_positions(conn, kafka_events.source_name(topic)), ends)


def counter(url: str, name: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT value FROM counters WHERE name = %s", (name,)).fetchone()
    return int(row[0]) if row else 0


def start_workers(n: int, env: dict[str, str], logs: Path) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(
            [FRESHINDEX, "worker", "kafka"],
            env={**os.environ, **env},
            stdout=(logs / f"worker{i}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for i in range(n)
    ]


def wait(predicate: Any, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.1)


def worker_env(url: str, broker: Broker, topic: str, work: Path) -> dict[str, str]:
    # The workers share the bench's model export and backend choice (timed once, in its folder).
    return {
        "FRESHINDEX_MODEL_CACHE_DIR": str(work / "models"),
        "DATABASE_URL": url,
        "FRESHINDEX_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "FRESHINDEX_KAFKA_TOPIC": topic,
        "FRESHINDEX_KAFKA_GROUP_ID": topic,
        "FRESHINDEX_KAFKA_PARTITIONS": str(PARTITIONS),
        "FRESHINDEX_KAFKA_SESSION_TIMEOUT_S": "6",
        "FRESHINDEX_LOG_LEVEL": "WARNING",
    }


# More measurements on the same run, while its workers are still up: (producer, settings,
# database URL) → more result fields.
Then = Callable[[KafkaProducer, Settings, str], dict[str, Any]]


def bulk(
    workers: int,
    files: list[Path],
    broker: Broker,
    server_url: str,
    work: Path,
    *,
    topic: str | None = None,
    then: Then | None = None,
) -> dict[str, Any]:
    topic = topic or f"bulk{workers}"
    url = fresh_database(work, topic, server_url)
    env = worker_env(url, broker, topic, work)
    settings = Settings(kafka_bootstrap_servers=broker.bootstrap, kafka_topic=topic)
    ensure_topic(settings, topic, PARTITIONS)
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap,
        acks="all",
        linger_ms=20,
        max_request_size=8 * 1024 * 1024,
    )
    processes = start_workers(workers, env, work)
    for p in range(PARTITIONS):  # settle: every partition assigned and consumed once
        key, value = kafka_events.encode(f"warmup-{p}", text="warm up", content_type="text/plain")
        producer.send(topic, key=key, value=value, partition=p)
    producer.flush()
    ends = end_offsets(settings, topic)
    wait(lambda: applied_all(url, topic, ends))
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
    result = {
        "workers": workers,
        "chunks": chunks,
        "seconds": round(seconds, 1),
        "chunks_per_s": round(chunks / seconds, 2),
        **(then(producer, settings, url) if then else {}),
    }
    for process in processes:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    producer.close()
    return result


def freshness(
    probes: int,
    broker: Broker,
    server_url: str,
    work: Path,
    embedder: Embedder,
    background_per_s: int,
) -> dict[str, Any]:
    topic = f"fresh-{background_per_s}"
    url = fresh_database(work, topic, server_url)
    env = worker_env(url, broker, topic, work)
    ensure_topic(Settings(kafka_bootstrap_servers=broker.bootstrap), topic, PARTITIONS)
    processes = start_workers(1, env, work)
    port = 8766 + background_per_s
    server = serve(url, embedder, port)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=0)
    stop = threading.Event()

    def background() -> None:  # documents of 3 paragraphs each, at the given rate
        i = 0
        while background_per_s and not stop.is_set():
            text = "\n\n".join(
                f"Background document {i} paragraph {j} about load." for j in range(3)
            )
            key, value = kafka_events.encode(f"bg-{i % 200}", text=text, content_type="text/plain")
            producer.send(topic, key=key, value=value)
            i += 1
            time.sleep(1 / background_per_s)

    threading.Thread(target=background, daemon=True).start()
    latencies: dict[str, list[float]] = {"polling": [], "read_your_writes": []}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        warm = {"query": "warm", "k": 1, "filter": {"doc_id_prefix": "probe-warm"}}
        key, value = kafka_events.encode("probe-warm", text="warm probe", content_type="text/plain")
        producer.send(topic, key=key, value=value)
        wait(lambda: client.post("/v1/search", json=warm).json()["hits"])
        for i in range(probes):
            way = "polling" if i % 2 == 0 else "read_your_writes"
            latencies[way].append(_probe(client, producer, topic, i, way))
            time.sleep(0.1)
    stop.set()
    server.should_exit = True
    for process in processes:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    return {
        "probes": probes,
        **_publish_to_commit(url),
        **p50_p99_ms("polling", latencies["polling"]),
        **p50_p99_ms("read_your_writes", latencies["read_your_writes"]),
        "background_events_per_s": background_per_s,
    }


def _search(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    return dict(client.post("/v1/search", json=body).json())


def _publish_to_commit(url: str) -> dict[str, float]:
    """How long the probes took from the producer's timestamp (kafka-python stamps it at
    send) to the worker's change row (written in the commit's transaction, just before
    COMMIT): the part of publish → searchable that is Kafka and the worker."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            """SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY ms)
               FROM (SELECT extract(epoch FROM c.indexed_at - d.event_time) * 1000 AS ms
                     FROM documents d JOIN changes c USING (tenant, doc_id)
                     WHERE d.doc_id LIKE 'probe-%' AND d.doc_id <> 'probe-warm') probes"""
        ).fetchone()
    assert row is not None
    p50, p99 = row[0]
    return {"publish_to_commit_p50_ms": round(p50, 1), "publish_to_commit_p99_ms": round(p99, 1)}


def _probe(client: httpx.Client, producer: KafkaProducer, topic: str, i: int, way: str) -> float:
    """Milliseconds from publishing a probe document until a search returns it: searching
    again every 5 ms ("polling": what any client can do, and it adds up to one search's
    time), or one search that waits for the message's position ("read_your_writes": the
    API answers when the worker's commit notifies it)."""
    token = f"zq{i}probe"
    key, value = kafka_events.encode(
        f"probe-{i}", text=f"Freshness probe {token}.", content_type="text/plain"
    )
    body: dict[str, Any] = {"query": token, "k": 5, "filter": {"doc_id_prefix": f"probe-{i}"}}
    sent = time.perf_counter()
    written = producer.send(topic, key=key, value=value).get(10)
    if way == "read_your_writes":
        position = {"topic": topic, "partition": written.partition, "offset": written.offset}
        body |= {"wait_for": [position], "wait_timeout_ms": 10_000}
    while True:
        answer = _search(client, body)
        if any(token in hit["text"] for hit in answer["hits"]):
            break
        if way == "read_your_writes":
            why = "timed out waiting" if not answer["fresh"] else "was answered without it"
            raise SystemExit(f"probe {i}: a search that waited for its position {why}")
        time.sleep(0.005)
    return (time.perf_counter() - sent) * 1000


def freshness_idle_and_loaded(
    probes: int, broker: Broker, server_url: str, work: Path
) -> dict[str, Any]:
    embedder = embedding_backends.load(  # the API's: `serve` puts it on its query lane
        DEFAULT_MODEL, "auto", embedding_backends.Options(cache_dir=work / "models")
    )
    return {
        "idle": freshness(probes, broker, server_url, work, embedder, 0),
        "under_load": freshness(probes, broker, server_url, work, embedder, 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=120)
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument(
        "--freshness-only", action="store_true", help="Measure publish → searchable only."
    )
    args = parser.parse_args()
    with kafka_bench("freshindex-kbench-", args.files) as (work, files, broker, server_url):
        if args.freshness_only:
            save_result(
                "kafka_freshness", freshness_idle_and_loaded(args.probes, broker, server_url, work)
            )
            return
        torch, embedder, backend = bare_models(work / "models")  # timed before and after
        models = {"torch": torch, "backend": embedder}
        texts = pipeline_chunks(files, embedder)
        runs = {name: [bare_model(model, texts)] for name, model in models.items()}
        one = bulk(1, files, broker, server_url, work)
        two = bulk(2, files, broker, server_url, work)
        for name, model in reversed(models.items()):
            runs[name].append(bare_model(model, texts))
        del torch, embedder, models
        fresh = freshness_idle_and_loaded(args.probes, broker, server_url, work)
    bare = {name: sum(r) / len(r) for name, r in runs.items()}
    result: dict[str, Any] = {
        "corpus": f"postgresql-doc-15 HTML, first {len(files)} files, as Kafka events",
        "backend": backend,
        "chunks": len(texts),
        "bulk_1_worker": one,
        "bulk_2_workers": two,
        "freshness": fresh,
    }
    for name in bare:
        result[f"bare_{name}_chunks_per_s"] = round(bare[name], 2)
        result[f"bare_{name}_runs"] = [round(r, 2) for r in runs[name]]
        for workers, measured in (("1_worker", one), ("2_workers", two)):
            result[f"bulk_{workers}_over_bare_{name}"] = round(
                measured["chunks_per_s"] / bare[name], 3
            )
    save_result("kafka_ingest", result)


if __name__ == "__main__":
    main()
