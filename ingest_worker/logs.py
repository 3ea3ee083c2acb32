"""Logging setup: readable text, or one JSON object per line (FRESHINDEX_LOG_FORMAT=json)
carrying the event fields (doc_id, version, source, partition, position, outcome)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

EVENT_FIELDS = ("doc_id", "version", "source", "partition", "position", "outcome", "tenant")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({f: getattr(record, f) for f in EVENT_FIELDS if hasattr(record, f)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for chatty in ("kafka", "aiokafka", "faust", "mode"):  # their INFO is per-connection noise
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
