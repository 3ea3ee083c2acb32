"""The Kafka event contract: text needs no content type; bytes do."""

from __future__ import annotations

import base64
import json

import pytest

from ingest_worker.errors import UnsupportedContent
from ingest_worker.events import DocumentEvent
from ingest_worker.parsing import HTML, MARKDOWN, TEXT, parse
from ingest_worker.sources.kafka import events as kafka_events


def decoded(body: dict[str, object]) -> DocumentEvent:
    doc_id = str(body["doc_id"])
    return kafka_events.decode(
        topic="t", partition=0, offset=5, key=doc_id.encode(), value=json.dumps(body).encode()
    )


@pytest.mark.parametrize(
    ("doc_id", "kind"),
    [
        ("kb/1234", TEXT),
        ("notes.pdf", TEXT),  # text is text, whatever the name says
        ("a.b/c", TEXT),
        ("handbook/leave.md", MARKDOWN),
        ("page.HTML", HTML),
    ],
)
def test_text_without_a_content_type_is_typed_by_its_doc_id(doc_id: str, kind: str) -> None:
    event = decoded({"doc_id": doc_id, "text": "# Title\n\nSome words about herons."})
    assert event.poison is None and event.content_type == kind and event.version == 5
    parsed = parse(event.content or b"", content_type=event.content_type, filename=event.filename)
    assert "herons" in parsed.blocks[-1].text


def test_an_explicit_content_type_still_wins() -> None:
    event = decoded({"doc_id": "kb/1", "text": "<p>x</p>", "content_type": "text/html"})
    assert event.content_type == HTML


def test_bytes_without_a_type_need_one() -> None:
    event = decoded({"doc_id": "kb/2", "content_base64": base64.b64encode(b"%PDF").decode()})
    assert event.content_type is None
    with pytest.raises(UnsupportedContent, match="send a content_type"):
        parse(event.content or b"", content_type=event.content_type, filename=event.filename)
