"""CocoIndex 1.0 on the peers scenario (runs in bench/peers/.venvs/cocoindex).

    python -m bench.peers.cocoindex.scenario --database-url URL --folder DIR ...

The flow of CocoIndex's own text-embedding example, as its 1.0 API reads: an `App` whose main
function mounts a Postgres table target (with a pgvector HNSW index declared on it), walks
the folder with `localfs.walk_dir` and mounts one memoized `process_file` component per file;
that splits the text with `RecursiveSplitter` (1000 bytes, overlap 200: the same sizes as the
LangChain run) and declares one row per chunk, embedded by `SentenceTransformerEmbedder`
(memoized per text, batched by the engine). Each run is `app.update_blocking()`: the engine
skips files whose content did not change, re-embeds only chunks it has not memoized, and
deletes the rows of files that are gone. CocoIndex 1.0 keeps its own state in an LMDB
database (`Settings.db_path`, here under --scratch), not in Postgres.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
import cocoindex as coco
from cocoindex.connectors import localfs, postgres
from cocoindex.ops.sentence_transformers import SentenceTransformerEmbedder
from cocoindex.ops.text import RecursiveSplitter
from cocoindex.resources.chunk import Chunk
from cocoindex.resources.file import FileLike, PatternFilePathMatcher
from cocoindex.resources.id import IdGenerator
from numpy.typing import NDArray

from bench.peers import harness

TABLE = "doc_embeddings"
CHUNK_SIZE, CHUNK_OVERLAP = 1000, 200  # bytes (ASCII here: characters)
PG_DB = coco.ContextKey[asyncpg.Pool]("pg_db")
EMBEDDER = coco.ContextKey[SentenceTransformerEmbedder]("embedder")
SPLITTER = RecursiveSplitter()


@dataclass
class DocEmbedding:
    id: int
    filename: str
    text: str
    embedding: Annotated[NDArray[Any], EMBEDDER]


@coco.fn
async def process_chunk(
    chunk: Chunk, filename: pathlib.PurePath, ids: IdGenerator, table: Any
) -> None:
    embedding = await coco.use_context(EMBEDDER).embed(chunk.text)
    row = DocEmbedding(await ids.next_id(chunk.text), str(filename), chunk.text, embedding)
    table.declare_row(row=row)


@coco.fn(memo=True)
async def process_file(file: FileLike, table: Any) -> None:
    text = await file.read_text()
    chunks = SPLITTER.split(text, chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    await coco.map(process_chunk, chunks, file.file_path.path, IdGenerator(), table)


@coco.fn
async def app_main(folder: pathlib.Path) -> None:
    schema = await postgres.TableSchema.from_class(DocEmbedding, primary_key=["id"])
    table = await postgres.mount_table_target(PG_DB, table_name=TABLE, table_schema=schema)
    table.declare_vector_index(column="embedding", metric="cosine", method="hnsw")
    matcher = PatternFilePathMatcher(included_patterns=["**/*.txt"])
    files = localfs.walk_dir(folder, recursive=True, path_matcher=matcher)
    await coco.mount_each(process_file, files.items(), table)


class CocoIndex:
    def __init__(self, args: harness.Args) -> None:
        self.folder = args.folder
        self.url = args.database_url
        self.embedder = SentenceTransformerEmbedder(harness.model_path(), device="cpu")
        model = self.embedder._get_model()  # loaded now, not inside the first timed run
        model.encode(["warm up the model"] * harness.BATCH, show_progress_bar=False)
        self.counted = harness.Counting(model)

        @coco.lifespan
        async def lifespan(builder: coco.EnvironmentBuilder) -> AsyncIterator[None]:
            builder.settings.db_path = args.scratch / "cocoindex.db"
            async with asyncpg.create_pool(self.url) as pool:
                builder.provide(PG_DB, pool)
                builder.provide(EMBEDDER, self.embedder)
                yield

        self.app = coco.App(coco.AppConfig(name="PeersBenchmark"), app_main, folder=self.folder)

    def chunk_texts(self) -> list[str]:
        texts = []
        for path in sorted(self.folder.glob("*.txt")):
            text = path.read_text(encoding="utf-8")
            chunks = SPLITTER.split(text, chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
            texts += [c.text for c in chunks]
        return texts

    def sync(self) -> None:
        self.app.update_blocking()

    def stored_texts(self) -> list[str]:
        rows = asyncio.run(self._fetch(f"SELECT text FROM {TABLE}"))  # noqa: S608 (a constant)
        return [row[0] for row in rows]

    def rows_of(self, files: Sequence[pathlib.Path]) -> int:
        names = [f.name for f in files]  # `filename` is the path below the walked folder
        sql = f"SELECT count(*) FROM {TABLE} WHERE regexp_replace(filename, '^.*/', '') = ANY($1)"  # noqa: S608
        return int(asyncio.run(self._fetch(sql, names))[0][0])

    def embedded(self) -> int:
        return self.counted.texts

    async def _fetch(self, sql: str, *params: Any) -> list[Any]:
        conn = await asyncpg.connect(self.url)
        try:
            return list(await conn.fetch(sql, *params))
        finally:
            await conn.close()


def main() -> None:
    args = harness.parse_args(__doc__.split("\n\n")[0])
    system = CocoIndex(args)
    about = {
        "system": "cocoindex",
        "flow": "App: localfs.walk_dir → memoized process_file → Postgres table (+ HNSW index)",
        "chunking": f"RecursiveSplitter({CHUNK_SIZE} bytes, overlap {CHUNK_OVERLAP})",
        "packages": harness.versions("cocoindex", "sentence-transformers", "transformers", "torch"),
    }
    harness.measure(system, args, harness.load_model(), about)


if __name__ == "__main__":
    main()
