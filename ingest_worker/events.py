"""The value every source produces (one change to one document) and what became of it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ingest_worker.errors import PoisonInput


class Op(StrEnum):
    UPSERT = "upsert"
    DELETE = "delete"


class Outcome(StrEnum):
    """What handling an event did (the `outcome` of logs, metrics and batch reports)."""

    APPLIED = "applied"
    UNCHANGED = "unchanged"  # same content: only the version moved
    STALE = "stale"
    DEAD_LETTER = "dead_letter"  # decided by the pipeline; never returned by `Store.apply`


@dataclass(frozen=True, slots=True)
class SourcePosition:
    """Where an event came from, recorded in the same transaction that applies it."""

    source: str  # "kafka:<topic>" or "folder:<root>"
    partition: int = 0
    position: int = 0


@dataclass(frozen=True, slots=True)
class DocumentEvent:
    """One change to one document.

    `version=None` means "the current state of the source": the store assigns the next
    version. Folder sources use it, because they read a file when they process its event.
    """

    doc_id: str
    op: Op
    source: str
    version: int | None = None
    content: bytes | None = None
    content_type: str | None = None
    filename: str | None = None  # for choosing a parser by extension
    title: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    tenant: str = "default"
    event_time: datetime | None = None
    fingerprint: str | None = None  # the source's cheap change detector, e.g. file stat
    position: SourcePosition | None = None
    poison: PoisonInput | None = None  # the source could not decode it: dead-letter it
