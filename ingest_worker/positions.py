"""Which source positions a batch may record after each of its commits. Pure.

A Kafka position may be recorded only when every earlier offset of its partition is durably
handled; otherwise a crash could skip an event that was still waiting. A batch commits its
documents in its own order (and one commit covers the events it superseded), so after each
commit the safe position per partition is the offset just below the lowest one still pending.
And a batch may only continue from the stored position: events beyond a gap wait until the
partition is re-read from the gap (`continuation`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ingest_worker.events import DocumentEvent, SourcePosition

_Partition = tuple[str, int]


def continuation(
    offsets: Mapping[int, Iterable[int]], applied: Mapping[int, int]
) -> tuple[dict[int, int], dict[int, int]]:
    """Which offsets of a batch continue what the index has applied, per partition.

    Returns (usable, rewind): events at or below `usable[p]` may be applied; above it the
    batch skipped ahead of the index (faust drops queued messages during a rebalance
    without always seeking back), so those events must wait and partition p must be
    re-read from `rewind[p]`. Partitions without an applied position are taken as they are.
    """
    usable: dict[int, int] = {}
    rewind: dict[int, int] = {}
    for partition, seen in offsets.items():
        ordered = sorted(set(seen))
        if partition not in applied:
            usable[partition] = ordered[-1]
            continue
        expected = applied[partition] + 1
        for offset in ordered:
            if offset > expected:
                rewind[partition] = expected
                break
            expected = max(expected, offset + 1)
        usable[partition] = expected - 1
    return usable, rewind


def caught_up(applied: Mapping[int, int], ends: Mapping[int, int]) -> bool:
    """Every offset below `ends` (partition → next offset) is within `applied`."""
    return all(applied.get(p, -1) >= end - 1 for p, end in ends.items() if end > 0)


class Watermarks:
    def __init__(self, events: Sequence[DocumentEvent]) -> None:
        self._pending: dict[_Partition, set[int]] = {}
        self._highest: dict[_Partition, int] = {}
        self._reported: dict[_Partition, int] = {}
        for event in events:
            if event.position is not None:
                key = (event.position.source, event.position.partition)
                self._pending.setdefault(key, set()).add(event.position.position)
                self._highest[key] = max(self._highest.get(key, -1), event.position.position)

    def done(self, events: Iterable[DocumentEvent]) -> tuple[SourcePosition, ...]:
        """Mark events durably handled; return the positions that may now be recorded."""
        touched = set()
        for event in events:
            if event.position is not None:
                key = (event.position.source, event.position.partition)
                self._pending[key].discard(event.position.position)
                touched.add(key)
        advanced = []
        for key in sorted(touched):
            pending = self._pending[key]
            safe = min(pending) - 1 if pending else self._highest[key]
            if safe >= 0 and safe > self._reported.get(key, -1):
                self._reported[key] = safe
                advanced.append(SourcePosition(key[0], key[1], safe))
        return tuple(advanced)
