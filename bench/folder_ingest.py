"""Folder ingest benchmark: bare model vs end-to-end pipeline, freshness, chunks per edit.

    .venv/bin/python -m bench.folder_ingest [--files 120] [--edits 100]
    .venv/bin/python -m bench.folder_ingest --collection ../shared/ir/cranfield [--limit 1400]

Corpus: the first `--files` pages of the PostgreSQL manual, or a BEIR collection's documents
as one text file each. (a) bare-model throughput on exactly the chunks the pipeline produces,
one call, both for sentence-transformers on torch (what our peers run) and for the backend
freshindex chose (`FRESHINDEX_EMBED_BACKEND`, default auto), each before and after (b);
(b) end-to-end folder ingest into a fresh embedded Postgres (read, parse, chunk, embed,
commit), and (b) over each (a);
(c) freshness over single-file edits: file closed → hit visible through POST /v1/search over
real HTTP (found by keyword and by hybrid searches, every other edit each), idle and again
while other files are written at `--background-per-s` (default 5) a second; (d) chunks
embedded per one-paragraph edit. During (b) it also counts where the CPU went: seconds
inside the model's calls, CPU seconds of Postgres and of this process, and the bound they
set on (b) over the bare backend when the model fills every core (see
`overlap_bound`). Results go to bench/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from bench.corpus import copy_files, p50_p99_ms, postgres_manual, save_result
from bench.cpu import own_cpu_s, postgres_cpu_s
from bench.retrieval import load as load_collection
from ingest_worker import database, embedding_backends, migrations, reindex
from ingest_worker.chunking import split
from ingest_worker.embedding import (
    DEFAULT_MODEL,
    Embedder,
    SentenceTransformerEmbedder,
    Vector,
)
from ingest_worker.errors import PoisonInput
from ingest_worker.parsing import parse
from ingest_worker.pipeline import Pipeline
from ingest_worker.settings import Settings
from ingest_worker.sources.folder.paths import make_roots
from ingest_worker.sources.folder.watcher import FolderWorker
from ingest_worker.store import Store
from query_api.app import create_app


def pipeline_chunks(files: list[Path], embedder: Embedder) -> list[str]:
    """The distinct texts the pipeline will embed for these files."""
    texts: dict[bytes, str] = {}
    for path in files:
        try:
            doc = parse(path.read_bytes(), filename=path.name)
        except PoisonInput:
            continue
        for c in split(doc.blocks, embedder.count_tokens, max_tokens=embedder.max_tokens):
            texts.setdefault(c.hash, c.embed_text)
    return list(texts.values())


def write_collection(collection: Path, root: Path, limit: int | None) -> list[Path]:
    """One text file per document of a BEIR collection."""
    root.mkdir(parents=True)
    files = []
    for doc_id, text in load_collection(collection, limit).corpus.items():
        path = root / f"doc-{doc_id}.txt"
        path.write_text(text, encoding="utf-8")
        files.append(path)
    return files


def bare_models(cache_dir: Path) -> tuple[Embedder, Embedder, str]:
    """The model as our peers run it (torch) and as the workers do (the backend
    FRESHINDEX_EMBED_BACKEND picks, default auto), both warmed up, and that backend's name."""
    torch = SentenceTransformerEmbedder()
    embedder = embedding_backends.load(
        DEFAULT_MODEL, Settings().embed_backend, embedding_backends.Options(cache_dir=cache_dir)
    )
    for model in (torch, embedder):
        model.embed(["warm up the model"] * 32)
    return torch, embedder, getattr(embedder, "backend", "torch")


def bare_model(embedder: Embedder, texts: list[str]) -> float:
    started = time.perf_counter()
    embedder.embed(texts)
    return len(texts) / (time.perf_counter() - started)


