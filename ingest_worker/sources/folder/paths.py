"""Pure rules of the folder source: which paths are documents, and their doc_ids."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ingest_worker.errors import ConfigurationError

# Editor swap/backup/temp files and partial downloads: never documents.
TEMPORARY_PATTERNS = (
    "*.swp",
    "*.swo",
    "*.swx",
    "*~",
    "*.tmp",
    "*.temp",
    "*.bak",
    "*.part",
    "*.crdownload",
    "#*#",
    "4913",
    "*.kate-swp",
    "~$*",
    "*.lock",
)


@dataclass(frozen=True, slots=True)
class Root:
    """A watched folder; `prefix` names it in doc_ids when several folders are watched."""

    path: Path
    prefix: str | None

    @property
    def source(self) -> str:
        return f"folder:{self.path}"

    def doc_id(self, path: Path) -> str:
        relative = PurePosixPath(path.relative_to(self.path).as_posix())
        return f"{self.prefix}/{relative}" if self.prefix else str(relative)

    def path_of(self, doc_id: str) -> Path:
        relative = doc_id.removeprefix(f"{self.prefix}/") if self.prefix else doc_id
        return self.path / relative


def make_roots(paths: list[Path]) -> list[Root]:
    """Resolve the watched folders; prefix doc_ids with the folder name when there are many.

    A root that is a symlink stays the symlink (only its parents are resolved), so that
    re-pointing it keeps its source and doc_ids."""
    resolved = [_absolute(p) for p in paths]
    for path in resolved:
        if not path.is_dir():
            raise ConfigurationError(f"{path} is not a folder; create it or fix the path")
    if len(resolved) == 1:
        return [Root(resolved[0], None)]
    names = [p.name for p in resolved]
    if len(set(names)) != len(names):
        raise ConfigurationError(
            f"watched folders must have different names (doc_ids start with them): {names}"
        )
    for a in resolved:
        for b in resolved:
            if a != b and a.is_relative_to(b):
                raise ConfigurationError(f"{a} is inside {b}; watch only one of them")
    return [Root(p, p.name) for p in resolved]


def _absolute(path: Path) -> Path:
    path = Path(os.path.abspath(path.expanduser()))
    return path.parent.resolve() / path.name if path.name else path


def is_ignored(relative: PurePosixPath) -> bool:
    """Hidden paths (any part starting with a dot) and temporary files are not documents."""
    if any(part.startswith(".") for part in relative.parts):
        return True
    return any(fnmatch.fnmatchcase(relative.name, pattern) for pattern in TEMPORARY_PATTERNS)


def fingerprint(stat: os.stat_result) -> str:
    """Changes whenever the content may have: ctime moves on every write, even when a
    restored file's mtime goes backwards."""
    return f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}:{stat.st_ino}"


def is_under(doc_id: str, prefix: str) -> bool:
    """True if `doc_id` is `prefix` itself or a document inside the folder `prefix`."""
    return doc_id == prefix or doc_id.startswith(prefix.rstrip("/") + "/")
