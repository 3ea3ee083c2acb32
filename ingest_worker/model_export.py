"""Export a sentence-transformers model's transformer to ONNX, once, with torch.

Only this module (and the torch embedder) imports torch; it runs the first time a model is
served by an exported backend, and its result is cached by `embedding_backends`.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
FORMAT = "onnx-dynamo/last-hidden-state/1"  # bump to rebuild every cached export
_POOLING = "sentence_transformers.models.Pooling"
_SUPPORTED = [
    ["sentence_transformers.models.Transformer", _POOLING],
    [
        "sentence_transformers.models.Transformer",
        _POOLING,
        "sentence_transformers.models.Normalize",
    ],
]


def unsupported(model_dir: Path) -> str | None:
    """Why the exported backends cannot serve this model exactly; None if they can."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text())
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
        json.loads((model_dir / "sentence_bert_config.json").read_text())
    except (OSError, ValueError, KeyError) as e:
        return f"it lacks the sentence-transformers files an export needs ({e})"
    if not (model_dir / "tokenizer.json").is_file():
        return "it has no tokenizer.json (a fast tokenizer)"
    if [m.get("type") for m in modules] not in _SUPPORTED:
        return "its modules are not Transformer → Pooling → (Normalize)"
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
    if modes != ["pooling_mode_mean_tokens"]:
        return f"it pools by {modes}, not by the mean of its tokens"
    return None


def export(model_dir: Path, dest: Path) -> Path:
    """Write the transformer of `model_dir` to `dest/model.onnx` (+ its weights file)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    for name in ("torch.onnx", "torch._dynamo", "torch.export", "onnxscript", "onnx_ir"):
        logging.getLogger(name).setLevel(logging.ERROR)
    model = transformers.AutoModel.from_pretrained(str(model_dir), local_files_only=True)
    model.eval()

    class LastHiddenState(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    # Trace with a padded row: a mask of all ones lets transformers drop the mask from the
    # traced graph, and padded batches would then attend to their padding.
    example = torch.full((2, 8), 1000, dtype=torch.int64)
    mask = torch.ones((2, 8), dtype=torch.int64)
    mask[1, 5:] = 0
    batch, tokens = torch.export.Dim("batch"), torch.export.Dim("tokens", max=512)
    dims = {0: batch, 1: tokens}
    path = dest / ONNX_FILE
    log.info("exporting %s to ONNX (once; cached in %s)", model_dir.name, dest)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            LastHiddenState(),
            (example, mask, torch.zeros_like(example)),
            str(path),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_shapes={"input_ids": dims, "attention_mask": dims, "token_type_ids": dims},
            dynamo=True,
            verbose=False,
        )
    return path