class TimedEmbedder:
    """An embedder that adds up the seconds spent in its model calls."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_name, self.dimensions = inner.model_name, inner.dimensions
        self.max_tokens = inner.max_tokens
        self.seconds = 0.0

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        started = time.perf_counter()
        try:
            return self.inner.embed(texts)
        finally:
            self.seconds += time.perf_counter() - started

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)


def overlap_bound(bare_s: float, other_cpu_s: float, cores: int) -> float:
    """The most (b) can reach of the bare backend if all other work ran beside the model:
    the bare model keeps every core busy for `bare_s`, so `other_cpu_s` more CPU seconds
    need at least other_cpu_s / cores more wall time."""
    return bare_s / (bare_s + other_cpu_s / cores)


def serve(url: str, embedder: Embedder, port: int) -> uvicorn.Server:
    app = create_app(url, lambda: embedding_backends.for_queries(embedder))  # as `api` does
    config = uvicorn.Config(app, port=port, log_level="warning")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server


def stats(client: httpx.Client) -> dict[str, Any]:
    return dict(client.get("/v1/stats").json())


def measure_freshness(
    client: httpx.Client, files: list[Path], root: Path, edits: int, tag: str = ""
) -> tuple[dict[str, list[float]], list[int]]:
    """Edit one paragraph of one file at a time; time until a search finds the edit,
    searching every 10 ms in keyword mode (a token lookup) on even edits and in hybrid mode
    on odd ones (each hybrid search embeds the query beside the worker's embedding of the
    edit: that probe slows what it measures). `tag` keeps each run's probe words new."""
    latencies: dict[str, list[float]] = {"keyword": [], "hybrid": []}
    embedded = []
    for i in range(edits):
        path = files[i % len(files)]
        token = f"zq{tag}{i}probe"
        text = path.read_text(encoding="utf-8", errors="replace")
        probe = f"Freshness probe {token}. "
        edited = text.replace("<p>", f"<p>{probe}", 1) if "<p>" in text else probe + text
        mode = "keyword" if i % 2 == 0 else "hybrid"
        body = {
            "query": f"Freshness probe {token}",
            "k": 100,
            "mode": mode,
            "filter": {"doc_id_prefix": path.relative_to(root).as_posix()},
        }
        before = stats(client)["chunks_embedded_total"]
        path.write_text(edited, encoding="utf-8")
        closed = time.perf_counter()
        while True:
            hits = client.post("/v1/search", json=body).json()["hits"]
            if any(token in h["text"] for h in hits):
                break
            time.sleep(0.01)
        latencies[mode].append((time.perf_counter() - closed) * 1000)
        embedded.append(stats(client)["chunks_embedded_total"] - before)
    return latencies, embedded


