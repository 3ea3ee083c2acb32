"""GET /v1/changes: the change feed (Server-Sent Events, see `query_api.feed`)."""

from __future__ import annotations

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from query_api import feed
from query_api.auth import Authenticated, tenant_for
from query_api.state import State

router = APIRouter()


@router.get("/v1/changes")
def changes(
    caller: Authenticated,
    state: State,
    tenant: str | None = Query(None, max_length=200, description='Default: "default".'),
    last_event_id: int | None = Header(None, ge=0),
) -> StreamingResponse:
    """Server-Sent Events of committed changes (doc_id, version, op, indexed_at);
    reconnecting clients resume after their Last-Event-ID."""
    return StreamingResponse(
        feed.stream(state.pool, state.listener, tenant_for(caller, tenant), last_event_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
