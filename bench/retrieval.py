"""Retrieval quality of every search mode on a BEIR-format collection, beside a reference BM25.

    .venv/bin/python -m bench.retrieval [--collection ../shared/ir/cranfield] [--limit N]

The corpus goes through the real ingest path: one file per document in a folder, indexed by
`freshindex worker folder DIR --once` into a fresh embedded Postgres. Queries go over HTTP to
a `freshindex api` process (`group_by: document`, k = 100). Beside them, the reference: BM25
by the `bm25s` library (English stop words, the Snowball English stemmer that Postgres'
`english` configuration also uses, the same k1 and b) over exactly the chunks in the index,
a document scoring as its best chunk. Reported: nDCG@10 and recall@100 (ir-measures), and
search latency p50/p99 over HTTP, per mode. Results go to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.corpus import percentile, save_result
from bench.processes import FRESHINDEX
from ingest_worker import database

CRANFIELD = Path(__file__).resolve().parents[2] / "shared" / "ir" / "cranfield"
MODES = ("vector", "keyword", "hybrid")
DEPTH = 100  # recall@100 needs 100 documents per query
Run = dict[str, dict[str, float]]  # query id → doc id → score


@dataclass(frozen=True, slots=True)
class Collection:
    corpus: dict[str, str]  # doc id → text (title and body)
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id → doc id → relevance


def load(directory: Path, limit: int | None = None) -> Collection:
    """A BEIR collection (corpus.jsonl, queries.jsonl, qrels.tsv or qrels/test.tsv). With
    `limit`, the first `limit` documents and the queries judged on them."""
    corpus: dict[str, str] = {}
    with (directory / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            doc = json.loads(line)
            text = "\n\n".join(part for part in (doc.get("title"), doc.get("text")) if part)
            if text.strip():  # an empty document cannot be retrieved, nor indexed
                corpus[str(doc["_id"])] = text
            if limit is not None and len(corpus) == limit:
                break
    qrels: dict[str, dict[str, int]] = {}
    qrels_file = directory / "qrels.tsv"
    if not qrels_file.exists():
        qrels_file = directory / "qrels" / "test.tsv"
    for row in qrels_file.read_text(encoding="utf-8").splitlines()[1:]:
        query_id, doc_id, score = row.split("\t")
        if doc_id in corpus and int(score) > 0:
            qrels.setdefault(query_id, {})[doc_id] = int(score)
    with (directory / "queries.jsonl").open(encoding="utf-8") as lines:
        queries = {str(q["_id"]): q["text"] for q in map(json.loads, lines) if q["_id"] in qrels}
    return Collection(corpus, queries, {q: qrels[q] for q in queries})


def write_folder(collection: Collection, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for doc_id, text in collection.corpus.items():
        (folder / f"{doc_id}.txt").write_text(text, encoding="utf-8")


@contextmanager
def running_api(env: Mapping[str, str], port: int, log: Path) -> Iterator[httpx.Client]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [FRESHINDEX, "api", "--port", str(port)],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            deadline = time.monotonic() + 300
            while not _ready(client):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the API did not start; see {log}")
                time.sleep(0.2)
            yield client
    finally:
        process.terminate()
        process.wait(timeout=60)


def _ready(client: httpx.Client) -> bool:
    try:
        return client.get("/readyz").status_code == 200
    except httpx.HTTPError:
        return False


def search_all(
    client: httpx.Client, queries: Mapping[str, str], mode: str
) -> tuple[Run, list[float]]:
    run: Run = {}
    latencies: list[float] = []
    for query_id, text in queries.items():
        body = {"query": text, "k": DEPTH, "mode": mode, "group_by": "document",
                "chunks_per_document": 1}  # fmt: skip
        started = time.perf_counter()
        response = client.post("/v1/search", json=body)
        latencies.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        hits = response.json()["hits"]
        run[query_id] = {_doc(h["doc_id"]): h["score"] for h in hits}
    return run, latencies


def _doc(doc_id: str) -> str:
    return doc_id.removesuffix(".txt")


def reference_bm25(
    chunks: list[tuple[str, str]], queries: Mapping[str, str], k1: float, b: float
) -> Run:
    """bm25s over the chunk texts; a document scores as its best chunk."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    tokens = bm25s.tokenize([t for _, t in chunks], stopwords="en", stemmer=stemmer,
                            show_progress=False)  # fmt: skip
    index = bm25s.BM25(k1=k1, b=b, method="lucene")
    index.index(tokens, show_progress=False)
    run: Run = {}
    for query_id, text in queries.items():
        query = bm25s.tokenize(text, stopwords="en", stemmer=stemmer, show_progress=False,
                               return_ids=False)[0]  # fmt: skip
        scores: list[float] = list(index.get_scores(query)) if query else []
        best: dict[str, float] = {}
        for (doc_id, _), score in zip(chunks, scores, strict=False):
            if score > 0 and score > best.get(doc_id, 0.0):
                best[doc_id] = float(score)
        top = sorted(best.items(), key=lambda item: item[1], reverse=True)[:DEPTH]
        run[query_id] = dict(top)
    return run


