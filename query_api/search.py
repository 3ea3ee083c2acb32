"""POST /v1/search: wait for the caller's writes (bounded), then search, then say how fresh
the answer is."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable
from typing import Any

import psycopg
import psycopg_pool

from ingest_worker import reindex
from ingest_worker.embedding import Embedder, Vector
from query_api import keywords, queries, ranking
from query_api.lag import CachedLatestOffsets, with_lag
from query_api.listener import ChangeListener
from query_api.models import Freshness, Hit, SearchRequest, SearchResponse, SourceFreshness

EmbedderFor = Callable[[str | None], Embedder]  # the loaded model, or the one named
FUSION_DEPTH = 4  # hybrid mode fuses the top 4k of each ranking,
FUSION_CANDIDATES = 100  # and at least the top 100
_HALVES = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="keyword-half")


def answer(
    request: SearchRequest,
    embedder_for: EmbedderFor,
    pool: psycopg_pool.ConnectionPool[Any],
    listener: ChangeListener,
    lag_probe: CachedLatestOffsets | None,
    read_pool: psycopg_pool.ConnectionPool[Any] | None = None,
    bm25: queries.Bm25 = queries.DEFAULT_BM25,
) -> SearchResponse:
    """Wait on the primary (`pool`, where workers commit and NOTIFY), then rank on
    `read_pool` (a streaming replica; default the primary) once it has replayed that far."""
    started = time.perf_counter()
    deadline = time.monotonic() + request.wait_timeout_ms / 1000
    missing = wait_for(request, pool, listener, deadline)
    read_pool = read_pool or pool
    replica_behind = (
        request.wait_for
        and not missing
        and read_pool is not pool
        and not replayed_on(read_pool, current_lsn(pool), deadline)
    )
    if replica_behind:  # at the timeout: say what the replica does not show yet
        with read_pool.connection() as conn:
            missing = queries.missing(conn, request.wait_for)
    with read_pool.connection() as conn:
        rows = _rank_with_the_index_model(conn, request, embedder_for, bm25, read_pool)
        freshness = queries.freshness(conn)
    return SearchResponse(
        hits=[Hit(**row) for row in rows],
        freshness=_freshness(freshness, lag_probe),
        fresh=not missing,
        missing=missing,
        mode=request.mode,
        took_ms=(time.perf_counter() - started) * 1000,
    )


def _rank_with_the_index_model(
    conn: psycopg.Connection[Any],
    request: SearchRequest,
    embedder_for: EmbedderFor,
    bm25: queries.Bm25,
    pool: psycopg_pool.ConnectionPool[Any],
) -> list[dict[str, Any]]:
    """Rank with the model the index uses, read once per search, after the query: a
    `freshindex reindex` may have switched models between our embedding and our query
    (then the dimensions clash, or the model read differs), and we rank again with it."""
    model: str | None = None  # None: the model this process has loaded
    for _ in range(3):
        embedder = embedder_for(model)
        vector = embedder.embed([request.query])[0] if request.mode != "keyword" else None
        if vector is None:
            return _rank(conn, request, None, bm25, pool)
        try:
            rows: list[dict[str, Any]] | None = _rank(conn, request, vector, bm25, pool)
        except psycopg.errors.DataException as e:
            if "dimensions" not in str(e):
                raise
            rows = None
        model = reindex.active_model(conn)
        if rows is not None and model in (None, embedder.model_name):
            return rows  # (None: nothing indexed yet)
    raise psycopg.OperationalError("the embedding model is being switched; retry")


def _rank(
    conn: psycopg.Connection[Any],
    request: SearchRequest,
    vector: Vector | None,
    bm25: queries.Bm25,
    pool: psycopg_pool.ConnectionPool[Any],
) -> list[dict[str, Any]]:
    """The k best chunks, or with `group_by` the k best documents: chunks are ranked ever
    deeper until k distinct documents are among them (or there are no more chunks). A
    hybrid ranking starts as deep as its fusion looks anyway, which most often is enough."""
    if request.group_by is None:
        return _rank_chunks(conn, request, vector, bm25, request.k, pool)
    depth = request.k * request.chunks_per_document
    if request.mode == "hybrid":
        depth = max(depth, FUSION_CANDIDATES)
    while True:
        ranked = _rank_chunks(conn, request, vector, bm25, depth, pool)
        documents = ranking.by_document(ranked, request.k, request.chunks_per_document)
        if len(documents) == request.k or len(ranked) < depth or depth >= queries.MAX_DEPTH:
            return documents
        depth = min(depth * 4, queries.MAX_DEPTH)


def _rank_chunks(
    conn: psycopg.Connection[Any],
    request: SearchRequest,
    vector: Vector | None,
    bm25: queries.Bm25,
    depth: int,
    pool: psycopg_pool.ConnectionPool[Any],
) -> list[dict[str, Any]]:
    if vector is None:
        return queries.keyword_search(conn, request.query, depth, request.filter, bm25)
    if request.mode == "vector":
        return queries.vector_search(conn, vector, depth, request.filter)
    candidates = min(max(depth * FUSION_DEPTH, FUSION_CANDIDATES), queries.MAX_DEPTH)
    required = keywords.read(request.query).required  # "a phrase", -word narrow both halves

    def keyword(on: psycopg.Connection[Any]) -> list[dict[str, Any]]:
        return queries.keyword_search(on, request.query, candidates, request.filter, bm25)

    # The two halves run side by side when the pool has a connection to spare at once
    # (waiting for one could deadlock a busy pool); else one after the other.
    try:
        with pool.connection(timeout=0.001) as spare:
            by_keyword = _HALVES.submit(keyword, spare)
            by_vector = queries.vector_search(conn, vector, candidates, request.filter, required)
            keyword_rows = by_keyword.result()
    except psycopg_pool.PoolTimeout:
        by_vector = queries.vector_search(conn, vector, candidates, request.filter, required)
        keyword_rows = keyword(conn)
    return ranking.fuse([by_vector, keyword_rows], depth)


def wait_for(
    request: SearchRequest,
    pool: psycopg_pool.ConnectionPool[Any],
    listener: ChangeListener,
    deadline: float,
) -> list[Any]:
    """What is still missing when everything awaited is applied (nothing) or at `deadline`
    (time.monotonic). Re-checks only when Postgres notifies a commit."""
    if not request.wait_for:
        return []
    while True:
        generation = listener.generation  # before the check: no notification slips between
        with pool.connection() as conn:
            missing = queries.missing(conn, request.wait_for)
        remaining = deadline - time.monotonic()
        if not missing or remaining <= 0:
            return missing
        listener.wait(after=generation, timeout=remaining)


def current_lsn(pool: psycopg_pool.ConnectionPool[Any]) -> str:
    """Where the primary's write-ahead log is now: past every commit seen so far."""
    with pool.connection() as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    return str(row[0])


