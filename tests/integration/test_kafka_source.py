"""Kafka → index, with a genuine Apache Kafka broker, `freshindex worker kafka` processes,
the real model and Postgres, checked through the real HTTP API."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from pathlib import Path

import httpx
from kafka import KafkaConsumer

from tests.fix_kafka import FRESHINDEX, KafkaSetup
from tests.fix_services import wait_until
from tests.integration.helpers import document, search, stats
from tests.pdf_factory import make_pdf


def test_publish_search_delete_and_tombstone(
    kafka_setup: KafkaSetup, api: httpx.Client, tmp_path: Path
) -> None:
    worker = kafka_setup.spawn()
    with kafka_setup.publisher() as publisher:
        landed = publisher.upsert(
            "hr/leave.md",
            text="# Leave\n\nEmployees get 25 days of paid leave a year.\n",
            content_type="text/markdown",
            metadata={"team": "hr"},
            title="Leave policy",
        )
        publisher.upsert(
            "eng/pager.md",
            text="The on-call engineer answers pages within 5 minutes.",
            content_type="text/plain",
        )
        publisher.upsert(
            "papers/tunnel.pdf",
            content=make_pdf([["Quantum tunnelling lets particles cross barriers."]]),
            content_type="application/pdf",
        )
        wait_until(
            lambda: (
                document(api, "papers/tunnel.pdf")
                and document(api, "hr/leave.md")
                and document(api, "eng/pager.md")
            ),
            120,
            "three documents from Kafka",
        )
        hit = search(api, "vacation days", k=1)[0]
        assert hit["doc_id"] == "hr/leave.md" and hit["metadata"] == {"team": "hr"}
        assert hit["title"] == "Leave policy" and hit["version"] == landed.offset
        assert search(api, "particles and barriers", k=1)[0]["doc_id"] == "papers/tunnel.pdf"

        publisher.delete("hr/leave.md")
        publisher.tombstone("eng/pager.md")
        wait_until(
            lambda: document(api, "hr/leave.md") is None and document(api, "eng/pager.md") is None,
            60,
            "delete and tombstone",
        )
    assert {h["doc_id"] for h in search(api, "leave pages engineer")} == {"papers/tunnel.pdf"}

    note = tmp_path / "note.md"
    note.write_text("# Note\n\nThe command line published this note about kestrels.\n")
    published = subprocess.run(
        [FRESHINDEX, "publish", str(note), "--doc-id", "cli/note.md", "-m", "via=cli"],
        env={**os.environ, **kafka_setup.env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert re.fullmatch(r"cli/note.md\tpartition \d+\toffset \d+\n", published.stdout)
    wait_until(lambda: document(api, "cli/note.md"), 60, "the note published by the CLI")
    assert search(api, "kestrels", k=1)[0]["metadata"] == {"via": "cli"}
    positions = {s["partition"]: s for s in stats(api)["sources"]}
    assert positions and all(
        s["source"] == f"kafka:{kafka_setup.topic}" for s in positions.values()
    )
    assert worker.poll() is None


def test_out_of_order_versions_and_duplicates_leave_the_newest(
    kafka_setup: KafkaSetup, api: httpx.Client
) -> None:
    kafka_setup.spawn()
    with kafka_setup.publisher() as publisher:
        for version in (3, 1, 3, 2, 5, 4):
            publisher.upsert(
                "doc",
                text=f"Version {version} of the document about owls.",
                content_type="text/plain",
                version=version,
            )

    def handled() -> int:
        counts = stats(api)
        return int(counts["events_applied_total"] + counts["events_stale_total"])

    wait_until(lambda: handled() == 6, 120, "all six events")
    hit = search(api, "owls", k=1)[0]
    assert hit["version"] == 5 and hit["text"] == "Version 5 of the document about owls."
    # one by one: 3 and 5 applied, 4 stale; in one batch: 5 applied, 5 stale
    assert stats(api)["events_stale_total"] in (4, 5)


def test_malformed_events_are_dead_lettered_and_good_ones_indexed(
    kafka_setup: KafkaSetup, api: httpx.Client
) -> None:
    kafka_setup.spawn()
    bad = [
        (b"broken", b"{not json"),
        (b"nodoc", json.dumps({"op": "upsert", "text": "x", "doc_id": ""}).encode()),
        (None, json.dumps({"op": "upsert", "text": "no key, no doc_id"}).encode()),
        (
            b"b64",
            json.dumps(
                {"doc_id": "b64", "content_base64": "%%%", "content_type": "application/pdf"}
            ).encode(),
        ),
        (
            b"pdf",
            json.dumps(
                {
                    "doc_id": "pdf",
                    "content_base64": base64.b64encode(b"junk").decode(),
                    "content_type": "application/pdf",
                }
            ).encode(),
        ),
        (b"odd", json.dumps({"doc_id": "odd", "op": "rename", "text": "x"}).encode()),
        (b"big", json.dumps({"doc_id": "big", "text": "x " * 300_000}).encode()),
    ]
    with kafka_setup.publisher() as publisher:
        publisher.upsert("good-1", text="A good event about herons.", content_type="text/plain")
        for key, value in bad:
            publisher.send_raw(key, value)
        publisher.upsert(
            "good-2", text="Another good event about cranes.", content_type="text/plain"
        )
        wait_until(lambda: stats(api)["dead_letters"] == len(bad), 120, "the dead letters")
        wait_until(lambda: document(api, "good-2"), 60, "the good events")
    assert document(api, "good-1") is not None
    # Every bad message reaches the dead-letter topic, byte for byte, with its own reason.
    reasons = dead_letter_topic(kafka_setup, len(bad))
    expected = ["not UTF-8 JSON", "doc_id", 'no "doc_id"', "not valid base64", "PDF",
                '"op" must be', "over the limit"]  # fmt: skip
    assert reasons.keys() == set(bad)
    for (key, value), fragment in zip(bad, expected, strict=True):
        assert fragment in reasons[(key, value)], (key, reasons[(key, value)])


def dead_letter_topic(setup: KafkaSetup, count: int) -> dict[tuple[bytes | None, bytes], str]:
    """(key, value) → the reason header of the first `count` messages on the DLQ topic."""
    consumer = KafkaConsumer(
        f"{setup.topic}.dlq",
        bootstrap_servers=setup.broker.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=30_000,
    )
    try:
        reasons: dict[tuple[bytes | None, bytes], str] = {}
        for message in consumer:
            reasons[(message.key, message.value)] = dict(message.headers)["reason"].decode()
            if len(reasons) == count:
                break
        return reasons
    finally:
        consumer.close()


def test_text_needs_no_type_or_version_and_a_good_event_resolves_a_dead_letter(
    kafka_setup: KafkaSetup, api: httpx.Client
) -> None:
    """What a third-party producer sends: records named like database rows, no
    content_type, no version."""
    kafka_setup.spawn()
    with kafka_setup.publisher() as publisher:
        publisher.send_raw(
            b"kb/1234", json.dumps({"text": "Herons wade in shallow water."}).encode()
        )
        publisher.send_raw(
            b"kb/notes.md",
            json.dumps({"doc_id": "kb/notes.md", "text": "# Notes\n\nOtters hold hands."}).encode(),
        )
        publisher.send_raw(  # bytes do need a type
            b"kb/77", json.dumps({"content_base64": base64.b64encode(b"%PDF").decode()}).encode()
        )
        wait_until(
            lambda: document(api, "kb/1234") and document(api, "kb/notes.md"),
            120,
            "the untyped, versionless text events",
        )
        wait_until(lambda: stats(api)["dead_letters"] == 1, 60, "the untyped bytes' dead letter")
        assert search(api, "wading birds", k=1)[0]["doc_id"] == "kb/1234"
        assert search(api, "otters", k=1)[0]["heading"] == "Notes"  # parsed as Markdown

        landed = publisher.upsert("kb/77", text="Kingfishers nest in river banks.")
        wait_until(lambda: document(api, "kb/77"), 60, "the good version of kb/77")
    assert stats(api)["dead_letters"] == 0
    [letter] = api.get("/v1/dead-letters", params={"state": "all"}).json()
    assert letter["doc_id"] == "kb/77" and letter["state"] == "resolved"
    assert letter["resolved_by_version"] == landed.offset
