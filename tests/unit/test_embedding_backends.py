"""Pure parts of the exported backends: batching by tokens, pooling, choosing a backend."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest_worker import model_export
from ingest_worker.embedding import resolve_model_path
from ingest_worker.embedding_backends import EXACT_COSINE, Check, choose, race
from ingest_worker.errors import ConfigurationError
from ingest_worker.exported_embedder import (
    MAX_LENGTH_SPREAD,
    MIN_BATCH_TOKENS,
    mean_pool,
    token_batches,
)


@given(st.lists(st.integers(min_value=1, max_value=600), max_size=300), st.integers(256, 9000))
def test_token_batches_cover_every_text_once_within_the_budget(
    lengths: list[int], budget: int
) -> None:
    batches = token_batches(lengths, budget)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        padded = len(batch) * max(lengths[i] for i in batch)
        assert padded <= budget or len(batch) == 1


def test_token_batches_group_similar_lengths() -> None:
    lengths = [250, 5, 240, 6, 7, 255]
    assert token_batches(lengths, 600) == [[1, 3, 4], [2, 0], [5]]


@given(st.lists(st.integers(min_value=1, max_value=256), max_size=400))
def test_token_batches_of_any_size_span_a_narrow_range_of_lengths(lengths: list[int]) -> None:
    """However few texts a call has, a batch pads each text to at most 1.25x its length
    (plus what a batch under MIN_BATCH_TOKENS may waste)."""
    for batch in token_batches(lengths, 8192):
        shortest, longest = min(lengths[i] for i in batch), max(lengths[i] for i in batch)
        small = (len(batch) - 1) * longest < MIN_BATCH_TOKENS  # before its longest joined
        assert longest <= MAX_LENGTH_SPREAD * shortest or small


def test_mean_pool_ignores_padding_and_returns_unit_vectors() -> None:
    hidden = np.array([[[1, 0], [3, 0], [100, 100]], [[0, 2], [0, 0], [0, 0]]], np.float32)
    mask = np.array([[1, 1, 0], [1, 0, 0]], np.int64)
    pooled = mean_pool(hidden, mask)
    np.testing.assert_allclose(pooled, [[1, 0], [0, 1]], atol=1e-6)


def _checks(**cosine_and_speed: tuple[float, float]) -> dict[str, Check]:
    return {b: Check(b, "1", c, c, s) for b, (c, s) in cosine_and_speed.items()}


def test_auto_takes_the_fastest_exact_backend() -> None:
    checks = _checks(
        torch=(1.0, 10.0), openvino=(0.9999999, 14.0), **{"openvino-bf16": (0.999, 30.0)}
    )
    assert choose("auto", checks) == "openvino"  # bf16 is faster but not exact here
    assert choose("auto", _checks(torch=(1.0, 10.0), onnx=(1.0, 9.0))) == "torch"


def test_backends_are_timed_in_turns_so_a_burst_of_load_does_not_pick_one() -> None:
    """Seen on a first start beside another process's export: torch 26.9 check texts/s,
    openvino-bf16 26.6 (63 alone), so `auto` kept torch for good. Here a burst of load
    quadruples the 4th to 6th model calls: all of one backend's runs if each backend were
    timed three times in a row, one of each backend's runs when they take turns."""
    now, calls = [0.0], [0]

    def backend(cost: float) -> Callable[[], float]:
        def embed() -> float:
            calls[0] += 1
            now[0] += cost * (4 if calls[0] in (4, 5, 6) else 1)
            return cost

        return embed

    timed = race({"torch": backend(1.0), "openvino": backend(0.5)}, clock=lambda: now[0])
    assert {name: seconds for name, (_, seconds) in timed.items()} == {
        "torch": 1.0,
        "openvino": 0.5,
    }
    assert calls[0] == 6  # three rounds, the first a warm-up


def test_an_inexact_backend_is_refused_with_what_to_do() -> None:
    checks = _checks(torch=(1.0, 10.0), openvino=(EXACT_COSINE - 1e-5, 14.0))
    with pytest.raises(ConfigurationError, match=r"not exact.*EMBED_BACKEND=auto"):
        choose("openvino", checks)


def test_a_missing_backend_falls_back_to_torch_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        assert choose("onnx", _checks(torch=(1.0, 10.0))) == "torch"
    assert "pip install onnxruntime" in caplog.text


def test_the_shipped_model_can_be_exported() -> None:
    assert model_export.unsupported(resolve_model_path("all-MiniLM-L6-v2")) is None


def test_a_model_pooling_otherwise_is_not_exported(tmp_path: Path) -> None:
    shipped = resolve_model_path("all-MiniLM-L6-v2")
    for name in ("modules.json", "sentence_bert_config.json", "tokenizer.json"):
        (tmp_path / name).write_bytes((shipped / name).read_bytes())
    (tmp_path / "1_Pooling").mkdir()
    config = json.loads((shipped / "1_Pooling" / "config.json").read_text())
    config |= {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(config))
    assert "pools by ['pooling_mode_cls_token']" in (model_export.unsupported(tmp_path) or "")
    (tmp_path / "tokenizer.json").unlink()
    assert "tokenizer.json" in (model_export.unsupported(tmp_path) or "")
