"""Embedding-cache garbage collection under long randomized edit workloads, with the real
model and Postgres: the cache stays within 2x the live chunks, a re-save inside the grace
period embeds nothing, and a collector running beside a writer never leaves a live chunk
without its cached vector."""

from __future__ import annotations

import itertools
import random
import threading
from typing import Any

import psycopg
import pytest

from ingest_worker import cache_gc
from ingest_worker.database import connect
from ingest_worker.pipeline import Pipeline
from tests.integration.helpers import upsert

GRACE_S = 600.0
ROUND_S = 60.0  # simulated time per round: the test ages the cache's timestamps
WORDS = (
    "river stone lantern harbor meadow copper violet engine signal garden winter orbit "
    "falcon timber glacier canyon ember quartz willow beacon cobalt thistle marble tundra"
).split()


def paragraph(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(18)).capitalize() + "."


def as_text(paragraphs: list[str]) -> str:
    return "\n\n".join(paragraphs) + "\n"


def sizes(conn: psycopg.Connection[Any]) -> tuple[int, int, int]:
    """(cached vectors, distinct live chunk texts, live chunks without a cached vector)"""
    row = conn.execute(
        """SELECT (SELECT count(*) FROM embedding_cache),
                  (SELECT count(DISTINCT chunk_hash) FROM chunks),
                  (SELECT count(*) FROM chunks c WHERE NOT EXISTS
                      (SELECT 1 FROM embedding_cache e WHERE e.chunk_hash = c.chunk_hash))"""
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def age(conn: psycopg.Connection[Any], seconds: float) -> None:
    """Let `seconds` pass for the collector, without sleeping."""
    for table, column in (("embedding_cache", "created_at"), ("cache_releases", "released_at")):
        conn.execute(
            psycopg.sql.SQL("UPDATE {} SET {} = {} - make_interval(secs => %s)").format(
                psycopg.sql.Identifier(table),
                psycopg.sql.Identifier(column),
                psycopg.sql.Identifier(column),
            ),
            (seconds,),
        )


@pytest.mark.parametrize("seed", [1])
def test_the_cache_stays_bounded_and_a_resave_within_the_grace_period_embeds_nothing(
    pipeline: Pipeline, db_url: str, seed: int
) -> None:
    rng = random.Random(seed)
    model = pipeline.store.model
    docs = {f"doc-{i}": [paragraph(rng) for _ in range(6)] for i in range(10)}
    history = {doc: [(0, list(p))] for doc, p in docs.items()}  # (round, paragraphs)
    pipeline.process([upsert(doc, as_text(p)) for doc, p in docs.items()])
    with connect(db_url) as conn:
        for round_ in range(1, 41):
            for _ in range(2):  # edits: one paragraph becomes new text
                doc = rng.choice(sorted(docs))
                docs[doc][rng.randrange(6)] = paragraph(rng)
                assert pipeline.process([upsert(doc, as_text(docs[doc]))]).chunks_embedded >= 1
                history[doc].append((round_, list(docs[doc])))
            # a re-save of a version the doc still had at most 8 rounds (480 s) ago
            doc = rng.choice(sorted(docs))
            versions = history[doc]
            recent = [p for (_, p), (r, _) in itertools.pairwise(versions) if round_ - r <= 8]
            docs[doc] = list(rng.choice([*recent, versions[-1][1]]))
            history[doc].append((round_, list(docs[doc])))
            report = pipeline.process([upsert(doc, as_text(docs[doc]))])
            assert report.chunks_embedded == 0, f"round {round_}: re-embedded inside the grace"
            age(conn, ROUND_S)
            cache_gc.collect(conn, model, GRACE_S, batch=16)  # small pages: many batches
            cached, live, orphans = sizes(conn)
            assert cached <= 2 * live, f"round {round_}: {cached} vectors for {live} chunks"
            assert orphans == 0
        age(conn, GRACE_S)
        assert cache_gc.collect(conn, model, GRACE_S) > 0
        cached, live, orphans = sizes(conn)
        assert (cached, orphans) == (live, 0)
        released = conn.execute("SELECT count(*) FROM cache_releases").fetchone()
        assert released == (0,)  # the release log is trimmed to the grace period too


def test_a_collector_running_beside_a_writer_never_strands_a_live_chunk(
    pipeline: Pipeline, db_url: str
) -> None:
    """Grace 0: every released vector is collectable at once, so the collector races every
    edit that brings a text back."""
    rng = random.Random(7)
    model = pipeline.store.model
    pool = [paragraph(rng) for _ in range(12)]  # few texts: edits keep bringing them back
    stop = threading.Event()
    passes: list[int] = []
    errors: list[BaseException] = []

    def collect() -> None:
        try:
            with connect(db_url) as conn:
                while not stop.is_set():
                    passes.append(cache_gc.collect(conn, model, 0.0, batch=4))
        except BaseException as e:
            errors.append(e)

    collector = threading.Thread(target=collect, name="collector")
    collector.start()
    try:
        for step in range(60):
            doc = f"doc-{step % 4}"
            pipeline.process([upsert(doc, as_text(rng.sample(pool, 3)))])
    finally:
        stop.set()
        collector.join(timeout=60)
    assert not collector.is_alive() and not errors, errors
    assert sum(passes) > 0  # the collector did remove vectors while the writer ran
    with connect(db_url) as conn:
        _, live, orphans = sizes(conn)
        assert orphans == 0
        cache_gc.collect(conn, model, 0.0)
        assert sizes(conn) == (live, live, 0)
