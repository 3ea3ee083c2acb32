"""Request and response bodies of the HTTP API (they make the OpenAPI schema at /docs)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

MAX_QUERY_CHARS = 4000
MAX_FILTER_KEYS = 32


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL (\\x00) characters")
    return value


# Every string a request hands to Postgres: its text type cannot hold NUL.
Text = Annotated[str, AfterValidator(_no_nul)]


class SearchFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metadata: dict[Text, Text | int | float | bool] = Field(
        default_factory=dict, description="Hits' metadata must contain these key/value pairs."
    )
    doc_id_prefix: Text | None = Field(
        default=None, max_length=1000, description="Only documents whose doc_id starts so."
    )
    tenant: Text = Field(default="default", max_length=200)

    @field_validator("metadata")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_FILTER_KEYS:
            raise ValueError(f"at most {MAX_FILTER_KEYS} metadata keys can be filtered on")
        return value


class WaitForDocument(BaseModel):
    """Wait until this document is indexed at this version or newer."""

    model_config = ConfigDict(extra="forbid")

    doc_id: Text = Field(max_length=1000)
    version: int = Field(ge=0)
    tenant: Text = Field(default="default", max_length=200)


class WaitForPosition(BaseModel):
    """Wait until this Kafka message (what `freshindex publish` prints) is applied."""

    model_config = ConfigDict(extra="forbid")

    topic: Text = Field(max_length=249)
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Text = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="What to look for.")
    k: int = Field(default=10, ge=1, le=100, description="How many hits to return.")
    filter: SearchFilter = Field(default_factory=SearchFilter)
    mode: Literal["vector", "keyword", "hybrid"] = Field(
        default="hybrid",
        description="hybrid (the default: both below, fused by reciprocal rank), vector "
        "(meaning: cosine similarity of embeddings) or keyword (Okapi BM25 over English-"
        'stemmed words: any word may match). In keyword and hybrid mode "a phrase" must '
        "appear and -word must not.",
    )
    group_by: Literal["document"] | None = Field(
        default=None,
        description='"document": k distinct documents, each once with its best chunk (and '
        "up to chunks_per_document - 1 more of its chunks in more_chunks).",
    )
    chunks_per_document: int = Field(default=3, ge=1, le=10)
    wait_for: list[WaitForDocument | WaitForPosition] = Field(
        default_factory=list,
        max_length=100,
        description="Answer only once these are indexed (read-your-writes), or at the timeout "
        'with "fresh": false.',
    )
    wait_timeout_ms: int = Field(default=5000, ge=0, le=10_000)

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query must contain some text")
        return value


_SCORE = (
    "vector: cosine similarity (1 = same direction); keyword: BM25; hybrid: reciprocal-rank "
    "fusion (sum of 1 / (60 + rank)). Higher is better; compare within one answer."
)


class ChunkMatch(BaseModel):
    ordinal: int
    heading: str
    text: str
    score: float = Field(description=_SCORE)


class Hit(BaseModel):
    doc_id: str
    ordinal: int
    text: str
    heading: str
    title: str | None
    score: float = Field(description=_SCORE)
    metadata: dict[str, Any]
    version: int
    indexed_at: datetime
    more_chunks: list[ChunkMatch] = Field(
        default_factory=list,
        description="With group_by: further matching chunks of this document, best first.",
    )


class SourceState(BaseModel):
    source: str
    partition: int
    position: int | None = Field(description="The last position applied (all before it too).")
    updated_at: datetime | None
    latest_offset: int | None = Field(description="The newest offset in Kafka, if known.")
    lag: int | None = Field(description="Events not applied yet, if known.")


class SourceFreshness(SourceState):
    event_time: datetime | None = Field(description="Event time of the last applied event.")
    lag_ms: float | None = Field(
        description="0 when caught up; else how old the last applied event is (the index "
        "misses everything after it)."
    )


class Freshness(BaseModel):
    as_of: datetime = Field(description="When this answer was read from the index.")
    last_change_at: datetime | None = Field(description="The newest committed change.")
    last_change_age_ms: float | None
    sources: list[SourceFreshness] = Field(default_factory=list)


class SearchResponse(BaseModel):
    hits: list[Hit]
    freshness: Freshness
    fresh: bool = Field(description="False if wait_for timed out; see `missing`.")
    missing: list[WaitForDocument | WaitForPosition] = Field(default_factory=list)
    mode: str
    took_ms: float


class DocumentInfo(BaseModel):
    doc_id: str
    tenant: str
    version: int
    title: str | None
    chunk_count: int
    metadata: dict[str, Any]
    indexed_at: datetime


class Stats(BaseModel):
    documents: int
    chunks: int
    chunks_embedded_total: int
    chunks_reused_total: int
    events_applied_total: int
    events_stale_total: int
    dead_letters: int
    last_change_at: datetime | None
    model: str | None
    sources: list[SourceState]
    embedding_cache: int = Field(description="Vectors in the embedding cache (all models).")
    deletes_held: list[HeldDeletes] = Field(
        default_factory=list, description="Mass deletes waiting for `freshindex confirm-deletes`."
    )


class HeldDeletes(BaseModel):
    source: str
    deletes: int
    documents: int
    reason: str
    held_at: datetime
    confirmed_at: datetime | None


class DeadLetter(BaseModel):
    id: int
    source: str
    tenant: str | None
    doc_id: str | None
    version: int | None
    partition: int | None
    position: int | None
    reason: str
    error_class: str
    created_at: datetime
    state: Literal["open", "resolved"] = Field(
        description="open, or resolved by a later applied version (or a delete) of the document"
    )
    resolved_at: datetime | None = None
    resolved_by_version: int | None = None
