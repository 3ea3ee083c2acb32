"""Which runtime serves the model: FRESHINDEX_EMBED_BACKEND=auto|torch|openvino(-bf16)|onnx.

`torch` is sentence-transformers itself. The others serve the model's ONNX export, built once
with torch into `<cache_dir>/<model>-<fingerprint>/` (never into site-packages) and reused.
Before an exported backend serves, it is checked against torch's vectors on the
`embedding_check` texts: one whose vectors differ from torch's by more than cosine 0.9999 is
not exact, and is refused (its vectors would not match the rest of the index). The check also
times each backend on this machine, and `auto` takes the fastest exact one. torch's vectors
are kept with the export, so a runtime upgraded later is re-checked without torch.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from ingest_worker import model_export
from ingest_worker.embedding import (
    Embedder,
    SentenceTransformerEmbedder,
    canonical_name,
    resolve_model_path,
)
from ingest_worker.embedding_check import check_texts
from ingest_worker.errors import ConfigurationError
from ingest_worker.exported_embedder import (
    ExportedEmbedder,
    Runner,
    onnxruntime_runner,
    openvino_runner,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

EXACT_COSINE = 0.9999
BACKENDS = ("auto", "torch", "openvino", "openvino-bf16", "onnx")
_RUNTIME = {"openvino": "openvino", "openvino-bf16": "openvino", "onnx": "onnxruntime"}
# A query is a few tokens: one thread embeds it about as fast as all of them, and beside a
# batch being embedded at the same time it takes one thread's share of the cores, not a turn.
QUERY_THREADS = 1
_REFERENCE = "torch-vectors.npy"
_MANIFEST = "checks.json"


@dataclass(frozen=True)
class Check:
    """How one backend did on the check texts, on this machine."""

    backend: str
    version: str  # of its runtime package
    min_cosine: float  # to torch's vectors
    mean_cosine: float
    texts_per_s: float

    @property
    def exact(self) -> bool:
        return self.min_cosine >= EXACT_COSINE


@dataclass(frozen=True)
class Options:
    cache_dir: Path  # where exports live
    batch_size: int = 32  # texts per torch call
    batch_tokens: int = 8192  # padded tokens per exported-backend call


def load(model: str, backend: str, options: Options) -> Embedder:
    """The embedder for `model` on `backend` (see the module docstring)."""
    if backend not in BACKENDS:
        raise ConfigurationError(f"FRESHINDEX_EMBED_BACKEND={backend!r}: choose one of {BACKENDS}")
    if backend == "torch":
        return SentenceTransformerEmbedder(model, batch_size=options.batch_size)
    path = resolve_model_path(model)
    if reason := model_export.unsupported(path):
        log.log(
            logging.INFO if backend == "auto" else logging.WARNING,
            "%s cannot serve %s exactly (%s); using torch",
            backend,
            model,
            reason,
        )
        return SentenceTransformerEmbedder(model, batch_size=options.batch_size)
    try:
        export_dir, checks = prepare(path, options)
    except (OSError, RuntimeError, ValueError, ImportError) as e:  # what an export may raise
        log.warning("could not export %s for %s (%r); using torch", model, backend, e)
        return SentenceTransformerEmbedder(model, batch_size=options.batch_size)
    chosen = choose(backend, checks)
    log.info(
        "embedding with %s %s (min cosine to torch %.7f; check texts/s here: %s; "
        "to time the backends again, delete %s)",
        chosen,
        checks[chosen].version,
        checks[chosen].min_cosine,
        ", ".join(f"{c.backend} {c.texts_per_s:.0f}" for c in checks.values()),
        export_dir,
    )
    if chosen == "torch":
        return SentenceTransformerEmbedder(model, batch_size=options.batch_size)
    return _exported(chosen, canonical_name(model), path, export_dir, options)


def for_queries(embedder: Embedder) -> Embedder:
    """The model's query lane where it has one (the exported backends), warmed up so that
    the first search does not compile it; torch embeds queries and batches on one model,
    one call at a time."""
    if not isinstance(embedder, ExportedEmbedder):
        return embedder
    lane = embedder.queries
    lane.embed(["warm up the query lane"])
    return lane


def choose(backend: str, checks: dict[str, Check]) -> str:
    """The backend to use, given the checks made here (torch's own speed included)."""
    if backend == "auto":
        exact = [c for c in checks.values() if c.exact]
        return max(exact, key=lambda c: c.texts_per_s).backend
    check = checks.get(backend)
    if check is None:
        log.warning(
            "backend %s is not installed (pip install %s); using torch", backend, _RUNTIME[backend]
        )
        return "torch"
    if not check.exact:
        raise ConfigurationError(
            f"backend {backend} is not exact here: its vectors differ from torch's (min cosine "
            f"{check.min_cosine:.6f} < {EXACT_COSINE}), so they would not match the index; "
            "use FRESHINDEX_EMBED_BACKEND=auto"
        )
    return backend


def prepare(model_dir: Path, options: Options) -> tuple[Path, dict[str, Check]]:
    """The export of `model_dir` and the checks of every installed backend: built (with
    torch) on first use, re-checked when a runtime's version changed. One process builds;
    others wait for it."""
    export_dir = options.cache_dir / f"{model_dir.name}-{fingerprint(model_dir)[:16]}"
    options.cache_dir.mkdir(parents=True, exist_ok=True)
    with _locked(options.cache_dir / f"{export_dir.name}.lock"):
        if not (export_dir / _MANIFEST).is_file():
            _build(model_dir, export_dir, options)
        checks = _read_checks(export_dir)
        if stale := [
            b for b in installed() if _version(b) != getattr(checks.get(b), "version", None)
        ]:
            embedders = {
                b: _exported(b, model_dir.name, model_dir, export_dir, options) for b in stale
            }
            checks.update(_checked(embedders, np.load(export_dir / _REFERENCE))[0])
            _write_checks(export_dir, checks)
    return export_dir, checks


def installed() -> list[str]:
    return [b for b, module in _RUNTIME.items() if importlib.util.find_spec(module) is not None]


def race(
    calls: Mapping[str, Callable[[], T]],
    rounds: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, tuple[T, float]]:
    """Each call's result and its best time of `rounds`, the calls taking turns within every
    round: load from elsewhere (another process exporting, a test suite) then slows each of
    them about alike, instead of only the one it happens to meet. The first round warms up."""
    best: dict[str, tuple[T, float]] = {}
    for _ in range(rounds):
        for name, call in calls.items():
            started = clock()
            result = call()
            seconds = clock() - started
            if name not in best or seconds < best[name][1]:
                best[name] = (result, seconds)
    return best


def _checked(
    embedders: Mapping[str, Embedder], reference: NDArray[np.float32] | None = None
) -> tuple[dict[str, Check], NDArray[np.float32]]:
    """Every backend's check, timed side by side, and torch's vectors they were checked
    against (made by the `torch` entry when no `reference` is given)."""
    texts = check_texts()
    timed = race({b: functools.partial(e.embed, texts) for b, e in embedders.items()})
    if reference is None:
        reference = np.asarray(timed["torch"][0])
    checks = {}
    for backend, (vectors, seconds) in timed.items():
        cosines = (np.asarray(vectors) * reference).sum(axis=1)
        log.info("checked %s: min cosine to torch %.7f", backend, float(cosines.min()))
        checks[backend] = Check(
            backend,
            _version(backend),
            float(cosines.min()),
            float(cosines.mean()),
            len(texts) / seconds,
        )
    return checks, reference


def fingerprint(model_dir: Path) -> str:
    """A digest of the model's files: a changed model gets a new export."""
    digest = hashlib.sha256(model_export.FORMAT.encode())
    for file in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(model_dir)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _build(model_dir: Path, export_dir: Path, options: Options) -> None:
    """Export, keep torch's vectors of the check texts, check every installed backend."""
    log.info("first use of %s: exporting it and checking the backends (about a minute)", model_dir)
    embedders: dict[str, Embedder] = {
        "torch": SentenceTransformerEmbedder(str(model_dir), batch_size=options.batch_size)
    }
    building = Path(tempfile.mkdtemp(dir=options.cache_dir, prefix=".export-"))
    try:
        model_export.export(model_dir, building)
        for backend in installed():
            embedders[backend] = _exported(backend, model_dir.name, model_dir, building, options)
        checks, reference = _checked(embedders)
        np.save(building / _REFERENCE, reference)
        _write_checks(building, checks)
        shutil.rmtree(export_dir, ignore_errors=True)
        building.rename(export_dir)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise


def _exported(
    backend: str, model_name: str, model_dir: Path, export_dir: Path, options: Options
) -> ExportedEmbedder:
    return ExportedEmbedder(
        model_name,
        model_dir,
        _runner(backend, export_dir),
        backend=backend,
        batch_tokens=options.batch_tokens,
        query_runner=lambda: _runner(backend, export_dir, threads=QUERY_THREADS),
    )


def _runner(backend: str, export_dir: Path, threads: int | None = None) -> Runner:
    onnx = export_dir / model_export.ONNX_FILE
    if backend == "onnx":
        return onnxruntime_runner(onnx, threads=threads)
    precision = "bf16" if backend == "openvino-bf16" else "f32"
    return openvino_runner(
        onnx, precision=precision, cache_dir=export_dir / f"openvino-{precision}", threads=threads
    )


def _version(backend: str) -> str:
    return importlib.metadata.version(_RUNTIME.get(backend, backend))


def _read_checks(export_dir: Path) -> dict[str, Check]:
    rows = json.loads((export_dir / _MANIFEST).read_text())
    return {row["backend"]: Check(**row) for row in rows}


def _write_checks(export_dir: Path, checks: dict[str, Check]) -> None:
    tmp = export_dir / f"{_MANIFEST}.tmp"
    tmp.write_text(json.dumps([asdict(c) for c in checks.values()], indent=2))
    tmp.replace(export_dir / _MANIFEST)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
