"""Serve a sentence-transformers model from its ONNX export, without torch at run time.

The model's own `tokenizer.json` (HF tokenizers) feeds the exported transformer, run by
OpenVINO or ONNX Runtime; then mean pooling over the attention mask and normalisation: the
three modules (Transformer, Pooling(mean), Normalize) sentence-transformers runs for
all-MiniLM-L6-v2 (`model_export.unsupported` refuses other shapes). Texts are sorted by
length and grouped into batches of at most `batch_tokens` padded tokens, so that short texts
are not padded to the length of long ones. Importing this module imports neither torch nor
transformers: a process using it starts in about a second.

Searches get a lane of their own (`queries`): the same model compiled once more, on one
thread. On one compiled model an inference mostly waits for the one in hand, so in
`freshindex up` a query would wait behind the worker's batch (measured beside a CPU hog:
1.7 s p50 behind batches of 64 full chunks, 13 ms on its own lane).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from ingest_worker.embedding import Vector

Ids = NDArray[np.int64]
# (input_ids, attention_mask, token_type_ids) → the last hidden state, (batch, tokens, dims)
Runner = Callable[[Ids, Ids, Ids], NDArray[np.float32]]


def openvino_runner(
    onnx_path: Path, *, precision: str, cache_dir: Path, threads: int | None = None
) -> Runner:
    """OpenVINO's CPU plugin; `precision` f32 (exact) or bf16 (where the CPU has it), on
    `threads` threads (None: every core). Compiled blobs are cached in `cache_dir`, so a warm
    start skips compilation."""
    config: dict[str, object] = {"INFERENCE_PRECISION_HINT": precision, "CACHE_DIR": str(cache_dir)}
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = threads

    def compile_model() -> Runner:
        model = _openvino_core().compile_model(str(onnx_path), "CPU", config)
        names = {port.get_any_name() for port in model.inputs}
        requests = threading.local()  # an infer request per thread: callers may be concurrent

        def run(input_ids: Ids, attention_mask: Ids, token_type_ids: Ids) -> NDArray[np.float32]:
            if not hasattr(requests, "request"):
                requests.request = model.create_infer_request()
            requests.request.infer(_feed(names, input_ids, attention_mask, token_type_ids))
            return np.array(requests.request.get_output_tensor(0).data, dtype=np.float32)

        return run

    return _on_first_use(compile_model)


def onnxruntime_runner(onnx_path: Path, *, threads: int | None = None) -> Runner:
    def open_session() -> Runner:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        names = {i.name for i in session.get_inputs()}

        def run(input_ids: Ids, attention_mask: Ids, token_type_ids: Ids) -> NDArray[np.float32]:
            feed = _feed(names, input_ids, attention_mask, token_type_ids)
            return np.asarray(session.run(None, feed)[0], dtype=np.float32)

        return run

    return _on_first_use(open_session)


def _on_first_use(build: Callable[[], Runner]) -> Runner:
    """`build`'s runner, built by the first call: a process that never runs a lane (the API
    alone never runs the batch lane) never holds its compiled model."""
    lock = threading.Lock()
    built: list[Runner] = []

    def run(input_ids: Ids, attention_mask: Ids, token_type_ids: Ids) -> NDArray[np.float32]:
        if not built:
            with lock:
                if not built:
                    built.append(build())
        return built[0](input_ids, attention_mask, token_type_ids)

    return run


_CORE: Any = None
_CORE_LOCK = threading.Lock()


def _openvino_core() -> Any:
    """The process's one OpenVINO Core: each Core loads its plugins again, and OpenVINO
    asks for one per application."""
    global _CORE
    with _CORE_LOCK:
        if _CORE is None:
            import openvino as ov

            _CORE = ov.Core()
        return _CORE


def _feed(
    names: set[str], input_ids: Ids, attention_mask: Ids, token_type_ids: Ids
) -> dict[str, Ids]:
    given = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": token_type_ids,
    }
    return {name: value for name, value in given.items() if name in names}


class ExportedEmbedder:
    """An `Embedder` over an exported model; `backend` names the runtime, for logs only (the
    index records the model, not how it was run). `query_runner` builds the runner of the
    query lane (see the module docstring); without it, queries share `runner`."""

    def __init__(
        self,
        model_name: str,
        model_dir: Path,
        runner: Runner,
        *,
        backend: str,
        batch_tokens: int = 8192,
        query_runner: Callable[[], Runner] | None = None,
    ) -> None:
        config = json.loads((model_dir / "sentence_bert_config.json").read_text())
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
        self.model_name = model_name
        self.backend = backend
        self.dimensions = int(pooling["word_embedding_dimension"])
        self.max_seq_length = int(config["max_seq_length"])
        self.max_tokens = self.max_seq_length - 2  # [CLS] and [SEP]
        self.batch_tokens = batch_tokens
        self._model_dir = model_dir
        self._run = runner
        self._query_runner = query_runner
        self._lane: ExportedEmbedder | None = None
        self._lane_lock = threading.Lock()
        self._counter = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._counter.no_truncation()
        self._counter.no_padding()
        self._encoder = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._encoder.enable_truncation(self.max_seq_length)
        pad = self._encoder.padding or {}
        self._encoder.no_padding()  # batches are padded by hand, to their longest text
        self._pad_id = int(pad.get("pad_id", 0))
        self._lock = threading.Lock()  # a tokenizer must not be used by two threads at once

    @property
    def queries(self) -> ExportedEmbedder:
        """The model on the query lane: its own runner and tokenizers, so a search neither
        waits for a batch in the model nor for its tokenization (built once)."""
        if self._query_runner is None:
            return self
        with self._lane_lock:
            if self._lane is None:
                self._lane = ExportedEmbedder(
                    self.model_name,
                    self._model_dir,
                    self._query_runner(),
                    backend=self.backend,
                    batch_tokens=self.batch_tokens,
                )
            return self._lane

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        with self._lock:
            encoded = self._counter.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encoded]

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        with self._lock:
            encoded = self._encoder.encode_batch(list(texts))
        ids = [e.ids for e in encoded]
        vectors = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for batch in token_batches([len(i) for i in ids], self.batch_tokens):
            vectors[batch] = self._embed_batch([ids[i] for i in batch])
        return list(vectors)

    def _embed_batch(self, ids: list[list[int]]) -> NDArray[np.float32]:
        width = max(len(i) for i in ids)
        input_ids = np.full((len(ids), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, token_ids in enumerate(ids):
            input_ids[row, : len(token_ids)] = token_ids
            mask[row, : len(token_ids)] = 1
        hidden = self._run(input_ids, mask, np.zeros_like(input_ids))
        return mean_pool(hidden, mask)


# A batch's longest text is at most this many times its shortest, once the batch holds
# MIN_BATCH_TOKENS: a call of a few hundred texts (a folder batch) otherwise made batches of
# 8,192 tokens that spanned lengths 33-106 and 107-249, and embedded the manual's 4,030
# chunks in groups of 340 in 11.2 s against 7.6 s in one call (8.0-10.0 s with this bound);
# below MIN_BATCH_TOKENS an inference costs more in overhead than padding wastes.
MAX_LENGTH_SPREAD = 1.25
MIN_BATCH_TOKENS = 1024


def token_batches(lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Indexes of texts grouped by similar length: each batch's padded size (texts x longest)
    stays within `batch_tokens` (a single longer text gets a batch of its own), and a batch of
    MIN_BATCH_TOKENS or more takes no text longer than MAX_LENGTH_SPREAD x its shortest."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        length = lengths[index]
        if current:
            full = (len(current) + 1) * length > batch_tokens
            wide = (
                length > MAX_LENGTH_SPREAD * lengths[current[0]]
                and len(current) * length >= MIN_BATCH_TOKENS
            )
            if full or wide:
                batches.append(current)
                current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def mean_pool(hidden: NDArray[np.float32], mask: Ids) -> NDArray[np.float32]:
    """The mean of the token vectors the mask keeps, scaled to unit length."""
    weights = mask[..., None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    means = summed / np.maximum(weights.sum(axis=1), 1e-9)
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    result: NDArray[np.float32] = (means / np.maximum(norms, 1e-12)).astype(np.float32)
    return result
