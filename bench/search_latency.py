"""Search latency over HTTP at ≥ 100k chunks, without and with concurrent ingest.

    .venv/bin/python -m bench.search_latency [--chunks 100000] [--queries 200] [--keep DIR]

Corpus: the PostgreSQL 15 and Python 3.11 manuals (Debian `postgresql-doc-15`,
`python3.11-doc`), chunked at 96 tokens to reach the target, embedded for real with
all-MiniLM-L6-v2 into a fresh embedded Postgres (HNSW, default m/ef). Then a `freshindex api`
process answers 200 queries (titles of random pages) per mode, one at a time: idle; then
while a `freshindex worker folder` process ingests `--pages` more pages; then while one
`freshindex up` process (API and worker on one model) ingests as many others. Each busy
phase also reports how fast ingest ran meanwhile. With `--keep DIR` the loaded index stays
in DIR, and a later run with the same DIR measures it again without reloading (loading takes
~20 minutes); the pages ingested while measuring are marked so that their chunks are new
texts, also in a kept index that holds them already, and the next run drops them again
(`chunks` in the result is what the index held while measuring idle).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.corpus import percentile, postgres_manual, save_result
from bench.processes import FRESHINDEX, serving
from ingest_worker import database, embedding_backends, migrations, reindex
from ingest_worker.embedding import DEFAULT_MODEL
from ingest_worker.events import DocumentEvent, Op
from ingest_worker.parsing import parse
from ingest_worker.pipeline import Pipeline
from ingest_worker.settings import Settings
from ingest_worker.store import Store

PYTHON_DOCS = Path("/usr/share/doc/python3.11/html")


def corpus() -> list[Path]:
    if not PYTHON_DOCS.is_dir():
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "python3.11-doc"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    return sorted(postgres_manual().glob("*.html")) + sorted(PYTHON_DOCS.rglob("*.html"))


def load(pipeline: Pipeline, files: list[Path], target: int) -> tuple[int, float, list[Path]]:
    """Index files until the index holds `target` chunks; returns chunks, seconds, leftovers."""
    started = time.perf_counter()
    done = 0
    for start in range(0, len(files), 64):
        batch = files[start : start + 64]
        pipeline.process(
            [
                DocumentEvent(
                    doc_id=str(f),
                    op=Op.UPSERT,
                    source="bench",
                    content=f.read_bytes(),
                    filename=f.name,
                )
                for f in batch
            ]
        )
        row = pipeline.store.conn.execute("SELECT count(*) FROM chunks").fetchone()
        done = int(row[0]) if row else 0
        print(f"{done} chunks after {start + len(batch)} files", file=sys.stderr)
        if done >= target:
            return done, time.perf_counter() - started, files[start + 64 :]
    return done, time.perf_counter() - started, []


MODES = {  # name → request fields
    "vector": {"mode": "vector"},
    "hybrid": {"mode": "hybrid"},
    "keyword": {"mode": "keyword"},
    "hybrid_by_document": {"mode": "hybrid", "group_by": "document"},
}


def latencies(client: httpx.Client, queries: list[str], fields: dict[str, str]) -> dict[str, float]:
    times = []
    for query in queries:
        started = time.perf_counter()
        response = client.post("/v1/search", json={"query": query, "k": 10, **fields})
        response.raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": round(percentile(times, 50), 1),
        "p99_ms": round(percentile(times, 99), 1),
        "mean_ms": round(statistics.mean(times), 1),
    }


def loaded_index(
    record: Path, url: str, files: list[Path], target: int
) -> tuple[int, float, list[Path]]:
    """Load `target` chunks (resuming, cheaply, where an interrupted load stopped), unless
    `record` says an earlier run loaded them; chunks, seconds and the files left over."""
    if record.exists():
        chunks, load_s, count = json.loads(record.read_text())
        return forget_ingested(url), load_s, files[count:]
    # The workers' backend (exact to torch's vectors by its check): loads ~2x faster than torch
    embedder = embedding_backends.load(
        DEFAULT_MODEL,
        Settings().embed_backend,
        embedding_backends.Options(cache_dir=record.parent / "models"),
    )
    store = Store(database.connect(url), embedder.model_name)
    reindex.activate(store.conn, store.model, embedder.dimensions)
    chunks, load_s, rest = load(Pipeline(store, embedder, chunk_max_tokens=96), files, target)
    record.write_text(json.dumps([chunks, load_s, len(files) - len(rest)]))
    return chunks, load_s, rest


def forget_ingested(url: str) -> int:
    """Drop what earlier runs' busy phases ingested into a kept index (documents of another
    source than the loader's "bench"), with their change rows and cached vectors, so that
    every run measures the index it loaded (and no cache collection runs while it measures);
    the chunks left."""
    with database.connect(url) as conn:
        dropped = conn.execute("DELETE FROM documents WHERE source <> 'bench'").rowcount
        if dropped:
            print(f"dropping {dropped} documents an earlier run ingested", file=sys.stderr)
            conn.execute(
                "DELETE FROM changes c WHERE NOT EXISTS "
                "(SELECT FROM documents d WHERE d.tenant = c.tenant AND d.doc_id = c.doc_id)"
            )
            conn.execute(
                "DELETE FROM embedding_cache e WHERE NOT EXISTS "
                "(SELECT FROM chunks c WHERE c.chunk_hash = e.chunk_hash)"
            )
            conn.execute("DELETE FROM cache_releases")
            conn.execute(
                "VACUUM ANALYZE documents, chunks, chunk_terms, bm25_totals, changes, "
                "embedding_cache"
            )
        row = conn.execute("SELECT count(*) FROM chunks").fetchone()
    return int(row[0]) if row else 0


_BLOCK_TAG = re.compile(r"<(p|li|dt|dd|td|pre|h[1-6])(\s[^>]*)?>")


def drop_marked(pages: list[Path], inbox: Path, mark: str) -> None:
    """Copy pages into `inbox` with `mark` opening each block, so that their chunks are new
    texts even where the index already holds these pages (their cached vectors would make
    the ingest a no-op)."""
    for number, page in enumerate(pages):  # numbered: the two manuals share some names
        text = page.read_text(encoding="utf-8", errors="replace")
        marked = _BLOCK_TAG.sub(lambda m: f"{m.group(0)}{mark} ", text)
        (inbox / f"{number:04d}-{page.name}").write_text(marked, encoding="utf-8")


def measure_during_ingest(
    client: httpx.Client, queries: list[str], pages: list[Path], inbox: Path
) -> dict[str, Any]:
    """Latency per mode while a worker ingests `pages` dropped into `inbox`, and how fast
    it ingested meanwhile."""
    before = client.get("/v1/stats").json()["chunks_embedded_total"]
    drop_marked(pages, inbox, f"zq{random.randrange(10**9)}")
    time.sleep(2)
    started = time.perf_counter()
    result: dict[str, Any] = {name: latencies(client, queries, f) for name, f in MODES.items()}
    seconds = time.perf_counter() - started
    embedded = client.get("/v1/stats").json()["chunks_embedded_total"] - before
    result["chunks_embedded_during_measurement"] = embedded
    result["ingest_chunks_per_s"] = round(embedded / seconds, 1)
    return result


def stop(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
        process.wait(300)  # a worker finishes the batch in hand


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--pages", type=int, default=400, help="Pages ingested per busy phase.")
    parser.add_argument("--seed", type=int, default=None, help="Which pages are ingested.")
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--keep", type=Path, help="Keep (or reuse) the loaded index here.")
    parser.add_argument(
        "--idle-only", action="store_true", help="Measure the idle phase only (~1 minute)."
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="Ask the queries this many times in the idle phase (a steadier p99).",
    )
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="freshindex-latency-"))
    url = database.start_embedded(work / "pg")
    with database.connect(url) as conn:
        migrations.apply(conn)
    files = corpus()
    random.Random(1).shuffle(files)
    chunks, load_s, rest = loaded_index(work / "loaded.json", url, files, args.chunks)
    rng = random.Random(2)
    queries = []
    for f in rng.sample(files[: len(files) - len(rest)], args.queries):
        title = parse(f.read_bytes(), filename=f.name).title or f.stem
        queries.append(title)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "FRESHINDEX_LOG_LEVEL": "WARNING",
        "FRESHINDEX_CHUNK_MAX_TOKENS": "96",
    }
    port = ["--port", str(args.port)]
    client = httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=60)

    api = subprocess.Popen([FRESHINDEX, "api", *port], env=env)
    serving(client, api)
    latencies(client, queries[:20], MODES["hybrid"])  # warm up
    asked = queries * args.rounds
    idle = {name: latencies(client, asked, fields) for name, fields in MODES.items()}
    if args.idle_only:
        stop(api)
        print(json.dumps({"chunks": chunks, "requests": len(asked), "idle": idle}, indent=2))
        return
    # An API process beside a worker process: each has the model to itself.
    inbox = Path(tempfile.mkdtemp(prefix="freshindex-latency-inbox-"))
    worker = subprocess.Popen([FRESHINDEX, "worker", "folder", str(inbox)], env=env)
    time.sleep(15)  # the worker loads its model
    pages = random.Random(args.seed).sample(files, 2 * args.pages)
    beside = measure_during_ingest(client, queries, pages[: args.pages], inbox)
    stop(worker, api)
    # `freshindex up`: the API and the worker in one process, on one model.
    inbox = Path(tempfile.mkdtemp(prefix="freshindex-latency-up-"))
    up = subprocess.Popen([FRESHINDEX, "up", "--watch", str(inbox), *port], env=env)
    serving(client, up)
    latencies(client, queries[:20], MODES["hybrid"])
    one_process = measure_during_ingest(client, queries, pages[args.pages :], inbox)
    stop(up)
    result: dict[str, Any] = {
        "chunks": chunks,
        "load_seconds": round(load_s),
        "queries": len(queries),
        "idle": idle,
        "during_ingest_api_and_worker_processes": beside,
        "during_ingest_one_up_process": one_process,
    }
    save_result("search_latency", result)


if __name__ == "__main__":
    main()
