"""Changed paths, released once they have been quiet for a while (bursts become one read)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path


class Debouncer:
    """Thread-safe set of dirty paths with per-path quiet timers.

    A path is ready when no change touched it for `quiet_s`, or when it first changed more
    than `max_delay_s` ago (so a file that never stops changing is still read; the reader
    checks that it did not change while being read). `max_delay_s` defaults to 5 s, or to
    `quiet_s` when that is longer. A touch marked `immediate` (a writer closed the file, a
    scan found it changed) makes the path ready at once.
    """

    def __init__(self, quiet_s: float, max_delay_s: float | None = None) -> None:
        self.quiet_s = quiet_s
        self.max_delay_s = max(5.0, quiet_s) if max_delay_s is None else max_delay_s
        self._first: dict[Path, float] = {}
        self._last: dict[Path, float] = {}
        self._changed = threading.Condition()

    def touch(self, path: Path, *, immediate: bool = False) -> None:
        now = time.monotonic()
        with self._changed:
            self._first.setdefault(path, now)
            self._last[path] = now - self.quiet_s if immediate else now
            self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            return len(self._last)

    def take_ready(
        self,
        timeout: float,
        limit: int = 64,
        *,
        weight: Callable[[Path], int] | None = None,
        budget: int = 0,
    ) -> list[Path]:
        """Wait up to `timeout` for ready paths; return (and forget) at most `limit`, and,
        given a `weight` per path, no more than fit in `budget` (at least one path)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                now = time.monotonic()
                ready = [
                    p
                    for p, last in self._last.items()
                    if now - last >= self.quiet_s or now - self._first[p] >= self.max_delay_s
                ][:limit]
                if weight is not None:
                    ready = _within(ready, weight, budget)
                if ready or now >= deadline:
                    for path in ready:
                        del self._last[path], self._first[path]
                    return ready
                next_due = min(
                    (
                        min(last + self.quiet_s, self._first[p] + self.max_delay_s)
                        for p, last in self._last.items()
                    ),
                    default=deadline,
                )
                self._changed.wait(max(0.005, min(next_due, deadline) - now))

    def take_where(self, wanted: Callable[[Path], bool], limit: int = 1024) -> list[Path]:
        """Return (and forget) at most `limit` dirty paths for which `wanted(path)`, ready
        or not: e.g. vanished ones, which have nothing left to wait for."""
        with self._changed:
            taken = [p for p in self._last if wanted(p)][:limit]
            for path in taken:
                del self._last[path], self._first[path]
            return taken


def _within(paths: list[Path], weight: Callable[[Path], int], budget: int) -> list[Path]:
    """The first paths whose weights sum within `budget`; the first one in any case."""
    taken: list[Path] = []
    total = 0
    for path in paths:
        total += weight(path)
        if taken and total > budget:
            break
        taken.append(path)
    return taken
