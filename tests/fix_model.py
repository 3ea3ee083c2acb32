"""The real embedding model, loaded once per session, on the backend `auto` picks.

Exported models are built once per session into a shared folder (every spawned freshindex
process inherits FRESHINDEX_MODEL_CACHE_DIR); set it yourself to keep them between runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingest_worker import embedding_backends
from ingest_worker.embedding import DEFAULT_MODEL, Embedder


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if "FRESHINDEX_MODEL_CACHE_DIR" not in os.environ:
        os.environ["FRESHINDEX_MODEL_CACHE_DIR"] = str(tmp_path_factory.mktemp("models"))
    return Path(os.environ["FRESHINDEX_MODEL_CACHE_DIR"])


@pytest.fixture(scope="session")
def embedder(model_cache: Path) -> Embedder:
    return embedding_backends.load(
        DEFAULT_MODEL, "auto", embedding_backends.Options(cache_dir=model_cache)
    )
