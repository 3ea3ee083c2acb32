from __future__ import annotations

import json
import logging

from ingest_worker.logs import JsonFormatter


def test_json_logs_carry_the_event_fields() -> None:
    record = logging.LogRecord(
        "ingest_worker.pipeline",
        logging.INFO,
        __file__,
        1,
        "upsert %s v%s: %s",
        ("a.md", 3, "applied"),
        None,
    )
    record.doc_id, record.version, record.partition, record.position = "a.md", 3, 2, 41
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "upsert a.md v3: applied"
    assert (entry["doc_id"], entry["version"], entry["partition"], entry["position"]) == (
        "a.md",
        3,
        2,
        41,
    )
    assert entry["level"] == "INFO" and "outcome" not in entry
