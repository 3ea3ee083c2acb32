"""POST /v1/search."""

from __future__ import annotations

from fastapi import APIRouter

from ingest_worker.metrics import SEARCH_SECONDS
from query_api.auth import Authenticated, scoped
from query_api.models import SearchRequest, SearchResponse
from query_api.search import answer
from query_api.state import State

router = APIRouter()


@router.post("/v1/search", response_model=SearchResponse)
def search(request: SearchRequest, caller: Authenticated, state: State) -> SearchResponse:
    """The k best chunks (or with group_by, documents) for the query from the freshest
    committed data, after waiting (bounded) for the versions or Kafka positions in
    `wait_for`."""
    request = scoped(request, caller)
    with SEARCH_SECONDS.labels(request.mode).time():
        return answer(
            request, state.embedder_for, state.pool, state.listener, state.lag_probe,
            state.read_pool, state.bm25,
        )  # fmt: skip
