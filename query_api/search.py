"""POST /v1/search: wait for the caller's writes (bounded), then search, then say how fresh
the answer is."""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg_pool

from ingest_worker import reindex
from ingest_worker.embedding import Embedder, Vector
from query_api import keywords, queries, ranking, snapshots
from query_api.bm25 import DEFAULT_BM25, Bm25, keyword_search
from query_api.lag import CachedLatestOffsets, with_lag
from query_api.listener import ChangeListener
from query_api.models import Freshness, Hit, SearchRequest, SearchResponse, SourceFreshness

EmbedderFor = Callable[[str | None], Embedder]  # the loaded model, or the one named
FUSION_DEPTH = 4  # hybrid mode fuses the top 4k of each ranking,
FUSION_CANDIDATES = 100  # and at least the top 100
# A keyword ranking is split among this many connections (query_api.bm25): the cores of
# the machine this was measured on; more help a Postgres with more cores.
KEYWORD_PARTS = 2
_HALVES = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="keyword-half")


def answer(
    request: SearchRequest,
    embedder_for: EmbedderFor,
    pool: psycopg_pool.ConnectionPool[Any],
    listener: ChangeListener,
    lag_probe: CachedLatestOffsets | None,
    read_pool: psycopg_pool.ConnectionPool[Any] | None = None,
    bm25: Bm25 = DEFAULT_BM25,
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
        rows, freshness = _rank_with_the_index_model(conn, request, embedder_for, bm25, read_pool)
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
    bm25: Bm25,
    pool: psycopg_pool.ConnectionPool[Any],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rank with the model the index uses, read once per search, after the query: a
    `freshindex reindex` may have switched models between our embedding and our query
    (then the dimensions clash, or the model read differs), and we rank again with it."""
    if request.mode == "keyword":
        return _rank(conn, request, None, bm25, pool)
    model: str | None = None  # None: the model this process has loaded
    for _ in range(3):
        embedder = embedder_for(model)
        # Embedded when first needed: a hybrid search starts its keyword half first.
        query_vector = functools.cache(lambda e=embedder: e.embed([request.query])[0])
        try:
            ranked = _rank(conn, request, query_vector, bm25, pool)
        except psycopg.errors.DataException as e:
            if "dimensions" not in str(e):
                raise
            ranked = None
        model = reindex.active_model(conn)
        if ranked is not None and model in (None, embedder.model_name):
            return ranked  # (None: nothing indexed yet)
    raise psycopg.OperationalError("the embedding model is being switched; retry")


QueryVector = Callable[[], Vector]


def _rank(
    conn: psycopg.Connection[Any],
    request: SearchRequest,
    query_vector: QueryVector | None,
    bm25: Bm25,
    pool: psycopg_pool.ConnectionPool[Any],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The k best chunks, or with `group_by` the k best documents, and how fresh they are,
    in one snapshot."""
    hybrid = request.mode == "hybrid"
    if query_vector is not None and not hybrid:
        query_vector()  # before the snapshot's locks, not while holding them
    with snapshots.read_only(conn):
        return _rank_in_snapshot(conn, request, query_vector, bm25, pool), queries.freshness(conn)


def _rank_in_snapshot(
    conn: psycopg.Connection[Any],
    request: SearchRequest,
    query_vector: QueryVector | None,
    bm25: Bm25,
    pool: psycopg_pool.ConnectionPool[Any],
) -> list[dict[str, Any]]:
    """The k best chunks; with `group_by` chunks ranked ever deeper until k distinct
    documents are among them (or there are no more chunks)."""
    hybrid = request.mode == "hybrid"
    wanted = {"vector": 0, "keyword": KEYWORD_PARTS - 1, "hybrid": KEYWORD_PARTS}[request.mode]
    with _spares(conn, pool, wanted) as spares:
        # Hybrid ranks by keywords on the spares while `conn` ranks by vector.
        keyword_readers = spares if hybrid and spares else [conn, *spares]
        if request.group_by is None:
            depth = _fusion_depth(request.k) if hybrid else request.k
            memo = _Memo(depth, keyword_readers)
            ranked, _ = _ranking(conn, request, query_vector, bm25, depth, memo)
            return queries.hits(conn, ranked[: request.k])
        depth = request.k * request.chunks_per_document
        depth = _fusion_depth(depth) if hybrid else depth
        # Ranked by keywords as deep as the next round needs: most searches need one round
        # (187 of 200 title queries on the 100k-chunk manuals), most others two.
        memo = _Memo(min(depth * 4, queries.MAX_DEPTH), keyword_readers)
        while True:
            ranked, complete = _ranking(conn, request, query_vector, bm25, depth, memo)
            documents = ranking.by_document(ranked, request.k, request.chunks_per_document)
            if len(documents) == request.k or complete or depth >= queries.MAX_DEPTH:
                return _document_hits(conn, documents)
            depth = min(depth * 4, queries.MAX_DEPTH)


@contextlib.contextmanager
def _spares(
    conn: psycopg.Connection[Any], pool: psycopg_pool.ConnectionPool[Any], wanted: int
) -> Iterator[list[psycopg.Connection[Any]]]:
    """Up to `wanted` more connections reading `conn`'s snapshot: as many as the pool can
    spare at once (waiting for one could deadlock a busy pool) and that can share the
    snapshot at once (not while a rewrite waits for its locks; not on another replica)."""
    with contextlib.ExitStack() as held:
        spares: list[psycopg.Connection[Any]] = []
        snapshot = snapshots.export(conn) if wanted else ""
        for _ in range(wanted):
            try:
                spare = pool.getconn(timeout=0.001)
            except psycopg_pool.PoolTimeout:
                break
            held.callback(pool.putconn, spare)
            try:
                held.enter_context(snapshots.read_only(spare, snapshot))
            except psycopg.Error:
                break
            spares.append(spare)
        yield spares


@dataclass
class _Memo:
    """A search's keyword ranking on `readers` (one snapshot; the ranking is split among
    them), `depth` deep or deeper, ranked on first use and again only if asked deeper."""

    depth: int
    readers: list[psycopg.Connection[Any]]
    ranked: list[queries.Ranked] | None = None

    def keyword_ranking(
        self, request: SearchRequest, bm25: Bm25, depth: int
    ) -> list[queries.Ranked]:
        """At least `depth` deep (fewer: every chunk that matches), ties by chunk id, so
        it can be cut anywhere."""
        if self.ranked is None or len(self.ranked) == self.depth < depth:
            self.depth = max(self.depth, depth)
            self.ranked = keyword_search(
                self.readers, request.query, self.depth, request.filter, bm25
            )
        return self.ranked


def _fusion_depth(k: int) -> int:
    return min(max(k * FUSION_DEPTH, FUSION_CANDIDATES), queries.MAX_DEPTH)


def _ranking(
    conn: psycopg.Connection[Any],
    request: SearchRequest,
    query_vector: QueryVector | None,
    bm25: Bm25,
    depth: int,
    keyword_memo: _Memo,
) -> tuple[list[queries.Ranked], bool]:
    """Chunks ranked `depth` deep (hybrid: both halves that deep, all of them fused), and
    whether that is every chunk that matches."""
    if query_vector is None:
        ranked = keyword_memo.keyword_ranking(request, bm25, depth)[:depth]
        return ranked, len(ranked) < depth
    if request.mode == "vector":
        ranked = queries.vector_search(conn, query_vector(), depth, request.filter)
        return ranked, len(ranked) < depth
    by_vector, by_keyword = _hybrid_halves(conn, request, query_vector, bm25, depth, keyword_memo)
    halves = by_vector, by_keyword[:depth]
    return ranking.fuse(halves), all(len(half) < depth for half in halves)


def _hybrid_halves(
    conn: psycopg.Connection[Any],
    request: SearchRequest,
    query_vector: QueryVector,
    bm25: Bm25,
    depth: int,
    keyword_memo: _Memo,
) -> tuple[list[queries.Ranked], list[queries.Ranked]]:
    """The vector ranking and the keyword ranking, `depth` deep or deeper (from the memo if
    it ran that deep before). When the keyword ranking has readers of its own, it
    runs there while the query is embedded and the vector half runs; else after it."""
    required = keywords.read(request.query).required  # "a phrase", -word narrow both halves

    def by_vector() -> list[queries.Ranked]:
        return queries.vector_search(conn, query_vector(), depth, request.filter, required)

    if keyword_memo.ranked is not None or conn in keyword_memo.readers:
        vector_half = by_vector()
        return vector_half, keyword_memo.keyword_ranking(request, bm25, depth)
    keyword_half = _HALVES.submit(keyword_memo.keyword_ranking, request, bm25, depth)
    try:
        vector_half = by_vector()
    finally:
        concurrent.futures.wait([keyword_half])  # its readers are in use until then
    return vector_half, keyword_half.result()


def _document_hits(
    conn: psycopg.Connection[Any], documents: list[list[queries.Ranked]]
) -> list[dict[str, Any]]:
    """Each document's best chunk as its hit, its further chunks in `more_chunks`."""
    shown = iter(queries.hits(conn, [chunk for chunks in documents for chunk in chunks]))
    hits = []
    for chunks in documents:
        best, *more = [next(shown) for _ in chunks]
        fields = ("ordinal", "heading", "text", "score")
        hits.append({**best, "more_chunks": [{f: chunk[f] for f in fields} for chunk in more]})
    return hits


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
