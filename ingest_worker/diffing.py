"""Stored chunks + new chunks → the smallest set of row changes. Pure.

Chunks are matched by hash (the identity of the text the model saw). A matched chunk keeps
its row and vector and is only renumbered; the rest are deleted or inserted. Repeated texts
are matched one to one, in order.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass

from ingest_worker.chunking import Chunk


@dataclass(frozen=True, slots=True)
class StoredChunk:
    id: int
    ordinal: int
    hash: bytes


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    renumber: tuple[tuple[int, int], ...]  # (row id, new ordinal) for kept rows that moved
    delete: tuple[int, ...]  # row ids
    insert: tuple[Chunk, ...]
    kept: int  # rows kept as they are or renumbered

    @property
    def is_noop(self) -> bool:
        return not (self.renumber or self.delete or self.insert)


def plan(new: Sequence[Chunk], stored: Sequence[StoredChunk]) -> ChunkPlan:
    """What to change so that the stored rows hold exactly `new`, in order."""
    available: defaultdict[bytes, deque[StoredChunk]] = defaultdict(deque)
    for row in sorted(stored, key=lambda r: r.ordinal):
        available[row.hash].append(row)
    renumber: list[tuple[int, int]] = []
    insert: list[Chunk] = []
    kept = 0
    for chunk in new:
        rows = available.get(chunk.hash)
        if rows:
            row = rows.popleft()
            kept += 1
            if row.ordinal != chunk.ordinal:
                renumber.append((row.id, chunk.ordinal))
        else:
            insert.append(chunk)
    delete = tuple(row.id for rows in available.values() for row in rows)
    return ChunkPlan(tuple(renumber), delete, tuple(insert), kept)
