"""`embedding_claims.embed_once` against a real Postgres: a worker embeds what it claimed in
slices, each of texts of similar length (the model pads a batch to its longest text)."""

from __future__ import annotations

import hashlib
import itertools
import random

import numpy as np

from ingest_worker import database, embedding_claims
from ingest_worker.embedding import Vector


def test_claimed_texts_are_embedded_in_slices_of_similar_length(db_url: str) -> None:
    rng = random.Random(5)
    texts = {
        hashlib.sha256(text.encode()).digest(): text
        for text in (f"{'word ' * rng.randint(1, 200)}{i}" for i in range(600))
    }
    slices: list[list[int]] = []

    def embed(part: dict[bytes, str]) -> tuple[dict[bytes, Vector], dict[bytes, Exception]]:
        slices.append([len(text) for text in part.values()])
        unit = np.zeros(384, dtype=np.float32)
        unit[0] = 1
        return {h: unit for h in part}, {}

    with database.connect(db_url) as conn:
        fresh, failed, shared = embedding_claims.embed_once(conn, "m", texts, embed, "me")
        claims = conn.execute("SELECT count(*) FROM embedding_claims").fetchone()
    assert (len(fresh), failed, shared, claims) == (600, {}, {}, (0,))
    slice_ = embedding_claims.SLICE
    assert [len(s) for s in slices] == [slice_, slice_, 600 - 2 * slice_]
    assert all(max(a) <= min(b) for a, b in itertools.pairwise(slices))
