"""The HTTP API: FastAPI over a psycopg connection pool. Handlers are plain functions (run in
FastAPI's thread pool), because both the model and psycopg's pool are synchronous."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool
from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pgvector.psycopg import register_vector
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from ingest_worker import dead_letters, migrations
from ingest_worker.embedding import Embedder
from ingest_worker.metrics import SEARCH_SECONDS
from query_api import feed, queries
from query_api.auth import Authenticated, BodyLimit, require_admin, scoped, tenant_for
from query_api.index_metrics import IndexCollector
from query_api.lag import CachedLatestOffsets, LatestOffsets, with_lag
from query_api.listener import ChangeListener
from query_api.models import DeadLetter, DocumentInfo, SearchRequest, SearchResponse, Stats
from query_api.search import answer

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"


def create_app(
    database_url: str,
    embedder_factory: Callable[[], Embedder],
    latest_offsets: LatestOffsets | None = None,
    load_model: Callable[[str], Embedder] | None = None,
    *,
    read_database_url: str | None = None,
    require_keys: bool = False,
    max_body_bytes: int = 64 * 1024,
) -> FastAPI:
    """The app; the model loads at startup, so /readyz turns ready once it can answer.
    With `require_keys`, every /v1 endpoint needs an API key (see query_api.auth). With
    `read_database_url`, searches and document reads go to that replica."""
    state: dict[str, Any] = {}
    lag_probe = CachedLatestOffsets(latest_offsets) if latest_offsets else None
    listener = ChangeListener(database_url)
    model_lock = threading.Lock()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state["embedder"] = embedder_factory()
        pool = _open_pool(database_url)
        state["pool"] = app.state.pool = pool
        state["read_pool"] = _open_pool(read_database_url) if read_database_url else pool
        listener.start()
        try:
            yield
        finally:
            listener.stop()
            pool.close()
            if state["read_pool"] is not pool:
                state["read_pool"].close()

    app = FastAPI(
        title="freshindex",
        summary="Search a vector index that is kept continuously fresh.",
        lifespan=lifespan,
    )

    def pool() -> psycopg_pool.ConnectionPool[Any]:
        """The primary: where workers commit and NOTIFY."""
        return state["pool"]  # type: ignore[no-any-return]

    def read_pool() -> psycopg_pool.ConnectionPool[Any]:
        """Where searches and document reads go: a replica, or the primary."""
        return state["read_pool"]  # type: ignore[no-any-return]

    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.state.require_keys = require_keys

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(psycopg_pool.PoolTimeout)
    async def database_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return JSONResponse(
            status_code=503,
            content={"detail": "the database is unavailable; retry shortly"},
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(psycopg.DataError)
    async def unstorable_input(_: Request, exc: Exception) -> JSONResponse:
        """Input Postgres cannot hold (a NUL in a path or query parameter): the caller's
        mistake, not a server error."""
        return JSONResponse(status_code=422, content={"detail": f"invalid input: {exc}"})

    @app.post("/v1/search", response_model=SearchResponse)
    def search(request: SearchRequest, caller: Authenticated) -> SearchResponse:
        """The k best chunks for the query from the freshest committed data, after waiting
        (bounded) for the versions or Kafka positions in `wait_for`."""
        request = scoped(request, caller)
        with SEARCH_SECONDS.labels(request.mode).time():
            return answer(request, embedder, pool(), listener, lag_probe, read_pool())

    def embedder(model: str | None) -> Embedder:
        """The loaded model, or `model` (which the index switched to) once loaded."""
        current: Embedder = state["embedder"]
        if load_model is None or model is None or model == current.model_name:
            return current
        with model_lock:
            if state["embedder"].model_name != model:
                log.info("the index switched to model %s; loading it", model)
                state["embedder"] = load_model(model)
            return state["embedder"]  # type: ignore[no-any-return]

    @app.get("/v1/changes")
    def changes(
        caller: Authenticated,
        tenant: str | None = Query(None, max_length=200, description='Default: "default".'),
        last_event_id: int | None = Header(None, ge=0),
    ) -> StreamingResponse:
        """Server-Sent Events of committed changes (doc_id, version, op, indexed_at);
        reconnecting clients resume after their Last-Event-ID."""
        return StreamingResponse(
            feed.stream(pool(), listener, tenant_for(caller, tenant), last_event_id),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/v1/documents/{doc_id:path}", response_model=DocumentInfo)
    def get_document(
        doc_id: str,
        caller: Authenticated,
        tenant: str | None = Query(None, max_length=200, description='Default: "default".'),
    ) -> DocumentInfo:
        """The indexed version of a document; 404 if it was never indexed or is deleted."""
        tenant = tenant_for(caller, tenant)
        with read_pool().connection() as conn:
            row = queries.document(conn, tenant, doc_id)
        if row is None:
            raise HTTPException(404, f"no document {doc_id!r} in tenant {tenant!r}")
        return DocumentInfo(**row)

    @app.get("/v1/stats", response_model=Stats)
    def get_stats(caller: Authenticated) -> Stats:
        """Index size and lifetime counters (kept in Postgres, so they survive restarts).
        Index-wide: with API keys, an admin key."""
        require_admin(caller)
        with pool().connection() as conn:
            stats = queries.stats(conn)
        stats["sources"] = with_lag(stats["sources"], lag_probe)
        return Stats(**stats)

    @app.get("/v1/dead-letters", response_model=list[DeadLetter])
    def get_dead_letters(
        caller: Authenticated,
        limit: int = Query(50, ge=1, le=1000),
        offset: int = Query(0, ge=0),
    ) -> list[DeadLetter]:
        """Events that could not be indexed, newest first, with their reasons (a tenant key
        sees its tenant's)."""
        with pool().connection() as conn:
            rows = dead_letters.listing(conn, limit, offset, tenant=caller.tenant)
        return [DeadLetter(**row) for row in rows]

    @app.get("/", include_in_schema=False)
    def search_page() -> FileResponse:
        """The search page for people: results, live index status and change feed."""
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    registry = CollectorRegistry()
    registry.register(IndexCollector(pool, lag_probe))

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        """Prometheus metrics: this process's counters and histograms, and index-wide gauges
        (documents, chunks, dead letters, lag per partition) read from Postgres."""
        body = generate_latest(REGISTRY) + generate_latest(registry)
        return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        """Readiness: the database answers and every migration is applied."""
        try:
            with pool().connection(timeout=2.0) as conn:
                missing = [m.name for m in migrations.pending(conn)]
        except (psycopg.Error, psycopg_pool.PoolTimeout) as e:
            return JSONResponse({"status": "unavailable", "detail": str(e)}, status_code=503)
        if missing:
            return JSONResponse(
                {"status": "migrations pending", "detail": missing}, status_code=503
            )
        return JSONResponse({"status": "ready"})

    return app


def _open_pool(url: str) -> psycopg_pool.ConnectionPool[Any]:
    """Opened in the background: the API starts (and /readyz says why) while Postgres is away."""
    pool = psycopg_pool.ConnectionPool(
        url,
        min_size=1,
        max_size=8,
        open=False,
        timeout=5.0,
        kwargs={"autocommit": True},
        configure=register_vector,
    )
    pool.open(wait=False)
    return pool
