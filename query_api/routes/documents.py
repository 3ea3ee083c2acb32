"""GET /v1/documents (a page of the index) and GET /v1/documents/{doc_id}."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query

from query_api import listing, queries
from query_api.auth import Authenticated, tenant_for
from query_api.listing import DocumentPage
from query_api.models import DocumentInfo
from query_api.state import State

router = APIRouter()
Tenant = Query(None, max_length=200, description='Default: "default".')


@router.get("/v1/documents", response_model=DocumentPage)
def list_documents(
    caller: Authenticated,
    state: State,
    tenant: str | None = Tenant,
    prefix: str | None = Query(None, max_length=1000, description="doc_id starts with this."),
    limit: int = Query(100, ge=1, le=listing.MAX_PAGE),
    cursor: str | None = Query(None, max_length=2000, description="A page's next_cursor."),
) -> DocumentPage:
    """Indexed documents in doc_id order, `limit` at a time; follow `next_cursor`."""
    tenant = tenant_for(caller, tenant)
    try:
        after = listing.decode_cursor(cursor) if cursor else None
    except ValueError as e:
        raise HTTPException(422, str(e)) from e
    with state.read_pool.connection() as conn:
        return listing.page(conn, tenant, prefix, limit, after)


@router.get("/v1/documents/{doc_id:path}", response_model=DocumentInfo)
def get_document(
    doc_id: str, caller: Authenticated, state: State, tenant: str | None = Tenant
) -> DocumentInfo:
    """The indexed version of a document; 404 if it was never indexed or is deleted."""
    tenant = tenant_for(caller, tenant)
    with state.read_pool.connection() as conn:
        row = queries.document(conn, tenant, doc_id)
    if row is None:
        raise HTTPException(404, f"no document {doc_id!r} in tenant {tenant!r}")
    return DocumentInfo(**row)
