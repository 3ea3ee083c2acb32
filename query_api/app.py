"""The HTTP API: FastAPI over a psycopg connection pool. Handlers are plain functions (run in
FastAPI's thread pool), because both the model and psycopg's pool are synchronous."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import psycopg_pool
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pgvector.psycopg import register_vector

from ingest_worker import migrations
from ingest_worker.embedding import Embedder
from query_api import queries
from query_api.lag import CachedLatestOffsets, LatestOffsets, with_lag
from query_api.models import DocumentInfo, Hit, SearchRequest, SearchResponse, Stats

log = logging.getLogger(__name__)


def create_app(
    database_url: str,
    embedder_factory: Callable[[], Embedder],
    latest_offsets: LatestOffsets | None = None,
) -> FastAPI:
    """The app; the model loads at startup, so /readyz turns ready once it can answer."""
    state: dict[str, Any] = {}
    lag_probe = CachedLatestOffsets(latest_offsets) if latest_offsets else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state["embedder"] = embedder_factory()
        pool = psycopg_pool.ConnectionPool(
            database_url,
            min_size=1,
            max_size=8,
            open=False,
            timeout=5.0,
            kwargs={"autocommit": True},
            configure=register_vector,
        )
        pool.open(wait=False)
        state["pool"] = pool
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(
        title="freshindex",
        summary="Search a vector index that is kept continuously fresh.",
        lifespan=lifespan,
    )

    def pool() -> psycopg_pool.ConnectionPool[Any]:
        return state["pool"]  # type: ignore[no-any-return]

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(psycopg_pool.PoolTimeout)
    async def database_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return JSONResponse(
            status_code=503,
            content={"detail": "the database is unavailable; retry shortly"},
            headers={"Retry-After": "2"},
        )

    @app.post("/v1/search", response_model=SearchResponse)
    def search(request: SearchRequest) -> SearchResponse:
        """The k chunks most similar to the query, from the freshest committed data."""
        started = time.perf_counter()
        embedder: Embedder = state["embedder"]
        vector = embedder.embed([request.query])[0]
        with pool().connection() as conn:
            rows = queries.search(conn, vector, request.k, request.filter)
            freshness = queries.freshness(conn)
        return SearchResponse(
            hits=[Hit(**row) for row in rows],
            freshness=freshness,
            took_ms=(time.perf_counter() - started) * 1000,
        )

    @app.get("/v1/documents/{doc_id:path}", response_model=DocumentInfo)
    def get_document(doc_id: str, tenant: str = Query("default", max_length=200)) -> DocumentInfo:
        """The indexed version of a document; 404 if it was never indexed or is deleted."""
        with pool().connection() as conn:
            row = queries.document(conn, tenant, doc_id)
        if row is None:
            raise HTTPException(404, f"no document {doc_id!r} in tenant {tenant!r}")
        return DocumentInfo(**row)

    @app.get("/v1/stats", response_model=Stats)
    def get_stats() -> Stats:
        """Index size and lifetime counters (kept in Postgres, so they survive restarts)."""
        with pool().connection() as conn:
            stats = queries.stats(conn)
        stats["sources"] = with_lag(stats["sources"], lag_probe)
        return Stats(**stats)

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
