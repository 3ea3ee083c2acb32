"""Watched roots as the file system has them now: present, gone, or replaced.

A root can be renamed away and a new folder made at its path (`mv`-based syncs, deploy
tools), re-pointed when it is a symlink, unmounted, or deleted and re-created. inotify
watches the old directory through all of that, so `RootMonitor` compares each root's
identity (device, inode, resolved path) every `interval_s` and says which roots to watch
again. A root that is gone is waited for: its documents stay indexed meanwhile.
"""

from __future__ import annotations

import logging
import os
import stat as stat_module
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ingest_worker.sources.folder.paths import Root, is_ignored

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Identity:
    device: int
    inode: int
    target: str  # the resolved path: a re-pointed symlink changes it


def identity(path: Path) -> Identity | None:
    """The directory at `path` now (following a symlink), or None if there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat_module.S_ISDIR(st.st_mode):
        return None
    return Identity(st.st_dev, st.st_ino, os.path.realpath(path))


class RootMonitor:
    def __init__(self, roots: list[Root], interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self._known = {root: identity(root.path) for root in roots}
        self._next = time.monotonic() + interval_s

    def is_present(self, root: Root) -> bool:
        """Present as last seen: re-checked now, so a caller about to delete documents
        because their files are gone never mistakes a vanished root for an empty one."""
        now = identity(root.path)
        return now is not None and now == self._known.get(root)

    def changed(self) -> list[Root]:
        """The roots that came back or were replaced since the last look (at most every
        `interval_s`); logs the ones that went away."""
        if time.monotonic() < self._next:
            return []
        self._next = time.monotonic() + self.interval_s
        back = []
        for root, before in self._known.items():
            now = identity(root.path)
            if now == before:
                continue
            self._known[root] = now
            if now is None:
                log.warning(
                    "watched folder %s is gone (renamed, deleted or unmounted); waiting for "
                    "it to come back, its documents stay indexed meanwhile",
                    root.path,
                )
                continue
            log.warning(
                "watched folder %s was %s; watching the new one and reconciling",
                root.path,
                "restored" if before is None else "replaced",
            )
            back.append(root)
        return back


def walk(folder: Path, root: Path | None = None) -> Iterator[tuple[Path, os.stat_result]]:
    """Every file below `folder` that is not hidden or temporary, with its stat."""
    base = root or folder
    for directory, subdirs, files in os.walk(folder, followlinks=False):
        here = Path(directory)
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        for name in files:
            path = here / name
            if is_ignored(PurePosixPath(path.relative_to(base).as_posix())):
                continue
            try:
                yield path, path.stat()
            except OSError:
                continue  # vanished, or a dangling symlink: the watcher will tell
