"""Every embedding backend on the same chunk texts: chunks/s, ratio to torch, cosine to torch.

    .venv/bin/python -m bench.embedders [--collection ../shared/ir/cranfield] [--limit 600]
                                        [--rounds 2]

The texts are the chunks freshindex makes of the collection's documents (parsed and chunked
as the pipeline does). torch is sentence-transformers' `encode` (batch 32, as our peers run
it); every other backend is the model's ONNX export as freshindex serves it (batches of
similar length, `FRESHINDEX_EMBED_BATCH_TOKENS` padded tokens). Backends run in turn, round
after round, in one process, so that every ratio is measured side by side; each backend's
best round counts. Use it to choose `FRESHINDEX_EMBED_BACKEND` on your own hardware.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.corpus import save_result
from bench.retrieval import CRANFIELD, load
from ingest_worker import embedding_backends
from ingest_worker.chunking import split
from ingest_worker.embedding import DEFAULT_MODEL, Embedder
from ingest_worker.parsing import parse


def chunk_texts(collection: Path, limit: int, embedder: Embedder) -> list[str]:
    texts: list[str] = []
    for text in list(load(collection).corpus.values())[:limit]:
        blocks = parse(text.encode(), content_type="text/plain").blocks
        chunks = split(blocks, embedder.count_tokens, max_tokens=embedder.max_tokens)
        texts += [c.embed_text for c in chunks]
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collection", type=Path, default=CRANFIELD)
    parser.add_argument("--limit", type=int, default=600, help="Documents to chunk.")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-tokens", type=int, default=8192)
    parser.add_argument("--cache", type=Path, default=None, help="Model cache (default: temp).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        options = embedding_backends.Options(
            cache_dir=args.cache or Path(tmp), batch_tokens=args.batch_tokens
        )
        backends = ["torch", *embedding_backends.installed()]
        embedders = {b: embedding_backends.load(DEFAULT_MODEL, b, options) for b in backends}
        texts = chunk_texts(args.collection, args.limit, embedders["torch"])
        tokens = embedders["torch"].count_tokens(texts)
        seconds: dict[str, list[float]] = {b: [] for b in backends}
        vectors: dict[str, np.ndarray] = {}
        for round_ in range(args.rounds):
            for backend, embedder in embedders.items():
                started = time.perf_counter()
                vectors[backend] = np.asarray(embedder.embed(texts))
                seconds[backend].append(time.perf_counter() - started)
                print(f"round {round_ + 1} {backend}: {seconds[backend][-1]:.1f} s", flush=True)
    torch_best = min(seconds["torch"])
    result = {
        "texts": len(texts),
        "mean_tokens": float(np.mean(tokens)),
        "backends": {
            backend: {
                "chunks_per_s": round(len(texts) / min(runs), 2),
                "ratio_to_torch": round(torch_best / min(runs), 3),
                "min_cosine_to_torch": float((vectors[backend] * vectors["torch"]).sum(1).min()),
                "mean_cosine_to_torch": float((vectors[backend] * vectors["torch"]).sum(1).mean()),
                "seconds": [round(s, 2) for s in runs],
            }
            for backend, runs in seconds.items()
        },
    }
    save_result("embedders", result)


if __name__ == "__main__":
    main()
