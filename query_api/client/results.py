"""Typed answers of the API, as the client returns them. They tolerate fields a newer
server adds (kept as extra attributes: `hit.model_extra`), so an older client keeps working."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from query_api.listing import DocumentPage
from query_api.models import DocumentInfo, Freshness, Stats

__all__ = ["Change", "DocumentInfo", "DocumentPage", "Freshness", "Hit", "SearchResult", "Stats"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Hit(_Open):
    """One ranked chunk (with `group_by="document"`, newer servers add `more_chunks`)."""

    doc_id: str
    ordinal: int
    text: str
    heading: str = ""
    title: str | None = None
    score: float
    metadata: dict[str, Any] = Field(default_factory=dict)
    version: int
    indexed_at: datetime


class SearchResult(_Open):
    hits: list[Hit]
    freshness: Freshness
    fresh: bool = Field(description="False if wait_for timed out; see `missing`.")
    missing: list[dict[str, Any]] = Field(default_factory=list)
    mode: str
    took_ms: float


class Change(_Open):
    """One committed change from the feed; `id` resumes it (`last_event_id`)."""

    id: int
    tenant: str
    doc_id: str
    version: int | None
    op: str
    indexed_at: datetime