@contextlib.contextmanager
def background_writes(folder: Path, per_s: float) -> Iterator[list[Path]]:
    """Files of three paragraphs written into `folder` at `per_s` a second (200 distinct
    files, rewritten in turn, each with new text) while the block runs; yields the list of
    writes made so far."""
    folder.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    written: list[Path] = []

    def write() -> None:
        while not stop.wait(1 / per_s):
            i = len(written)
            text = "\n\n".join(f"Background file {i} paragraph {j} about load." for j in range(3))
            path = folder / f"bg-{i % 200}.txt"
            path.write_text(text, encoding="utf-8")
            written.append(path)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        yield written
    finally:
        stop.set()
        writer.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=120, help="HTML files of the manual")
    parser.add_argument("--edits", type=int, default=100, help="single-file edits to time")
    parser.add_argument("--collection", type=Path, default=None, help="A BEIR collection.")
    parser.add_argument("--limit", type=int, default=None, help="Its first N documents.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--background-per-s",
        type=float,
        default=5,
        help="Files written per second elsewhere in the folder while (c) runs again.",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="freshindex-bench-"))
    root = work / "corpus"
    if args.collection:
        files = write_collection(args.collection, root, args.limit)
        corpus = f"{args.collection.name}, {len(files)} documents"
    else:
        files = copy_files(postgres_manual(), root, args.files)
        corpus = f"postgresql-doc-15 HTML, first {len(files)} files"
    url = database.start_embedded(work / "data")
    with database.connect(url) as conn:
        migrations.apply(conn)
    torch, embedder, chosen = bare_models(work / "models")

    texts = pipeline_chunks(files, embedder)
    torch_before = bare_model(torch, texts)
    bare_before = bare_model(embedder, texts)

    store = Store(database.connect(url), embedder.model_name)
    reindex.activate(store.conn, store.model, embedder.dimensions)
    timed = TimedEmbedder(embedder)
    pipeline = Pipeline(store, timed)
    worker = FolderWorker(make_roots([root]), pipeline, debounce_s=0.3, progress=True)
    postgres_before, own_before = postgres_cpu_s(work / "data"), own_cpu_s()
    started = time.perf_counter()
    report = worker.run(threading.Event(), once=True)
    ingest_s = time.perf_counter() - started
    postgres_s = postgres_cpu_s(work / "data") - postgres_before
    own_s = own_cpu_s() - own_before
    pipeline.embedder = embedder
    end_to_end = report.chunks_embedded / ingest_s
    bare_after = bare_model(embedder, texts)
    torch_after = bare_model(torch, texts)
    bare = (bare_before + bare_after) / 2
    torch_bare = (torch_before + torch_after) / 2

    server = serve(url, embedder, args.port)
    stop = threading.Event()
    live = FolderWorker(make_roots([root]), pipeline, debounce_s=0.3)
    thread = threading.Thread(target=live.run, args=(stop,), daemon=True)
    thread.start()
    with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=30) as client:
        latencies, embedded = measure_freshness(client, files, root, args.edits)
        with background_writes(root / "background", args.background_per_s) as written:
            loaded, _ = measure_freshness(client, files, root, args.edits, tag="load")
    with database.connect(url) as conn:  # the load was real: its files were indexed
        row = conn.execute(
            "SELECT count(*) FROM documents WHERE starts_with(doc_id, 'background/')"
        ).fetchone()
    background_indexed = row[0] if row else 0
    stop.set()
    thread.join()
    server.should_exit = True

    result = {
        "corpus": corpus,
        "backend": chosen,
        "chunks": len(texts),
        "tokens_per_chunk_mean": statistics.mean(embedder.count_tokens(texts)),
        "a_bare_torch_chunks_per_s": round(torch_bare, 2),
        "a_bare_torch_runs": [round(torch_before, 2), round(torch_after, 2)],
        "a_bare_backend_chunks_per_s": round(bare, 2),
        "a_bare_backend_runs": [round(bare_before, 2), round(bare_after, 2)],
        "b_end_to_end_chunks_per_s": round(end_to_end, 2),
        "b_end_to_end_seconds": round(ingest_s, 1),
        "b_over_bare_torch": round(end_to_end / torch_bare, 3),
        "b_over_bare_backend": round(end_to_end / bare, 3),
        "b_seconds_in_model_calls": round(timed.seconds, 1),
        "b_postgres_cpu_s": round(postgres_s, 1),
        "b_worker_process_cpu_s": round(own_s, 1),
        "b_bound_over_bare_backend_postgres_only": round(
            overlap_bound(report.chunks_embedded / bare, postgres_s, os.cpu_count() or 1), 3
        ),
        **p50_p99_ms("c_freshness_keyword_probe", latencies["keyword"]),
        **p50_p99_ms("c_freshness_hybrid_probe", latencies["hybrid"]),
        "c_edits": sum(len(times) for times in latencies.values()),
        **p50_p99_ms("c_loaded_freshness_keyword_probe", loaded["keyword"]),
        **p50_p99_ms("c_loaded_freshness_hybrid_probe", loaded["hybrid"]),
        "c_loaded_background_files_per_s": args.background_per_s,
        "c_loaded_background_writes": len(written),
        "c_loaded_background_files_indexed": background_indexed,
        "d_chunks_embedded_per_edit_mean": statistics.mean(embedded),
        "d_chunks_embedded_per_edit_max": max(embedded),
        "outcomes": dict(report.outcomes),
    }
    save_result("folder_ingest", result)


if __name__ == "__main__":
    main()
