"""Building a process's parts from its settings: database, migrations, model, pipeline."""

from __future__ import annotations

import logging

from ingest_worker import database, migrations, reindex
from ingest_worker.embedding import SentenceTransformerEmbedder, canonical_name
from ingest_worker.pipeline import Pipeline
from ingest_worker.settings import Settings
from ingest_worker.store import Store

log = logging.getLogger(__name__)


def prepare_database(settings: Settings) -> str:
    """Locate (or start) the database and apply pending migrations; return its URL.

    Every command does this, so that no one has to remember `freshindex migrate`.
    """
    db = database.locate(settings)
    with database.connect(db.url) as conn:
        applied = migrations.apply(conn)
    for migration in applied:
        log.info("applied migration %s", migration.name)
    return db.url


def load_embedder(settings: Settings, url: str | None = None) -> SentenceTransformerEmbedder:
    """The model the index uses (it decides once it has one: `freshindex reindex` changes
    it), else FRESHINDEX_MODEL."""
    model = settings.model
    if url is not None:
        with database.connect(url) as conn:
            active = reindex.active_model(conn)
        if active is not None and active != canonical_name(model):
            log.warning("the index uses model %s, not %s; using %s", active, model, active)
            model = active
    return SentenceTransformerEmbedder(model, batch_size=settings.embed_batch_size)


def build_pipeline(settings: Settings, url: str, embedder: SentenceTransformerEmbedder) -> Pipeline:
    store = Store(database.connect(url), embedder.model_name)
    store.activate_model(embedder.dimensions)
    return Pipeline(
        store,
        embedder,
        max_file_bytes=settings.max_file_bytes,
        chunk_max_tokens=settings.chunk_max_tokens,
        load_model=lambda name: SentenceTransformerEmbedder(
            name, batch_size=settings.embed_batch_size
        ),
    )