def replayed_on(replica: psycopg_pool.ConnectionPool[Any], lsn: str, deadline: float) -> bool:
    """Until the replica has replayed the primary's log up to `lsn`, or the deadline. A
    standby has no notification for its replay, so this polls it (every 5 ms, briefly:
    streaming replicas replay within milliseconds). A server that is not a standby has
    nothing to replay."""
    while True:
        with replica.connection() as conn:
            row = conn.execute(
                "SELECT coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, true)", (lsn,)
            ).fetchone()
        if row is not None and row[0]:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)


def _freshness(raw: dict[str, Any], lag_probe: CachedLatestOffsets | None) -> Freshness:
    as_of = raw["as_of"]
    sources = []
    for row in with_lag(raw["sources"], lag_probe):
        event_time = row.get("event_time")
        lag_ms: float | None = None
        if row["lag"] == 0:
            lag_ms = 0.0
        elif row["lag"] and event_time is not None:
            lag_ms = (as_of - event_time).total_seconds() * 1000
        sources.append(SourceFreshness(**{**row, "event_time": event_time, "lag_ms": lag_ms}))
    return Freshness(
        as_of=as_of,
        last_change_at=raw["last_change_at"],
        last_change_age_ms=raw["last_change_age_ms"],
        sources=sources,
    )
