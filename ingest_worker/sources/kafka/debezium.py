"""Debezium change events ⇄ document events: database rows as documents. Pure.

A Debezium connector writes one message per row change, keyed by the row's primary key:
    {"before": {...} | null, "after": {...} | null, "op": "c" | "u" | "d" | "r",
     "source": {"lsn": 24023128, "ts_ms": 1764620000000, "table": "articles", ...}, ...}
either bare or wrapped as {"schema": {...}, "payload": {...}} (JsonConverter with
schemas.enable). After a delete it sends a tombstone (the key, a null value).

`CdcMapping` turns a row into a document: its doc_id and text are templates over the row's
columns (a bare column name means that column), title one column, metadata some columns.
The version is the change's source LSN, so the snapshot (`r`, the LSN it was read at) and
every later change of a row order correctly, however often Kafka redelivers them.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ingest_worker.errors import CorruptContent, PoisonInput
from ingest_worker.events import DocumentEvent, Op, SourcePosition
from ingest_worker.sources.kafka.events import source_name

Decoder = Callable[..., DocumentEvent]
_OPS = {"c": Op.UPSERT, "u": Op.UPSERT, "r": Op.UPSERT, "d": Op.DELETE}


@dataclass(frozen=True, slots=True)
class CdcMapping:
    """Which columns of a captured table make a document."""

    doc_id: str = "{id}"
    text: str = "body"
    title: str | None = None
    metadata: tuple[str, ...] = ()
    tenant: str = "default"
    content_type: str = "text/plain"

    def doc_id_of(self, row: Mapping[str, Any]) -> str:
        doc_id = _fill(self.doc_id, row)
        if not doc_id.strip():
            raise CorruptContent(f"the doc_id template {self.doc_id!r} gave an empty doc_id")
        return doc_id

    def text_of(self, row: Mapping[str, Any]) -> str:
        return _fill(self.text, row)


def _fill(template: str, row: Mapping[str, Any]) -> str:
    """A template ("{title}\\n\\n{body}") or a bare column name ("body"); NULL is ""."""
    if "{" not in template:
        template = "{" + template + "}"
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    missing = names - set(row)
    if missing:
        raise CorruptContent(
            f"the row has no column {sorted(missing)} (it has {sorted(row)}); fix the "
            "FRESHINDEX_CDC_* settings"
        )
    return template.format_map({n: "" if row[n] is None else row[n] for n in names})


def decoder(mapping: CdcMapping) -> Decoder:
    """A `decode` for the Kafka worker that reads Debezium messages with `mapping`."""

    def decode(
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int | None = None,
    ) -> DocumentEvent:
        position = SourcePosition(source_name(topic), partition, offset)
        try:
            return _decode(mapping, position, key, value)
        except PoisonInput as e:
            return DocumentEvent(
                doc_id=key.decode("utf-8", "replace") if key else "",
                op=Op.UPSERT,
                source=position.source,
                content=value,
                position=position,
                poison=e,
            )

    return decode


def _decode(
    mapping: CdcMapping, position: SourcePosition, key: bytes | None, value: bytes | None
) -> DocumentEvent:
    common: dict[str, Any] = {"source": position.source, "position": position}
    common["tenant"] = mapping.tenant
    if value is None:
        # The tombstone after a delete: the delete event already removed the document.
        # Version 0 is never newer than it, so this only acknowledges the message.
        return DocumentEvent(
            doc_id=mapping.doc_id_of(_payload(key)), op=Op.DELETE, version=0, **common
        )
    change = _payload(value)
    op = _OPS.get(change.get("op", ""))
    if op is None:
        raise CorruptContent(f'"op" must be one of c, u, d, r, not {change.get("op")!r}')
    source = change.get("source") or {}
    row = change.get("before") if op is Op.DELETE else change.get("after")
    if not isinstance(row, dict) or not isinstance(source, dict):
        raise CorruptContent("a Debezium change needs its row (after, or before for d)")
    common |= {"version": _lsn(source), "event_time": _time(source.get("ts_ms"))}
    doc_id = mapping.doc_id_of(row)
    if op is Op.DELETE:
        return DocumentEvent(doc_id=doc_id, op=op, **common)
    title = row.get(mapping.title) if mapping.title else None
    return DocumentEvent(
        doc_id=doc_id,
        op=op,
        content=mapping.text_of(row).encode("utf-8"),
        content_type=mapping.content_type,
        title=str(title) if title is not None else None,
        metadata={c: row[c] for c in mapping.metadata if c in row},
        **common,
    )


def _payload(raw: bytes | None) -> dict[str, Any]:
    """The JSON object of a key or value, unwrapped from the schema envelope if present."""
    try:
        body = json.loads(raw or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptContent(f"not a Debezium JSON message: {e}") from e
    if isinstance(body, dict) and set(body) == {"schema", "payload"}:
        body = body["payload"]
    if not isinstance(body, dict):
        raise CorruptContent("a Debezium key or value must be a JSON object")
    return body


def _lsn(source: Mapping[str, Any]) -> int:
    lsn = source.get("lsn")
    if isinstance(lsn, bool) or not isinstance(lsn, int) or lsn < 0:
        raise CorruptContent(
            f"source.lsn must be a non-negative integer, not {lsn!r} (the Postgres connector)"
        )
    return lsn


def _time(ts_ms: Any) -> datetime | None:
    if isinstance(ts_ms, int) and not isinstance(ts_ms, bool) and ts_ms > 0:
        try:
            return datetime.fromtimestamp(ts_ms / 1000, UTC)
        except (OverflowError, ValueError, OSError):
            return None
    return None
