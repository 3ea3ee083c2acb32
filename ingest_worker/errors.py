"""Errors of freshindex.

    FreshindexError
    ├── PoisonInput        the event can never be applied: stored as a dead letter, then skipped
    │   ├── UnsupportedContent
    │   ├── CorruptContent
    │   └── ContentTooLarge
    ├── Retryable          a passing fault (database down, ...): retry later, never dead-letter
    └── ConfigurationError the operator must change a setting or the setup before starting

Each class's docstring is its default message; messages say what to do next.
"""

from __future__ import annotations


class FreshindexError(Exception):
    """freshindex failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class PoisonInput(FreshindexError):
    """This event can never be indexed; it was stored as a dead letter."""


class UnsupportedContent(PoisonInput):
    """This content type is not supported: send text, Markdown, HTML or PDF."""


class CorruptContent(PoisonInput):
    """The content could not be parsed; check that the file is not damaged."""


class ContentTooLarge(PoisonInput):
    """The content is larger than FRESHINDEX_MAX_FILE_BYTES; raise the limit or split it."""


class EmbeddingFailed(PoisonInput):
    """The model failed on a chunk of this document even when embedding it alone."""


class Retryable(FreshindexError):
    """A passing fault; the event will be retried."""


class ConfigurationError(FreshindexError):
    """freshindex is not configured correctly."""
