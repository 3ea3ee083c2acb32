"""Okapi BM25 over chunk_terms (migrations/0006_bm25.sql), ranked in parts side by side.

A common word has tens of thousands of postings (at 100k chunks, "python" in the Python
manual ~35k), and one statement scores them all on one core. So a ranking is split by chunk
id into parts, one per connection, every connection reading the same snapshot: each part
counts its postings of the query's lexemes (a lexeme's document frequency is the sum over
the parts), then, with the idfs that gives, scores its own chunks and returns its k best.
The k best of the parts' k best are the k best of all. A chunk's score is the same sum as in
one statement; only which backend computes it changes. Light queries are scored in one part.

Lucene's idf, the tenant's statistics (chunk_terms and bm25_totals hold one tenant's
terms only, so its scores never see another tenant's).
"""

from __future__ import annotations

import concurrent.futures
import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from query_api import keywords, queries, snapshots
from query_api.models import SearchFilter

T = TypeVar("T")

# Below this many postings, a query scores on one connection: handing parts to other
# backends costs more than it saves there (splitting every query raised the median keyword
# ranking at 100k chunks by 1-2 ms; the value itself is not tuned).
PARALLEL_POSTINGS = 4096
_PARTS = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="bm25-part")


@dataclass(frozen=True, slots=True)
class Bm25:
    """Okapi BM25's parameters: term-frequency saturation and length normalisation."""

    k1: float = 1.2
    b: float = 0.75


DEFAULT_BM25 = Bm25()


@dataclass(frozen=True, slots=True)
class Corpus:
    """A tenant's statistics, and the chunk ids the parts split."""

    chunks: float
    average_length: float
    first_id: int
    last_id: int


def idf(chunks: float, df: int) -> float:
    """Lucene's inverse document frequency (never negative)."""
    return math.log(1 + (chunks - df + 0.5) / (df + 0.5))


def id_ranges(first: int, last: int, parts: int) -> list[tuple[int, int]]:
    """`first..last` (inclusive) cut into at most `parts` contiguous, disjoint ranges."""
    parts = max(1, min(parts, last - first + 1))
    size = (last - first + 1) / parts
    bounds = [first + round(size * i) for i in range(parts)] + [last + 1]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(parts)]


def weights(
    counts: Sequence[Sequence[tuple[str, int, int]]], chunks: float
) -> tuple[list[str], list[float], int]:
    """The query's lexemes that occur, their weights (query tf x idf) and their postings,
    from each part's (lexeme, query tf, postings in the part) rows."""
    query_tf = {lexeme: qtf for rows in counts for lexeme, qtf, _ in rows}
    df = dict.fromkeys(query_tf, 0)
    for rows in counts:
        for lexeme, _, postings in rows:
            df[lexeme] += postings
    found = [lexeme for lexeme in query_tf if df[lexeme]]
    weighted = [query_tf[lexeme] * idf(chunks, df[lexeme]) for lexeme in found]
    return found, weighted, sum(df.values())


def best(parts: Sequence[Sequence[queries.Ranked]], k: int) -> list[queries.Ranked]:
    """The k best of rankings each sorted by score (ties by chunk id)."""
    merged = heapq.merge(*parts, key=lambda hit: (-hit["score"], hit["id"]))
    return [hit for hit, _ in zip(merged, range(k), strict=False)]


_CORPUS = """
SELECT sum(chunks)::float8, sum(tokens)::float8 / nullif(sum(chunks), 0),
       (SELECT min(id) FROM chunks), (SELECT max(id) FROM chunks)
FROM bm25_totals WHERE tenant = %(tenant)s
"""
# One row per lexeme of the query: how many postings it has in the part.
_COUNTS = """
SELECT q.lexeme, array_length(q.positions, 1), (
    SELECT count(*) FROM chunk_terms p
    WHERE p.tenant = %(tenant)s AND p.lexeme = q.lexeme AND p.chunk_id BETWEEN %(lo)s AND %(hi)s
)::int
FROM unnest(to_tsvector('english', %(terms)s)) q
"""
# Each lexeme's postings are read by their own index scan, fenced (OFFSET 0) so that the
# plan does not depend on statistics: before the first ANALYZE of a freshly loaded table the
# planner took chunk_terms for tiny and scanned all of a tenant's postings against every
# lexeme (Cranfield, right after ingest: 196 ms for a query that takes 2 ms this way).
_SCORED = """
WITH scored AS (
    SELECT p.chunk_id, sum(
        w.weight * p.tf / (p.tf + %(k1)s * (1 - %(b)s + %(b)s * p.length / %(avgdl)s))
    ) AS score
    FROM unnest(%(lexemes)s::text[], %(weights)s::float8[]) AS w(lexeme, weight)
    CROSS JOIN LATERAL (
        SELECT p.chunk_id, p.tf, p.length FROM chunk_terms p
        WHERE p.tenant = %(tenant)s AND p.lexeme = w.lexeme
          AND p.chunk_id BETWEEN %(lo)s AND %(hi)s
        OFFSET 0  -- a fence: one index scan per lexeme, whatever the statistics say
    ) p
    GROUP BY p.chunk_id
)
"""
# With no filter beyond the tenant (chunk_terms is per tenant) the k best are taken by a
# top-k sort; otherwise filters and the query's required part are checked best-first on the
# chunk rows, and the scan stops after k rows pass.
_TOP = """
SELECT s.chunk_id AS id, c.doc_id, s.score
FROM (SELECT * FROM scored ORDER BY score DESC, chunk_id LIMIT %(k)s) s
JOIN chunks c ON c.id = s.chunk_id
ORDER BY s.score DESC, s.chunk_id
"""
_FILTERED = """
SELECT s.chunk_id AS id, hit.doc_id, s.score
FROM (SELECT * FROM scored ORDER BY score DESC, chunk_id) s
CROSS JOIN LATERAL (SELECT c.doc_id FROM chunks c WHERE c.id = s.chunk_id AND {conditions}) hit
ORDER BY s.score DESC, s.chunk_id
LIMIT %(k)s
"""


