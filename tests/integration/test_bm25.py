"""BM25 keyword search against a from-scratch computation, on a real Postgres.

The statistics (chunk_terms, bm25_totals) are written by triggers in each version's
transaction; here random histories of adds, edits and deletes run through the real pipeline
and store, and afterwards the postings, the totals and the scores of random queries must equal
what a from-scratch BM25 over the tenant's current chunks gives. Postgres' `to_tsvector` is the
tokenizer on both sides (it defines the terms); everything else is computed here in Python.
Each example is its own tenant in one shared database, so statistics leaking between tenants
would show up as wrong scores.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from ingest_worker import database, reindex
from ingest_worker.events import DocumentEvent, Op
from ingest_worker.pipeline import Pipeline
from ingest_worker.store import Store
from query_api import snapshots
from query_api.bm25 import Bm25, keyword_search, scoring_statement
from query_api.models import SearchFilter
from query_api.queries import filters
from tests.integration.test_model_check import CrashPlan, FakeEmbedder

VOCABULARY = "wing flutter supersonic flow heat transfer boundary layer shock wave nozzle".split()
_tenants = itertools.count()

paragraph = st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=30).map(" ".join)
document = st.lists(paragraph, min_size=1, max_size=4).map("\n\n".join)
operation = st.tuples(st.integers(0, 5), st.one_of(st.none(), document))  # None: delete
query = st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=4).map(" ".join)


@pytest.fixture
def fake_pipeline(db_url: str) -> Iterator[Pipeline]:
    embedder = FakeEmbedder(CrashPlan())
    conn = database.connect(db_url)
    store = Store(conn, embedder.model_name)
    reindex.activate(conn, store.model, embedder.dimensions)
    yield Pipeline(store, embedder)
    conn.close()


@pytest.fixture
def spares(db_url: str) -> Iterator[list[psycopg.Connection[Any]]]:
    conns = [database.connect(db_url) for _ in range(2)]
    yield conns
    for conn in conns:
        conn.close()


def from_scratch(
    conn: psycopg.Connection[Any], tenant: str, text: str, bm25: Bm25
) -> dict[int, float]:
    """chunk id → BM25 score of `text`, from the chunks' tsvectors alone."""
    chunks: dict[int, Counter[str]] = {}
    rows = conn.execute(
        "SELECT c.id, u.lexeme, array_length(u.positions, 1) FROM chunks c, unnest(c.tsv) u "
        "WHERE c.tenant = %s",
        (tenant,),
    )
    for chunk_id, lexeme, tf in rows:
        chunks.setdefault(chunk_id, Counter())[lexeme] = tf
    terms = Counter(
        dict(
            conn.execute(
                "SELECT lexeme, array_length(positions, 1) FROM unnest(to_tsvector('english', %s))",
                (text,),
            ).fetchall()
        )
    )
    n = len(chunks)
    avgdl = sum(sum(c.values()) for c in chunks.values()) / n if n else 0.0
    df = Counter(lexeme for c in chunks.values() for lexeme in c)
    scores: dict[int, float] = {}
    for chunk_id, tfs in chunks.items():
        length = sum(tfs.values())
        score = 0.0
        for lexeme, qtf in terms.items():
            if tf := tfs.get(lexeme):
                idf = math.log(1 + (n - df[lexeme] + 0.5) / (df[lexeme] + 0.5))
                norm = bm25.k1 * (1 - bm25.b + bm25.b * length / avgdl)
                score += qtf * idf * tf / (tf + norm)
        if score:
            scores[chunk_id] = score
    return scores


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    history=st.lists(operation, min_size=1, max_size=25),
    queries=st.lists(query, max_size=4),
    rewrite=st.none() | paragraph,
)
def test_bm25_statistics_and_scores_stay_exact_under_adds_edits_and_deletes(
    fake_pipeline: Pipeline,
    spares: list[psycopg.Connection[Any]],
    history: list[tuple[int, str | None]],
    queries: list[str],
    rewrite: str | None,
) -> None:
    tenant = f"t{next(_tenants)}"
    for version, (doc, text) in enumerate(history, start=1):
        event = DocumentEvent(
            doc_id=f"doc{doc}.txt",
            op=Op.DELETE if text is None else Op.UPSERT,
            source="test",
            version=version,
            content=None if text is None else text.encode(),
            content_type="text/plain",
            tenant=tenant,
        )
        fake_pipeline.process([event])
    conn = fake_pipeline.store.conn
    if rewrite is not None:  # the trigger's UPDATE path: the store never rewrites a chunk
        conn.execute(
            "UPDATE chunks SET text = %s WHERE id = (SELECT min(id) FROM chunks WHERE tenant = %s)",
            (rewrite, tenant),
        )
    stored = conn.execute(
        "SELECT chunk_id, lexeme, tf, length FROM chunk_terms WHERE tenant = %s ORDER BY 1, 2",
        (tenant,),
    ).fetchall()
    expected = conn.execute(
        "SELECT c.id, u.lexeme, array_length(u.positions, 1), sum(array_length(u.positions, 1))"
        " OVER (PARTITION BY c.id) FROM chunks c, unnest(c.tsv) u WHERE c.tenant = %s"
        " ORDER BY 1, 2",
        (tenant,),
    ).fetchall()
    assert stored == expected
    totals = conn.execute(
        "SELECT coalesce(sum(chunks), 0), coalesce(sum(tokens), 0) FROM bm25_totals "
        "WHERE tenant = %s",
        (tenant,),
    ).fetchone()
    assert totals == (len({row[0] for row in expected}), sum(row[2] for row in expected))
    bm25 = Bm25(k1=1.2, b=0.75)
    for text in [*queries, " ".join(VOCABULARY)]:
        want = from_scratch(conn, tenant, text, bm25)
        for hits in rankings(conn, spares, text, SearchFilter(tenant=tenant), bm25):
            got = {h["id"]: h["score"] for h in hits}
            assert got.keys() == want.keys()
            for chunk_id, score in want.items():
                assert got[chunk_id] == pytest.approx(score, rel=1e-9)
            assert [h["score"] for h in hits] == sorted(got.values(), reverse=True)


