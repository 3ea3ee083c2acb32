"""The real embedding model, loaded once per session (a few seconds)."""

from __future__ import annotations

import pytest

from ingest_worker.embedding import SentenceTransformerEmbedder


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()
