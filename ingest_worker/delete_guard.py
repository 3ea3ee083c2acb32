"""The mass-delete guard: a source that would delete too many of its documents at once (an
unmounted share looks exactly like a folder whose files were all deleted) is held until an
operator confirms.

`Threshold` is the pure rule; the rest reads and writes `delete_holds` (one open hold per
source). A source asks `check` before deleting; `freshindex confirm-deletes SOURCE` marks
the open hold confirmed, and the next `check` lets the deletes through and releases it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Threshold:
    """Hold when deletes exceed both `share` of the source's documents and `minimum`."""

    share: float = 0.5
    minimum: int = 20

    def exceeded(self, deletes: int, documents: int) -> bool:
        return deletes > self.minimum and deletes > self.share * documents


def check(
    conn: psycopg.Connection[Any], threshold: Threshold, source: str, deletes: int, documents: int
) -> bool:
    """True if `deletes` of the `documents` of `source` may go ahead: under the threshold
    (an open hold is then released: the files came back) or confirmed by an operator."""
    if not threshold.exceeded(deletes, documents):
        release(conn, source, "cleared")
        return True
    reason = (
        f"{deletes} of {documents} documents would be deleted at once (over "
        f"{threshold.share:.0%} and {threshold.minimum}); run `freshindex confirm-deletes "
        f"{source}` if that is intended"
    )
    with conn.transaction():
        row = conn.execute(
            """INSERT INTO delete_holds (source, deletes, documents, reason)
               VALUES (%s, %s, %s, %s)
               ON CONFLICT (source) WHERE released_at IS NULL DO UPDATE
                   SET deletes = excluded.deletes, documents = excluded.documents,
                       reason = excluded.reason
               RETURNING confirmed_at IS NOT NULL, xmax = 0""",
            (source, deletes, documents, reason),
        ).fetchone()
    assert row is not None
    if row[0]:
        release(conn, source, "confirmed")
        return True
    if row[1]:  # a new hold: say so once, not at every rescan
        log.warning("holding deletes of %s: %s", source, reason)
    return False


def release(conn: psycopg.Connection[Any], source: str, why: str) -> None:
    released = conn.execute(
        "UPDATE delete_holds SET released_at = now() WHERE source = %s AND released_at IS NULL",
        (source,),
    ).rowcount
    if released:
        log.warning("deletes of %s no longer held (%s)", source, why)


def confirmed(conn: psycopg.Connection[Any], source: str) -> bool:
    row = conn.execute(
        """SELECT 1 FROM delete_holds
           WHERE source = %s AND released_at IS NULL AND confirmed_at IS NOT NULL""",
        (source,),
    ).fetchone()
    return row is not None


def confirm(conn: psycopg.Connection[Any], source: str) -> int:
    """Let the held deletes of `source` through (the worker applies them within seconds)."""
    return conn.execute(
        """UPDATE delete_holds SET confirmed_at = now()
           WHERE source = %s AND released_at IS NULL AND confirmed_at IS NULL""",
        (source,),
    ).rowcount


def open_holds(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT source, deletes, documents, reason, held_at, confirmed_at
               FROM delete_holds WHERE released_at IS NULL ORDER BY source"""
        ).fetchall()
