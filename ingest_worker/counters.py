"""Lifetime counters kept in Postgres (`counters` table), so they hold across processes and
restarts; GET /v1/stats and /metrics read them back."""

from __future__ import annotations

from typing import Any

import psycopg


def bump(cur: psycopg.Cursor[Any], **deltas: int) -> None:
    """Add to persistent counters (in the caller's transaction)."""
    names = [n for n, d in deltas.items() if d]
    if names:
        cur.execute(
            """INSERT INTO counters (name, value) SELECT * FROM unnest(%s::text[], %s::bigint[])
               ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value""",
            (names, [deltas[n] for n in names]),
        )
