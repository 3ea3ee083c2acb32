"""The HTTP API: FastAPI over a psycopg connection pool. Handlers are plain functions (run in
FastAPI's thread pool), because both the model and psycopg's pool are synchronous.

`create_app` is the factory: it builds the app's `ApiState` (query_api.state), includes one
router per resource (query_api.routes) and maps database errors to HTTP answers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import psycopg
import psycopg_pool
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from ingest_worker.embedding import Embedder
from query_api.auth import BodyLimit
from query_api.bm25 import DEFAULT_BM25, Bm25
from query_api.lag import CachedLatestOffsets, LatestOffsets
from query_api.routes import admin, changes, documents, health, page, search
from query_api.state import ApiState

log = logging.getLogger(__name__)


def create_app(
    database_url: str,
    embedder_factory: Callable[[], Embedder],
    latest_offsets: LatestOffsets | None = None,
    load_model: Callable[[str], Embedder] | None = None,
    *,
    read_database_url: str | None = None,
    require_keys: bool = False,
    max_body_bytes: int = 64 * 1024,
    bm25: Bm25 = DEFAULT_BM25,
) -> FastAPI:
    """The app; the model loads at startup, so /readyz turns ready once it can answer.
    With `require_keys`, every /v1 endpoint needs an API key (see query_api.auth). With
    `read_database_url`, searches and document reads go to that replica; `bm25` holds the
    keyword ranking's parameters."""
    state = ApiState(
        (database_url, read_database_url),
        (embedder_factory, load_model),
        CachedLatestOffsets(latest_offsets) if latest_offsets else None,
        require_keys,
        bm25,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.open()
        try:
            yield
        finally:
            state.close()

    app = FastAPI(
        title="freshindex",
        summary="Search a vector index that is kept continuously fresh.",
        lifespan=lifespan,
    )
    app.state.api = state
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_exception_handler(psycopg.OperationalError, _database_down)
    app.add_exception_handler(psycopg_pool.PoolTimeout, _database_down)
    app.add_exception_handler(psycopg.DataError, _unstorable_input)
    for routes in (search, changes, documents, admin, page):
        app.include_router(routes.router)
    app.mount("/static", StaticFiles(directory=page.STATIC), name="static")
    app.include_router(health.router)
    return app


async def _database_down(_: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", exc)
    return JSONResponse(
        status_code=503,
        content={"detail": "the database is unavailable; retry shortly"},
        headers={"Retry-After": "2"},
    )


async def _unstorable_input(_: Request, exc: Exception) -> JSONResponse:
    """Input Postgres cannot hold (a NUL in a path or query parameter): the caller's
    mistake, not a server error."""
    return JSONResponse(status_code=422, content={"detail": f"invalid input: {exc}"})
