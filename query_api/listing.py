"""GET /v1/documents: the indexed documents of a tenant in doc_id order, a page at a time.

Keyset paging: the cursor is the last doc_id of the previous page (opaque to clients,
base64url), so pages stay consistent while the index changes underneath."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from query_api.models import DocumentInfo

MAX_PAGE = 1000


class DocumentPage(BaseModel):
    documents: list[DocumentInfo]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


def encode_cursor(doc_id: str) -> str:
    return base64.urlsafe_b64encode(doc_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The doc_id a cursor stands for; ValueError if it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as e:
        raise ValueError("invalid cursor: pass the next_cursor of a previous page") from e


def page(
    conn: psycopg.Connection[Any], tenant: str, prefix: str | None, limit: int, after: str | None
) -> DocumentPage:
    """Up to `limit` live documents after the doc_id `after`, whose doc_id starts with
    `prefix`."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """SELECT doc_id, tenant, version, title, chunk_count, metadata, indexed_at
               FROM documents
               WHERE tenant = %(tenant)s AND NOT deleted
                 AND (%(prefix)s::text IS NULL OR starts_with(doc_id, %(prefix)s))
                 AND (%(after)s::text IS NULL OR doc_id > %(after)s)
               ORDER BY doc_id LIMIT %(limit)s""",
            {"tenant": tenant, "prefix": prefix, "after": after, "limit": limit + 1},
        ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return DocumentPage(
        documents=[DocumentInfo(**row) for row in rows],
        next_cursor=encode_cursor(rows[-1]["doc_id"]) if more else None,
    )
