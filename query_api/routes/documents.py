"""GET /v1/documents/{doc_id}."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query

from query_api import queries
from query_api.auth import Authenticated, tenant_for
from query_api.models import DocumentInfo
from query_api.state import State

router = APIRouter()


@router.get("/v1/documents/{doc_id:path}", response_model=DocumentInfo)
def get_document(
    doc_id: str,
    caller: Authenticated,
    state: State,
    tenant: str | None = Query(None, max_length=200, description='Default: "default".'),
) -> DocumentInfo:
    """The indexed version of a document; 404 if it was never indexed or is deleted."""
    tenant = tenant_for(caller, tenant)
    with state.read_pool.connection() as conn:
        row = queries.document(conn, tenant, doc_id)
    if row is None:
        raise HTTPException(404, f"no document {doc_id!r} in tenant {tenant!r}")
    return DocumentInfo(**row)
