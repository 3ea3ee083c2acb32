"""Where a Kafka worker resumes each partition: after the position stored in the index."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import psycopg

from ingest_worker.change_log import applied_positions

log = logging.getLogger(__name__)


def start_positions(
    conn: psycopg.Connection[Any], source: str, log_starts: Mapping[int, int]
) -> dict[int, int]:
    """Where to resume each partition: a stored position for every one (a partition never
    read starts before its first offset, so a gap check always has a reference), raised to
    just before the log start when retention deleted events the index never applied."""
    with conn.transaction():
        before = applied_positions(conn, source)
        for partition, start in log_starts.items():
            conn.execute(
                """INSERT INTO source_positions (source, partition, position)
                   VALUES (%s, %s, %s)
                   ON CONFLICT (source, partition) DO UPDATE SET
                       position = greatest(source_positions.position, excluded.position)""",
                (source, partition, start - 1),
            )
        after = applied_positions(conn, source)
    for partition, position in after.items():
        if partition in before and position > before[partition]:
            log.error(
                "%s partition %d: events %d..%d were deleted by Kafka retention before they "
                "were indexed; resuming at %d",
                source, partition, before[partition] + 1, position, position + 1,
            )  # fmt: skip
    return after
