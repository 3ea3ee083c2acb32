"""`embedding_claims.embed_once` against a real Postgres: a worker embeds what it claimed in
slices, each of texts of similar length (the model pads a batch to its longest text)."""

from __future__ import annotations

import hashlib
import itertools
import random
from typing import Any

import numpy as np
import psycopg

from ingest_worker import database, embedding_claims
from ingest_worker.embedding import Vector
from tests.fix_services import wait_until


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
    budget = embedding_claims.SLICE_CHARS
    assert len(slices) == 2  # 600 texts of ~500 characters
    assert [sum(s) <= budget < sum(s) + min(b) for s, b in itertools.pairwise(slices)] == [True]
    assert sum(slices[-1]) <= budget
    assert all(max(a) <= min(b) for a, b in itertools.pairwise(slices))


def test_a_claim_of_a_session_that_ended_is_taken_over_before_its_lease_expires(
    db_url: str,
) -> None:
    """A worker killed outright leaves claims behind, but its connection ends with it: its
    successor must not wait out the lease (60 s) for the texts it was embedding."""
    live, dead = b"held by a live session", b"held by a session that ended"
    with database.connect(db_url) as holder:
        assert embedding_claims.claim(holder, "m", [live], "alive", lease_s=600) == {live}
        with database.connect(db_url) as doomed:
            assert embedding_claims.claim(doomed, "m", [dead], "killed", lease_s=600) == {dead}
            pid = doomed.info.backend_pid
        with database.connect(db_url) as successor:
            wait_until(lambda: not _session_alive(successor, pid), 10, "the session to end")
            taken = embedding_claims.claim(successor, "m", [live, dead], "successor", 600)
            successor.execute("DELETE FROM embedding_claims WHERE model = 'm'")
    assert taken == {dead}


def _session_alive(conn: psycopg.Connection[Any], pid: int) -> bool:
    row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return bool(row and row[0])
