"""GET /v1/changes: Server-Sent Events of committed document changes, resumable with
Last-Event-ID (the change's id in the `changes` table)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import psycopg_pool

from query_api import queries
from query_api.listener import ChangeListener

KEEPALIVE_S = 15.0


async def stream(
    pool: psycopg_pool.ConnectionPool[Any],
    listener: ChangeListener,
    tenant: str,
    last_event_id: int | None,
) -> AsyncIterator[str]:
    """Replay what the client missed, then live changes; a comment line keeps proxies open."""
    queue = listener.subscribe()  # before reading the backlog: nothing falls in between
    try:
        last = await asyncio.to_thread(_start, pool, last_event_id)
        while True:
            backlog = await asyncio.to_thread(_backlog, pool, tenant, last)
            for change in backlog:
                last = change["id"]
                yield _event(change)
            if len(backlog) < 1000:
                break
        while True:
            try:
                change = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if change["tenant"] == tenant and change["id"] > last:
                last = change["id"]
                yield _event(change)
    finally:
        listener.unsubscribe(queue)


def _start(pool: psycopg_pool.ConnectionPool[Any], last_event_id: int | None) -> int:
    """Resume after the client's last id, or start from now."""
    if last_event_id is not None:
        return last_event_id
    with pool.connection() as conn:
        return queries.last_change_id(conn)


def _backlog(
    pool: psycopg_pool.ConnectionPool[Any], tenant: str, after: int
) -> list[dict[str, Any]]:
    with pool.connection() as conn:
        return queries.changes_after(conn, tenant, after)


def _event(change: dict[str, Any]) -> str:
    body = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in change.items()}
    return f"id: {change['id']}\nevent: change\ndata: {json.dumps(body)}\n\n"
