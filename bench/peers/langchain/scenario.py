"""LangChain's indexing API on the peers scenario (runs in bench/peers/.venvs/langchain).

    python -m bench.peers.langchain.scenario --database-url URL --folder DIR ...

The flow its docs describe: documents (one per file, `source` = its path) →
`RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)` → `index(docs,
SQLRecordManager, PGVector, cleanup="full", source_id_key="source")`, embedding with
`HuggingFaceEmbeddings` (sentence-transformers). The record manager skips chunks whose hash
it has seen; "full" cleanup deletes the chunks of files that are gone or changed, which needs
every document on every run (as a loader gives them), so each run reads and splits the whole
folder. PGVector keeps no vector index of its own; we add the HNSW index freshindex and
CocoIndex keep, so all three maintain one while ingesting.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg
from langchain_classic.indexes import SQLRecordManager
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.indexing import index
from langchain_huggingface import HuggingFaceEmbeddings
from langchain_postgres import PGVector
from langchain_text_splitters import RecursiveCharacterTextSplitter

from bench.peers import harness

COLLECTION = "peers"
CHUNK_SIZE, CHUNK_OVERLAP = 1000, 200  # characters, as in LangChain's RAG tutorial


class Counted(Embeddings):
    """The embedder, counting the texts LangChain passes to it."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.texts = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.texts += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        self.texts += 1
        return self.inner.embed_query(text)


class LangChain:
    def __init__(self, args: harness.Args) -> None:
        self.folder = args.folder
        self.url = args.database_url
        sqlalchemy_url = self.url.replace("postgresql://", "postgresql+psycopg://", 1)
        model = HuggingFaceEmbeddings(
            model_name=harness.model_path(),
            model_kwargs={"device": "cpu", "local_files_only": True},
            encode_kwargs={"normalize_embeddings": True, "batch_size": harness.BATCH},
        )
        model.embed_documents(["warm up the model"] * harness.BATCH)
        self.embeddings = Counted(model)
        self.store = PGVector(
            self.embeddings,
            connection=sqlalchemy_url,
            collection_name=COLLECTION,
            embedding_length=384,  # a typed column, so that it can be indexed
            use_jsonb=True,
        )
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(
                "CREATE INDEX IF NOT EXISTS langchain_pg_embedding_hnsw "
                "ON langchain_pg_embedding USING hnsw (embedding vector_cosine_ops)"
            )
        self.records = SQLRecordManager(f"pgvector/{COLLECTION}", db_url=sqlalchemy_url)
        self.records.create_schema()
        self.splitter = RecursiveCharacterTextSplitter(
            chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP
        )

    def _documents(self) -> Iterator[Document]:
        for path in sorted(self.folder.glob("*.txt")):  # what TextLoader gives for a file
            yield Document(page_content=path.read_text(encoding="utf-8"),
                           metadata={"source": str(path)})  # fmt: skip

    def chunk_texts(self) -> list[str]:
        return [d.page_content for d in self.splitter.split_documents(self._documents())]

    def sync(self) -> None:
        chunks = self.splitter.split_documents(self._documents())
        index(chunks, self.records, self.store, cleanup="full", source_id_key="source",
              key_encoder="sha256")  # fmt: skip

    def stored_texts(self) -> list[str]:
        with psycopg.connect(self.url) as conn:
            return [row[0] for row in conn.execute("SELECT document FROM langchain_pg_embedding")]

    def rows_of(self, files: Sequence[Path]) -> int:
        with psycopg.connect(self.url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM langchain_pg_embedding WHERE cmetadata->>'source' = ANY(%s)",
                ([str(f) for f in files],),
            ).fetchone()
        return int(row[0]) if row else 0

    def embedded(self) -> int:
        return self.embeddings.texts


def main() -> None:
    args = harness.parse_args(__doc__.split("\n\n")[0])
    system = LangChain(args)
    about = {
        "system": "langchain",
        "flow": "index(cleanup='full') + SQLRecordManager + PGVector (+ HNSW index)",
        "chunking": f"RecursiveCharacterTextSplitter({CHUNK_SIZE} chars, overlap {CHUNK_OVERLAP})",
        "packages": harness.versions(
            "langchain-core",
            "langchain-classic",
            "langchain-postgres",
            "langchain-huggingface",
            "langchain-text-splitters",
            "sentence-transformers",
            "transformers",
            "torch",
        ),
    }
    harness.measure(system, args, harness.load_model(), about)


if __name__ == "__main__":
    main()
