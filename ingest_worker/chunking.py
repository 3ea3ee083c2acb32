"""Blocks → chunks whose boundaries stay put when text elsewhere changes.

Every decision is local: a block becomes its own chunk, a long block is split at sentence
ends (then words) inside itself, and a *small* block (under `min_tokens`, such as "Note:")
joins the block right after it in the same section. So editing or inserting one block
changes only the chunks holding that block or a block right next to it; nothing further
down the document moves. (Packing many blocks greedily into full chunks would shift every
later boundary after an edit, and re-embed the rest of the document.)
Sizes are measured in model tokens by the given `TokenCounter`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ingest_worker.parsing import Block

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")
_HEADING_SEPARATOR = " > "


class TokenCounter(Protocol):
    def __call__(self, texts: Sequence[str]) -> list[int]:
        """The number of model tokens of each text, without special tokens."""
        ...


@dataclass(frozen=True, slots=True)
class Chunk:
    ordinal: int
    heading_path: tuple[str, ...]
    text: str
    embed_text: str  # what the model sees: heading context + text
    hash: bytes  # sha256 of embed_text: the identity used for diffing and the cache

    @property
    def context(self) -> str:
        """The heading context line as the model saw it (possibly shortened)."""
        return self.embed_text[: -len(self.text) - 2] if self.embed_text != self.text else ""


def embed_text(context: str, text: str) -> str:
    """What the model sees for a chunk; stored chunks rebuild it from (heading, text)."""
    return f"{context}\n\n{text}" if context else text


@dataclass(frozen=True, slots=True)
class _Piece:
    heading_path: tuple[str, ...]
    text: str
    tokens: int


def split(
    blocks: Sequence[Block], count_tokens: TokenCounter, *, max_tokens: int, min_tokens: int = 24
) -> tuple[Chunk, ...]:
    """Chunk the blocks so that each chunk's embed text fits in `max_tokens`."""
    contexts = _heading_contexts(blocks, count_tokens, max_tokens // 4)
    pieces: list[_Piece] = []
    block_tokens = count_tokens([b.text for b in blocks]) if blocks else []
    for block, tokens in zip(blocks, block_tokens, strict=True):
        context, context_tokens = contexts[block.heading_path]
        budget = max_tokens - context_tokens - 2  # the "\n\n" between context and text
        if tokens <= budget:
            pieces.append(_Piece(block.heading_path, block.text, tokens))
        else:
            pieces += [
                _Piece(block.heading_path, text, n)
                for text, n in _split_long(block.text, count_tokens, budget)
            ]
    groups = _group_small_pieces(pieces, contexts, max_tokens, min_tokens)
    chunks = []
    for ordinal, group in enumerate(groups):
        path = group[0].heading_path
        text = "\n\n".join(p.text for p in group)
        context = contexts[path][0]
        seen = embed_text(context, text)
        chunks.append(Chunk(ordinal, path, text, seen, hashlib.sha256(seen.encode()).digest()))
    return tuple(chunks)


def _heading_contexts(
    blocks: Sequence[Block], count_tokens: TokenCounter, limit: int
) -> dict[tuple[str, ...], tuple[str, int]]:
    """Per heading path: the context line and its token count, at most `limit` tokens."""
    contexts: dict[tuple[str, ...], tuple[str, int]] = {}
    for path in dict.fromkeys(b.heading_path for b in blocks):
        kept = list(path)
        while True:
            context = _HEADING_SEPARATOR.join(kept)
            tokens = count_tokens([context])[0] if context else 0
            if tokens <= limit:
                break
            if len(kept) > 1:
                kept.pop(0)  # the nearest headings say most about the text
            else:
                kept = [kept[0][: max(1, len(kept[0]) * limit // tokens - 1)]]
        contexts[path] = (context, tokens)
    return contexts


def _split_long(text: str, count_tokens: TokenCounter, budget: int) -> list[tuple[str, int]]:
    """Pack sentences (then words, then characters) greedily into pieces within budget."""
    units = _fitting_units(
        [s for s in _SENTENCE_END.split(text) if s.strip()], count_tokens, budget
    )
    pieces: list[tuple[str, int]] = []
    current: list[str] = []
    current_tokens = 0
    for unit, tokens in units:
        if current and current_tokens + tokens > budget:
            pieces.append((" ".join(current), current_tokens))
            current, current_tokens = [], 0
        current.append(unit)
        current_tokens += tokens
    if current:
        pieces.append((" ".join(current), current_tokens))
    return pieces


def _fitting_units(
    parts: list[str], count_tokens: TokenCounter, budget: int
) -> list[tuple[str, int]]:
    """Break each part into words, then character runs, until every unit fits the budget."""
    fitted: list[tuple[str, int]] = []
    for part, tokens in zip(parts, count_tokens(parts) if parts else [], strict=True):
        part = part.strip()
        if tokens <= budget:
            fitted.append((part, tokens))
        elif " " in part:
            fitted += _fitting_units(part.split(), count_tokens, budget)
        else:  # one enormous "word": cut it into character runs
            step = max(1, len(part) * budget // (tokens + 1))
            runs = [part[i : i + step] for i in range(0, len(part), step)]
            fitted += (
                _fitting_units(runs, count_tokens, budget)
                if step > 1
                else [(run, budget) for run in runs]
            )
    return fitted


def _group_small_pieces(
    pieces: list[_Piece],
    contexts: dict[tuple[str, ...], tuple[str, int]],
    max_tokens: int,
    min_tokens: int,
) -> list[list[_Piece]]:
    """A small piece joins the next piece when that one is of the same section, not small,
    and the pair fits. Only pairs, never chains: whether two pieces pair up depends on
    those two alone, which is what keeps every change local."""

    def pairs_with_next(i: int) -> bool:
        piece, following = pieces[i], pieces[i + 1] if i + 1 < len(pieces) else None
        if following is None or piece.tokens >= min_tokens or following.tokens < min_tokens:
            return False
        context_tokens = contexts[piece.heading_path][1]
        return (
            following.heading_path == piece.heading_path
            and context_tokens + 2 + piece.tokens + 2 + following.tokens <= max_tokens
        )

    groups: list[list[_Piece]] = []
    i = 0
    while i < len(pieces):
        if pairs_with_next(i):
            groups.append([pieces[i], pieces[i + 1]])
            i += 2
        else:
            groups.append([pieces[i]])
            i += 1
    return groups
