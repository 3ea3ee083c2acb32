from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from ingest_worker.chunking import Chunk
from ingest_worker.diffing import StoredChunk, plan
from ingest_worker.errors import CorruptContent
from ingest_worker.events import DocumentEvent, Op, SourcePosition
from ingest_worker.pipeline import coalesce
from ingest_worker.positions import Watermarks, caught_up, continuation


def chunks(*texts: str) -> list[Chunk]:
    return [Chunk(i, (), t, t, hashlib.sha256(t.encode()).digest()) for i, t in enumerate(texts)]


def stored(*texts: str) -> list[StoredChunk]:
    return [StoredChunk(100 + i, i, c.hash) for i, c in enumerate(chunks(*texts))]


def test_unchanged_document_is_a_noop() -> None:
    result = plan(chunks("a", "b", "c"), stored("a", "b", "c"))
    assert result.is_noop and result.kept == 3


def test_edit_in_the_middle_replaces_one_chunk() -> None:
    result = plan(chunks("a", "B", "c"), stored("a", "b", "c"))
    assert [c.text for c in result.insert] == ["B"]
    assert result.delete == (101,)
    assert result.renumber == ()


def test_insertion_renumbers_later_chunks_without_reembedding() -> None:
    result = plan(chunks("a", "new", "b", "c"), stored("a", "b", "c"))
    assert [c.text for c in result.insert] == ["new"]
    assert result.delete == ()
    assert result.renumber == ((101, 2), (102, 3))


def test_repeated_texts_match_one_to_one() -> None:
    result = plan(chunks("x", "x", "x"), stored("x", "y"))
    assert [c.ordinal for c in result.insert] == [1, 2]
    assert result.delete == (101,)
    assert result.kept == 1


def event(doc_id: str, version: int | None) -> DocumentEvent:
    return DocumentEvent(doc_id=doc_id, op=Op.UPSERT, source="test", version=version)


def test_coalesce_keeps_the_newest_event_per_document() -> None:
    events = [event("a", 2), event("b", None), event("a", 5), event("a", 3), event("b", None)]
    groups = coalesce(events)
    assert [(e.doc_id, e.version) for e, _ in groups] == [("a", 5), ("b", None)]
    assert groups[1][0] is events[4]
    assert [len(covered) for _, covered in groups] == [3, 2]


def test_poison_events_are_never_coalesced() -> None:
    bad = DocumentEvent(doc_id="", op=Op.UPSERT, source="t", poison=CorruptContent("x"))
    assert len(coalesce([bad, bad, event("a", 1)])) == 3


def at(doc_id: str, offset: int, partition: int = 0) -> DocumentEvent:
    position = SourcePosition("kafka:t", partition, offset)
    return DocumentEvent(doc_id=doc_id, op=Op.UPSERT, source="kafka:t", position=position)


def test_positions_advance_only_past_offsets_that_are_all_done() -> None:
    a10, b11, a12, c13, d0 = at("a", 10), at("b", 11), at("a", 12), at("c", 13), at("d", 0, 1)
    marks = Watermarks([a10, b11, a12, c13, d0])
    assert marks.done([a10, a12]) == (SourcePosition("kafka:t", 0, 10),)  # 11 still pending
    assert marks.done([c13]) == ()
    assert marks.done([b11]) == (SourcePosition("kafka:t", 0, 13),)
    assert marks.done([d0]) == (SourcePosition("kafka:t", 1, 0),)


def test_caught_up_needs_every_partition_with_events() -> None:
    ends = {0: 11, 1: 0, 2: 5}  # partition 1 is empty
    assert caught_up({0: 10, 2: 4}, ends)
    assert not caught_up({0: 10, 2: 3}, ends)
    assert not caught_up({0: 10}, ends)


def test_a_batch_continues_the_stored_position_or_waits_past_the_gap() -> None:
    usable, rewind = continuation(
        {0: [5, 6, 7], 1: [3, 9, 10], 2: [0, 1], 3: [40]}, {0: 4, 1: 3, 3: 10}
    )
    assert usable == {0: 7, 1: 3, 2: 1, 3: 10}  # partition 2 has no stored position: as is
    assert rewind == {1: 4, 3: 11}  # 4..8 and 11..39 never reached this worker


@given(
    applied=st.integers(-1, 20),
    offsets=st.sets(st.integers(0, 40), min_size=1),
)
def test_kept_offsets_never_leave_a_hole_after_the_stored_position(
    applied: int, offsets: set[int]
) -> None:
    usable, rewind = continuation({0: offsets}, {0: applied})
    kept = {o for o in offsets if o <= usable[0]}
    assert set(range(applied + 1, usable[0] + 1)) <= kept  # no offset skipped
    assert usable[0] >= applied
    if rewind:
        assert rewind[0] == usable[0] + 1 and rewind[0] not in offsets
        assert max(offsets) > rewind[0]
    else:
        assert kept == offsets