def keyword_search(
    readers: Sequence[psycopg.Connection[Any]],
    text: str,
    k: int,
    where: SearchFilter,
    bm25: Bm25 = DEFAULT_BM25,
    *,
    parallel_postings: int = PARALLEL_POSTINGS,
) -> list[queries.Ranked]:
    """Okapi BM25 (English stemming): chunks sharing any word of `text`, best first;
    web-search syntax narrows them ("a phrase" must appear, -word must not). `readers` read
    one snapshot (snapshots.export); the first may be outside a transaction if alone."""
    if len(readers) == 1 and not queries.in_transaction(readers[0]):
        with snapshots.read_only(readers[0]):
            return keyword_search(
                readers, text, k, where, bm25, parallel_postings=parallel_postings
            )
    query = keywords.read(text)
    conditions, params = queries.filters(where, query.required)
    params |= {"terms": query.terms, "k": k, "k1": bm25.k1, "b": bm25.b}
    corpus = _corpus(readers[0], where.tenant)
    if corpus is None:
        return []
    ranges = id_ranges(corpus.first_id, corpus.last_id, len(readers))
    counts = _in_parts(readers, ranges, lambda conn, part: _counts(conn, params | part))
    lexemes, weighted, postings = weights(counts, corpus.chunks)
    if not lexemes:
        return []
    if postings < parallel_postings:
        readers, ranges = readers[:1], [(corpus.first_id, corpus.last_id)]
    statement = scoring_statement(conditions)
    params |= {"lexemes": lexemes, "weights": weighted, "avgdl": corpus.average_length}

    def ranked(conn: psycopg.Connection[Any], part: dict[str, int]) -> list[queries.Ranked]:
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(statement, params | part).fetchall()

    return best(_in_parts(readers, ranges, ranked), k)


def scoring_statement(conditions: Sequence[sql.Composable]) -> sql.Composed:
    """The k best chunks of a part, by the query's weighted lexemes, that pass `conditions`
    (queries.filters)."""
    if len(conditions) == 1:  # the tenant's: chunk_terms holds only its chunks' terms
        return sql.SQL(_SCORED) + sql.SQL(_TOP)
    return sql.SQL(_SCORED) + sql.SQL(_FILTERED).format(
        conditions=sql.SQL(" AND ").join(conditions)
    )


def _corpus(conn: psycopg.Connection[Any], tenant: str) -> Corpus | None:
    row = conn.execute(_CORPUS, {"tenant": tenant}).fetchone()
    if row is None or not row[0] or row[2] is None:
        return None  # nothing indexed for this tenant
    return Corpus(chunks=row[0], average_length=row[1], first_id=row[2], last_id=row[3])


def _counts(conn: psycopg.Connection[Any], params: dict[str, Any]) -> list[tuple[str, int, int]]:
    return conn.execute(_COUNTS, params).fetchall()


def _in_parts(
    readers: Sequence[psycopg.Connection[Any]],
    ranges: Sequence[tuple[int, int]],
    run: Callable[[psycopg.Connection[Any], dict[str, int]], T],
) -> list[T]:
    """`run` for each id range on its own reader, side by side (the first in this thread)."""
    parts = [{"lo": lo, "hi": hi} for lo, hi in ranges]
    others = [
        _PARTS.submit(run, conn, part)
        for conn, part in zip(readers[1 : len(parts)], parts[1:], strict=True)
    ]
    try:
        first = run(readers[0], parts[0])
    finally:
        concurrent.futures.wait(others)  # each reader is in use until its part is done
    return [first, *(other.result() for other in others)]
