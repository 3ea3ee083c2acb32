"""Kafka messages ⇄ document events: the event contract of DESIGN.md. Pure.

Key: the doc_id (UTF-8). Value: UTF-8 JSON such as
    {"op": "upsert", "doc_id": "handbook/leave.md", "version": 7, "text": "...",
     "content_type": "text/markdown", "title": "...", "metadata": {...},
     "tenant": "default", "event_time": "2026-11-25T12:00:00Z"}
    {"op": "delete", "doc_id": "handbook/leave.md", "version": 8}
A null value (tombstone) deletes the document named by the key. Without `version`, the
message's offset orders the events of a document (keep one scheme per document). `text`
needs no `content_type`: it is plain text, or Markdown/HTML when the doc_id ends in `.md`/
`.html`. Binary documents travel as `content_base64` with their `content_type`. Unknown
fields are ignored.
freshindex's own folder publisher adds `origin` (the watched folder) and `fingerprint`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ingest_worker.errors import CorruptContent, PoisonInput
from ingest_worker.events import DocumentEvent, Op, SourcePosition
from ingest_worker.parsing import text_type

_SOURCE_PREFIX = "kafka:"


def source_name(topic: str) -> str:
    """The `source` of a topic's events, as stored with their documents and positions."""
    return f"{_SOURCE_PREFIX}{topic}"


def topic_of(source: str) -> str | None:
    """The topic of a Kafka source name; None for any other source."""
    return source.removeprefix(_SOURCE_PREFIX) if source.startswith(_SOURCE_PREFIX) else None


def decode(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    timestamp_ms: int | None = None,
) -> DocumentEvent:
    """The event a message carries; never raises: bad input comes back as a poison event."""
    source = source_name(topic)
    position = SourcePosition(source, partition, offset)
    sent_at = _sent_at(timestamp_ms)
    try:
        return _decode(source, position, key, value, sent_at)
    except PoisonInput as e:
        doc_id = key.decode("utf-8", "replace") if key else ""
        return DocumentEvent(
            doc_id=doc_id,
            op=Op.UPSERT,
            source=source,
            content=value,
            position=position,
            event_time=sent_at,
            poison=e,
        )


def _sent_at(timestamp_ms: int | None) -> datetime | None:
    """The message's timestamp. Producers may set any, so one no clock can show is ignored."""
    if not timestamp_ms or timestamp_ms < 0:
        return None
    try:
        return datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _decode(
    source: str,
    position: SourcePosition,
    key: bytes | None,
    value: bytes | None,
    sent_at: datetime | None,
) -> DocumentEvent:
    key_id = _key_doc_id(key)
    if value is None:  # tombstone
        if key_id is None:
            raise CorruptContent("a tombstone (null value) needs the doc_id as its key")
        return DocumentEvent(
            doc_id=key_id,
            op=Op.DELETE,
            source=source,
            version=position.position,
            position=position,
            event_time=sent_at,
        )
    try:
        body = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptContent(f"the message value is not UTF-8 JSON: {e}") from e
    if not isinstance(body, dict):
        raise CorruptContent("the message value must be a JSON object")
    doc_id = _doc_id(body, key_id)
    op = body.get("op", "upsert")
    if op not in ("upsert", "delete"):
        raise CorruptContent(f'"op" must be "upsert" or "delete", not {op!r}')
    common: dict[str, Any] = {
        "doc_id": doc_id,
        "source": _string(body, "origin") or source,
        "fingerprint": _string(body, "fingerprint"),
        "position": position,
        "version": _version(body, position.position),
        "tenant": _string(body, "tenant") or "default",
        "event_time": _event_time(body) or sent_at,
    }
    if op == "delete":
        return DocumentEvent(op=Op.DELETE, **common)
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise CorruptContent('"metadata" must be a JSON object')
    content_type = _string(body, "content_type")
    if content_type is None and body.get("text") is not None:
        content_type = text_type(doc_id)
    return DocumentEvent(
        op=Op.UPSERT,
        content=_content(body),
        content_type=content_type,
        filename=doc_id,
        title=_string(body, "title"),
        metadata=metadata,
        **common,
    )


def _key_doc_id(key: bytes | None) -> str | None:
    if not key:
        return None
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorruptContent("the message key must be the doc_id in UTF-8") from e


def _doc_id(body: Mapping[str, Any], key_id: str | None) -> str:
    doc_id = body.get("doc_id", key_id)
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise CorruptContent('the event has no "doc_id" (and no key to take it from)')
    if key_id is not None and doc_id != key_id:
        raise CorruptContent(
            f'"doc_id" {doc_id!r} differs from the key {key_id!r}; key the message by its '
            "doc_id so that all events of a document stay in order"
        )
    return doc_id


def _version(body: Mapping[str, Any], offset: int) -> int:
    version = body.get("version")
    if version is None:
        return offset
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise CorruptContent(f'"version" must be a non-negative integer, not {version!r}')
    return version


def _string(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise CorruptContent(f'"{name}" must be a string')
    return value


def _event_time(body: Mapping[str, Any]) -> datetime | None:
    raw = _string(body, "event_time")
    if raw is None:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as e:
        raise CorruptContent(f'"event_time" is not an ISO 8601 time: {raw!r}') from e
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _content(body: Mapping[str, Any]) -> bytes:
    text, encoded = body.get("text"), body.get("content_base64")
    if (text is None) == (encoded is None):
        raise CorruptContent('an upsert needs exactly one of "text" and "content_base64"')
    if text is not None:
        if not isinstance(text, str):
            raise CorruptContent('"text" must be a string')
        return text.encode("utf-8")
    if not isinstance(encoded, str):
        raise CorruptContent('"content_base64" must be a string')
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as e:
        raise CorruptContent(f'"content_base64" is not valid base64: {e}') from e


def encode(
    doc_id: str,
    *,
    content: bytes | None = None,
    text: str | None = None,
    content_type: str | None = None,
    version: int | None = None,
    title: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    tenant: str | None = None,
    event_time: datetime | None = None,
    delete: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> tuple[bytes, bytes]:
    """The (key, value) of an event; binary content goes as base64."""
    body: dict[str, Any] = {"op": "delete" if delete else "upsert", "doc_id": doc_id}
    body.update({k: v for k, v in (extra or {}).items() if v is not None})
    if version is not None:
        body["version"] = version
    if tenant:
        body["tenant"] = tenant
    if event_time is not None:
        body["event_time"] = event_time.isoformat()
    if not delete:
        if text is not None:
            body["text"] = text
        else:
            body["content_base64"] = base64.b64encode(content or b"").decode("ascii")
        for name, value in (("content_type", content_type), ("title", title)):
            if value is not None:
                body[name] = value
        if metadata:
            body["metadata"] = dict(metadata)
    return doc_id.encode("utf-8"), json.dumps(body, ensure_ascii=False).encode("utf-8")
