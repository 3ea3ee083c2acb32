from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_worker.chunking import Chunk, split
from ingest_worker.parsing import Block

MAX_TOKENS, MIN_TOKENS = 64, 8


def count_words(texts: Sequence[str]) -> list[int]:
    """A stand-in tokenizer: one token per whitespace-separated word."""
    return [len(t.split()) for t in texts]


def chunk(blocks: Sequence[Block]) -> tuple[Chunk, ...]:
    return split(blocks, count_words, max_tokens=MAX_TOKENS, min_tokens=MIN_TOKENS)


def paragraph(marker: str, sentence_lengths: list[int], salt: int) -> str:
    """Every sentence starts with the paragraph's marker, so any piece of it names it."""
    return " ".join(
        f"{marker} " + " ".join(f"w{salt}x{i}" for i in range(n)) + "." for n in sentence_lengths
    )


sentence_lengths = st.lists(st.integers(1, 40), min_size=1, max_size=6)


@st.composite
def documents(draw: st.DrawFn) -> list[Block]:
    sections = draw(st.lists(st.integers(1, 6), min_size=1, max_size=4))
    blocks: list[Block] = []
    for s, size in enumerate(sections):
        for _ in range(size):
            marker = f"P{len(blocks)}"
            blocks.append(Block((f"Section {s}",), paragraph(marker, draw(sentence_lengths), 0)))
    return blocks


def markers(c: Chunk) -> set[str]:
    return {word for word in c.text.split() if word.startswith("P")}


def assert_changes_are_local(old: Sequence[Block], new: Sequence[Block], touched: set[str]) -> None:
    before, after = chunk(old), chunk(new)
    old_hashes, new_hashes = {c.hash for c in before}, {c.hash for c in after}
    changed = [c for c in before if c.hash not in new_hashes]
    changed += [c for c in after if c.hash not in old_hashes]
    for c in changed:
        assert markers(c) & touched, f"chunk {markers(c)} changed, but the edit was at {touched}"


def neighbourhood(blocks: Sequence[Block], index: int) -> set[str]:
    return {
        blocks[i].text.split()[0] for i in (index - 1, index, index + 1) if 0 <= i < len(blocks)
    }


@settings(max_examples=300, deadline=None)
@given(documents(), st.data())
def test_editing_one_paragraph_changes_only_chunks_around_it(
    blocks: list[Block], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(blocks) - 1))
    marker = blocks[index].text.split()[0]
    edited = list(blocks)
    edited[index] = Block(
        blocks[index].heading_path, paragraph(marker, data.draw(sentence_lengths), 1)
    )
    assert_changes_are_local(blocks, edited, neighbourhood(blocks, index))


@settings(max_examples=300, deadline=None)
@given(documents(), st.data())
def test_inserting_a_paragraph_does_not_move_later_boundaries(
    blocks: list[Block], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(blocks)))
    path = blocks[min(index, len(blocks) - 1)].heading_path
    inserted = [
        *blocks[:index],
        Block(path, paragraph("PNEW", data.draw(sentence_lengths), 2)),
        *blocks[index:],
    ]
    assert_changes_are_local(blocks, inserted, neighbourhood(inserted, index))


@settings(max_examples=200, deadline=None)
@given(documents())
def test_every_chunk_fits_the_model_and_keeps_its_headings(blocks: list[Block]) -> None:
    chunks = chunk(blocks)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert count_words([c.embed_text])[0] <= MAX_TOKENS
        assert c.embed_text.startswith(" > ".join(c.heading_path))
    all_words = " ".join(b.text for b in blocks).split()
    assert " ".join(c.text for c in chunks).split() == all_words  # nothing lost or repeated


def test_a_small_paragraph_joins_the_next_one_in_its_section() -> None:
    blocks = [
        Block(("A",), "Note:"),
        Block(("A",), " ".join(["word"] * 20)),
        Block(("B",), " ".join(["other"] * 20)),
        Block(("B",), "The end."),
    ]
    chunks = chunk(blocks)
    assert [c.text.split()[0] for c in chunks] == ["Note:", "other", "The"]
    assert chunks[0].text.startswith("Note:\n\nword")


def test_a_huge_word_is_cut_to_fit() -> None:
    blocks = [Block((), "x" * 10_000)]
    chunks = split(blocks, lambda ts: [len(t) // 4 for t in ts], max_tokens=100)
    assert all(len(c.embed_text) // 4 <= 100 for c in chunks)
    assert "".join(c.text for c in chunks) == "x" * 10_000


def test_same_input_same_chunks() -> None:
    blocks = [Block(("H",), "alpha beta. gamma delta.")]
    assert chunk(blocks) == chunk(list(blocks))
