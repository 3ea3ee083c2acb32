"""GET /v1/stats and GET /v1/dead-letters: the index as a whole, and what it refused."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ingest_worker import dead_letters
from query_api import queries
from query_api.auth import Authenticated, require_admin
from query_api.lag import with_lag
from query_api.models import DeadLetter, Stats
from query_api.state import State

router = APIRouter()


@router.get("/v1/stats", response_model=Stats)
def get_stats(caller: Authenticated, state: State) -> Stats:
    """Index size and lifetime counters (kept in Postgres, so they survive restarts).
    Index-wide: with API keys, an admin key."""
    require_admin(caller)
    with state.pool.connection() as conn:
        stats = queries.stats(conn)
    stats["sources"] = with_lag(stats["sources"], state.lag_probe)
    return Stats(**stats)


@router.get("/v1/dead-letters", response_model=list[DeadLetter])
def get_dead_letters(
    caller: Authenticated,
    state: State,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    state_filter: Annotated[dead_letters.State, Query(alias="state")] = "open",
) -> list[DeadLetter]:
    """Events that could not be indexed, newest first, with their reasons (a tenant key
    sees its tenant's). Open ones by default; `state=resolved` or `all` for history."""
    with state.pool.connection() as conn:
        rows = dead_letters.listing(conn, limit, offset, caller.tenant, state_filter)
    return [DeadLetter(**row) for row in rows]