def rankings(
    conn: psycopg.Connection[Any],
    spares: list[psycopg.Connection[Any]],
    text: str,
    where: SearchFilter,
    bm25: Bm25,
) -> Iterator[list[dict[str, Any]]]:
    """The ranking of `text` on one connection, and split by chunk id into three parts on
    three connections sharing one snapshot (as a search splits a heavy query), every query
    split however few its postings."""
    yield keyword_search([conn], text, 1000, where, bm25)
    with snapshots.read_only(conn):
        exported = snapshots.export(conn)
        with snapshots.read_only(spares[0], exported), snapshots.read_only(spares[1], exported):
            yield keyword_search([conn, *spares], text, 1000, where, bm25, parallel_postings=0)


def test_concurrent_writers_of_one_tenant_do_not_wait_on_each_other(db_url: str) -> None:
    """Two open transactions insert chunks of one tenant: neither blocks on a statistics row
    (the second would hit its lock timeout if they shared one)."""
    with database.connect(db_url) as setup:
        setup.execute("ALTER TABLE chunks ALTER COLUMN embedding TYPE vector(2)")
        for doc_id in ("a", "b"):
            setup.execute(
                "INSERT INTO documents (tenant, doc_id, version, source) "
                "VALUES ('t', %s, 1, 'test')",
                (doc_id,),
            )
    first, second = database.connect(db_url), database.connect(db_url)
    try:
        with first.transaction(), second.transaction():
            for conn, doc_id in ((first, "a"), (second, "b")):
                conn.execute("SET LOCAL lock_timeout = '2s'")
                conn.execute(
                    "INSERT INTO chunks (tenant, doc_id, ordinal, chunk_hash, text, embedding) "
                    "VALUES ('t', %s, 0, '\\x00', 'shock wave over the wing', '[1, 0]')",
                    (doc_id,),
                )
        row = first.execute(
            "SELECT sum(chunks), count(*) FROM bm25_totals WHERE tenant = 't'"
        ).fetchone()
        assert row == (2, 2)  # both counted, in two different rows
    finally:
        first.close()
        second.close()


def test_a_ranking_reads_only_the_query_lexemes_postings_before_any_analyze(
    fake_pipeline: Pipeline,
) -> None:
    """Right after a bulk load, before autovacuum has analyzed chunk_terms, the planner
    has no statistics: each lexeme's postings must still be read by an index scan on that
    lexeme, not by scanning every posting of the tenant (the plan it took unfenced)."""
    for n in range(40):
        text = " ".join(VOCABULARY[n % 7 :] + VOCABULARY[: n % 5])
        fake_pipeline.process(
            [
                DocumentEvent(
                    doc_id=f"d{n}.txt",
                    op=Op.UPSERT,
                    source="test",
                    version=1,
                    content=text.encode(),
                    content_type="text/plain",
                )
            ]
        )
    conn = fake_pipeline.store.conn
    conn.execute("SELECT pg_clear_relation_stats('public', 'chunk_terms')")
    conditions, params = filters(SearchFilter())
    bounds = conn.execute("SELECT min(id), max(id) FROM chunks").fetchone()
    assert bounds is not None
    params |= {
        "lexemes": ["wing", "shock"],
        "weights": [1.0, 2.0],
        "avgdl": 10.0,
        "k": 10,
        "k1": 1.2,
        "b": 0.75,
        "lo": bounds[0],
        "hi": bounds[1],
    }
    explain = sql.SQL("EXPLAIN (FORMAT JSON) ") + scoring_statement(conditions)
    row = conn.execute(explain, params).fetchone()
    assert row is not None
    scans = [
        node for node in plan_nodes(row[0][0]["Plan"]) if node.get("Relation Name") == "chunk_terms"
    ]
    assert scans, "the ranking reads chunk_terms"
    for scan in scans:
        assert "lexeme =" in scan.get("Index Cond", ""), scan


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)
