"""GET /healthz, /readyz and /metrics: for orchestrators and Prometheus."""

from __future__ import annotations

import psycopg
import psycopg_pool
from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from ingest_worker import migrations
from query_api.state import State

router = APIRouter()


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(state: State) -> PlainTextResponse:
    """Prometheus metrics: this process's counters and histograms, and index-wide gauges
    (documents, chunks, dead letters, lag per partition) read from Postgres."""
    body = generate_latest(REGISTRY) + generate_latest(state.index_metrics)
    return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(state: State) -> JSONResponse:
    """Readiness: the database answers and every migration is applied."""
    try:
        with state.pool.connection(timeout=2.0) as conn:
            missing = [m.name for m in migrations.pending(conn)]
    except (psycopg.Error, psycopg_pool.PoolTimeout) as e:
        return JSONResponse({"status": "unavailable", "detail": str(e)}, status_code=503)
    if missing:
        return JSONResponse({"status": "migrations pending", "detail": missing}, status_code=503)
    return JSONResponse({"status": "ready"})
