"""Debezium change events → document events: ops, the schema envelope, tombstones, the
LSN as version, the column mapping, and poison input."""

from __future__ import annotations

import json
from typing import Any

from ingest_worker.events import Op
from ingest_worker.sources.kafka.debezium import CdcMapping, decoder

MAPPING = CdcMapping(
    doc_id="articles/{id}", text="{title}\n\n{body}", title="title", metadata=("team",)
)
ROW = {"id": 7, "title": "Leave", "body": "Thirty days.", "team": "hr", "secret": "x"}


def message(op: str, before: Any, after: Any, lsn: Any = 2400, wrap: bool = False) -> bytes:
    payload = {
        "before": before, "after": after, "op": op,
        "source": {"lsn": lsn, "ts_ms": 1764620000000, "table": "articles"},
    }  # fmt: skip
    body = {"schema": {"type": "struct"}, "payload": payload} if wrap else payload
    return json.dumps(body).encode()


def decode(value: bytes | None, key: bytes | None = b'{"id": 7}', offset: int = 5) -> Any:
    return decoder(MAPPING)(topic="cdc.public.articles", partition=1, offset=offset,
                            key=key, value=value)  # fmt: skip


def test_inserts_updates_and_snapshot_reads_are_upserts_versioned_by_lsn() -> None:
    for op in ("c", "u", "r"):
        for wrap in (False, True):
            event = decode(message(op, None, ROW, lsn=2400, wrap=wrap))
            assert event.poison is None and event.op is Op.UPSERT
            assert event.doc_id == "articles/7" and event.version == 2400
            assert event.content == b"Leave\n\nThirty days." and event.title == "Leave"
            assert event.metadata == {"team": "hr"} and event.event_time is not None
            assert event.position.source == "kafka:cdc.public.articles"


def test_delete_reads_the_key_columns_of_before() -> None:
    event = decode(message("d", {"id": 7, "title": None}, None, lsn=9000, wrap=True))
    assert (event.op, event.doc_id, event.version) == (Op.DELETE, "articles/7", 9000)


def test_the_tombstone_after_a_delete_only_acknowledges() -> None:
    for key in (b'{"id": 7}', b'{"schema": {}, "payload": {"id": 7}}'):
        event = decode(None, key=key)
        assert (event.op, event.doc_id, event.version) == (Op.DELETE, "articles/7", 0)


def test_a_bare_column_name_is_that_column_and_null_is_empty() -> None:
    mapping = CdcMapping(doc_id="id", text="body")
    event = decoder(mapping)(topic="t", partition=0, offset=1, key=None,
                             value=message("c", None, {"id": 3, "body": None}))  # fmt: skip
    assert event.doc_id == "3" and event.content == b""


def test_bad_messages_become_poison_with_a_reason() -> None:
    cases = {
        b"not json": "not a Debezium JSON message",
        message("x", None, ROW): '"op" must be one of',
        message("c", None, ROW, lsn=None): "source.lsn",
        message("c", None, {"id": 1}): "has no column ['body', 'title']",
        message("u", None, None): "needs its row",
    }
    for value, reason in cases.items():
        event = decode(value)
        assert event.poison is not None and reason in str(event.poison), (value, event.poison)
