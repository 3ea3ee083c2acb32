"""freshindex on the peers scenario (runs in the project's own .venv).

    .venv/bin/python -m bench.peers.freshindex.scenario --database-url URL --folder DIR ...

The in-process folder worker, as `bench.folder_ingest` runs it: `migrations.apply`,
`reindex.activate`, then every run is `FolderWorker(make_roots([root]), pipeline)
.run(stop, once=True)` (what `freshindex worker folder DIR --once` does), with the model
`FRESHINDEX_EMBED_BACKEND` chooses (torch, as the peers run it, or the default auto). The
bare model beside it is sentence-transformers on torch, as for the peers, and with an
exported backend also that backend alone, both on the texts the pipeline embeds (distinct
chunk texts: the embedding cache embeds a text once).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from bench.folder_ingest import pipeline_chunks
from bench.peers import harness
from ingest_worker import database, embedding_backends, migrations, reindex
from ingest_worker.chunking import embed_text
from ingest_worker.embedding import DEFAULT_MODEL, Embedder, Vector
from ingest_worker.pipeline import Pipeline
from ingest_worker.settings import Settings
from ingest_worker.sources.folder.paths import make_roots
from ingest_worker.sources.folder.watcher import FolderWorker
from ingest_worker.store import Store


class CountingEmbedder:
    """The pipeline's model, counting the texts the pipeline passes to it."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.dimensions = inner.dimensions
        self.max_tokens = inner.max_tokens
        self.texts = 0

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        self.texts += len(texts)
        return self.inner.embed(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)


class Freshindex:
    def __init__(self, args: harness.Args, backend: str) -> None:
        self.root = args.folder
        self.url = args.database_url
        with database.connect(self.url) as conn:
            migrations.apply(conn)
        options = embedding_backends.Options(cache_dir=args.scratch / "models")
        model = embedding_backends.load(DEFAULT_MODEL, backend, options)
        model.embed(["warm up the model"] * harness.BATCH)
        self.backend = getattr(model, "backend", "torch")
        self.embedder = CountingEmbedder(model)
        store = Store(database.connect(self.url), model.model_name)
        reindex.activate(store.conn, store.model, model.dimensions)
        self.pipeline = Pipeline(store, self.embedder)

    def chunk_texts(self) -> list[str]:
        return pipeline_chunks(sorted(self.root.glob("*.txt")), self.embedder.inner)

    def sync(self) -> None:
        FolderWorker(make_roots([self.root]), self.pipeline).run(threading.Event(), once=True)

    def stored_texts(self) -> list[str]:
        with database.connect(self.url) as conn:
            rows = conn.execute(
                "SELECT DISTINCT ON (chunk_hash) heading, text FROM chunks ORDER BY chunk_hash"
            ).fetchall()
        return [embed_text(heading, text) for heading, text in rows]

    def rows_of(self, files: Sequence[Path]) -> int:
        with database.connect(self.url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM chunks WHERE doc_id = ANY(%s)", ([f.name for f in files],)
            ).fetchone()
        return int(row[0]) if row else 0

    def embedded(self) -> int:
        return self.embedder.texts


def main() -> None:
    args = harness.parse_args(__doc__.split("\n\n")[0])
    setting = Settings().embed_backend
    system = Freshindex(args, setting)
    backends: dict[str, harness.Encode] = {}
    if system.backend != "torch":  # the exported model alone, as bench.folder_ingest has it
        backends["backend"] = lambda texts: system.embedder.inner.embed(texts)
    about = {
        "system": f"freshindex ({setting})",
        "backend": system.backend,
        "flow": "FolderWorker(...).run(once=True): parse, chunk, diff, embed new texts, commit",
        "chunking": "freshindex: paragraphs, up to 254 model tokens",
        "packages": harness.versions(
            "freshindex", "sentence-transformers", "transformers", "torch"
        ),
    }
    harness.measure(system, args, harness.load_model(), about, backends)


if __name__ == "__main__":
    main()