def indexed_chunks(url: str) -> list[tuple[str, str]]:
    """(doc id, the text keyword search indexes: heading and text) of every chunk."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT doc_id, heading || ' ' || text FROM chunks ORDER BY id")
        return [(_doc(doc_id), text) for doc_id, text in rows]


def quality(qrels: dict[str, dict[str, int]], run: Run) -> dict[str, float]:
    import ir_measures
    from ir_measures import R, nDCG

    scores = ir_measures.calc_aggregate([nDCG @ 10, R @ 100], qrels, run)
    return {"ndcg@10": round(scores[nDCG @ 10], 4), "recall@100": round(scores[R @ 100], 4)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collection", type=Path, default=CRANFIELD)
    parser.add_argument("--limit", type=int, default=None, help="Only the first N documents.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--k1", type=float, default=1.2)
    parser.add_argument("--b", type=float, default=0.75)
    parser.add_argument("--results", type=Path, default=None, help="Default: bench/results/.")
    parser.add_argument(
        "--tmp", type=Path, default=None, help="Where its scratch folder goes (default: TMPDIR)."
    )
    args = parser.parse_args(argv)
    collection = load(args.collection, args.limit)
    work = Path(tempfile.mkdtemp(prefix="freshindex-retrieval-", dir=args.tmp))
    try:
        env = {"FRESHINDEX_DATA_DIR": str(work / "data"), "FRESHINDEX_LOG_LEVEL": "WARNING",
               "FRESHINDEX_BM25_K1": str(args.k1), "FRESHINDEX_BM25_B": str(args.b)}  # fmt: skip
        env.pop("DATABASE_URL", None)
        write_folder(collection, work / "corpus")
        print(f"{len(collection.corpus)} documents, {len(collection.queries)} queries; indexing")
        started = time.perf_counter()
        subprocess.run(
            [FRESHINDEX, "worker", "folder", str(work / "corpus"), "--once"],
            env={**{k: v for k, v in os.environ.items() if k != "DATABASE_URL"}, **env},
            check=True,
        )
        ingest_s = time.perf_counter() - started
        result: dict[str, Any] = {
            "collection": str(args.collection),
            "documents": len(collection.corpus),
            "queries": len(collection.queries),
            "k1": args.k1,
            "b": args.b,
            "ingest_s": round(ingest_s, 1),
        }
        with running_api(env, args.port, work / "api.log") as client:
            url = database.start_embedded(work / "data")
            chunks = indexed_chunks(url)
            result["chunks"] = len(chunks)
            for mode in MODES:
                search_all(client, dict(list(collection.queries.items())[:5]), mode)  # warm up
                run, latencies = search_all(client, collection.queries, mode)
                result[mode] = {**quality(collection.qrels, run),
                                "p50_ms": round(percentile(latencies, 50), 1),
                                "p99_ms": round(percentile(latencies, 99), 1)}  # fmt: skip
            reference = reference_bm25(chunks, collection.queries, args.k1, args.b)
            result["reference_bm25 (bm25s)"] = quality(collection.qrels, reference)
    finally:  # the in-process attachment would otherwise keep the server up after its folder
        database.stop_embedded(work / "data")
        shutil.rmtree(work, ignore_errors=True)
    save_result("retrieval", result, args.results)
    return result


if __name__ == "__main__":
    main()
