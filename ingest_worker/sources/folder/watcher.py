"""The watched-folder source: watchdog events + reconciling scans → document events.

Watching starts *before* the initial scan, so no change made during the scan is missed. The
scan reconciles the index with the folder (new, changed and vanished files), and repeats every
`rescan_interval_s` as a safety net for missed events. Every change only marks a path dirty;
a dirty path is looked at once it has been quiet for `debounce_s`, or at once when its writer
closes it (inotify's close-write; the debounce remains for appends to a file kept open, mmap
writes, and platforms without close events): then whatever is there now
(a file, a folder, or nothing) decides between upserts and deletes. So a move is a delete plus
an upsert, an editor's temp-file-and-rename save is one read of the final file, and a deleted
folder deletes every document under it.

Two things are never taken for deletes: a root that is gone (`roots.RootMonitor` waits for
it, and re-watches a root that is replaced), and a reconcile or batch that would delete more
than the delete guard allows (held until an operator confirms; see `delete_guard`).
"""

from __future__ import annotations

import logging
import os
import stat as stat_module
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from tqdm import tqdm
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from ingest_worker.errors import CorruptContent, PoisonInput
from ingest_worker.events import DocumentEvent, Op, Outcome
from ingest_worker.pipeline import BatchReport, EventSink
from ingest_worker.retrying import until_done
from ingest_worker.sources.folder.debouncing import Debouncer
from ingest_worker.sources.folder.paths import Root, fingerprint, is_ignored, is_under
from ingest_worker.sources.folder.reading import FileReader
from ingest_worker.sources.folder.roots import RootMonitor, identity, walk

log = logging.getLogger(__name__)
T = TypeVar("T")


class _Handler(FileSystemEventHandler):
    """Marks changed paths dirty, named under the root's own path (a symlinked root is
    watched at its target)."""

    def __init__(self, debouncer: Debouncer, watched: Path, root: Path) -> None:
        self.debouncer = debouncer
        self.watched = watched
        self.root = root

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        if event.event_type == "closed":  # a writer closed the file (inotify close-write):
            self._touch(event.src_path, immediate=True)  # done, read it now
            return
        self._touch(event.src_path)
        if dest := getattr(event, "dest_path", ""):
            self._touch(dest)

    def _touch(self, raw: str | bytes, *, immediate: bool = False) -> None:
        path = Path(os.fsdecode(raw))
        if self.watched != self.root and path.is_relative_to(self.watched):
            path = self.root / path.relative_to(self.watched)
        self.debouncer.touch(path, immediate=immediate)


class FolderWorker:
    def __init__(
        self,
        roots: list[Root],
        sink: EventSink,
        *,
        tenant: str = "default",
        debounce_s: float = 0.3,
        rescan_interval_s: float = 300.0,
        max_file_bytes: int = 20 * 1024 * 1024,
        batch_files: int = 1024,
        batch_bytes: int = 256 * 1024,
        progress: bool = False,
    ) -> None:
        self.roots = roots
        self.sink = sink
        self.tenant = tenant
        self.rescan_interval_s = rescan_interval_s
        self.batch_files = batch_files
        self.batch_bytes = batch_bytes
        self.progress = progress
        self.debouncer = Debouncer(debounce_s)
        self.reader = FileReader(self.debouncer, tenant, max_file_bytes)
        self.report = BatchReport()
        self._known: dict[str, dict[str, str | None]] = {}  # source → doc_id → fingerprint
        self._rejected: set[tuple[str, str]] = set()  # (doc_id, fingerprint) dead-lettered
        self._stopping = threading.Event()  # set by run(): stop retrying a database away
        self.monitor = RootMonitor(roots)
        self._held: set[str] = set()  # sources whose deletes wait for an operator
        self._next_hold_check = 0.0
        self._observer: Any = None
        sink.on_committed = self._remember

    # -- running --------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, once: bool = False) -> BatchReport:
        """Watch and index until `stop` is set; with `once`, stop when the folders are
        indexed (the initial scan and whatever changed meanwhile). While the database is
        away, work waits and is retried with backoff."""
        self._stopping = stop
        self._rewatch()  # before the scan: a change made during it is not missed
        try:
            initial = self.reconcile()
            self._drain_initial(initial, stop)
            next_rescan = time.monotonic() + self.rescan_interval_s
            while not stop.is_set():
                if once and len(self.debouncer) == 0:
                    break
                self._look_after_roots()
                if time.monotonic() >= next_rescan:
                    self.reconcile()
                    next_rescan = time.monotonic() + self.rescan_interval_s
                self._process(self._take_batch())
        finally:
            self._observer.stop()
            self._observer.join(timeout=5)
        return self.report

    def _rewatch(self) -> None:
        """(Re)start watching every root that is there now."""
        if self._observer is not None:
            self._observer.stop()
        self._observer = observer = Observer()
        for root in self.roots:
            if (now := identity(root.path)) is not None:
                handler = _Handler(self.debouncer, Path(now.target), root.path)
                try:
                    observer.schedule(handler, now.target, recursive=True)
                except OSError as e:  # gone again: the monitor will see it come back
                    log.warning("cannot watch %s: %s", root.path, e)
        observer.start()

    def _look_after_roots(self) -> None:
        """Re-watch and reconcile roots that came back or were replaced, restart a watcher
        that stopped, and apply held deletes once an operator has confirmed them."""
        if back := self.monitor.changed():
            self._rewatch()
            self.reconcile(back)
        elif not all(emitter.is_alive() for emitter in self._observer.emitters):
            log.warning("the file watcher stopped; restarting it and rescanning")
            self._rewatch()
            self.reconcile()
        if self._held and time.monotonic() >= self._next_hold_check:
            self._next_hold_check = time.monotonic() + 1.0
            confirmed = [
                root
                for root in self.roots
                if root.source in self._held
                and self._retrying(self.sink.deletes_confirmed, root.source)
            ]
            if confirmed:
                self.reconcile(confirmed)

    def _drain_initial(self, count: int, stop: threading.Event) -> None:
        """Index what the scan found, with a progress bar (files, chunks/s, ETA)."""
        bar = tqdm(
            total=count,
            unit="file",
            desc="initial index",
            disable=not self.progress or count == 0,
            dynamic_ncols=True,
        )
        started = time.monotonic()
        with bar:
            while not stop.is_set() and bar.n < count:
                batch = self._take_batch()
                if not batch and len(self.debouncer) == 0:
                    break
                self._process(batch)
                bar.update(min(len(batch), count - bar.n))
                rate = self.report.chunks_embedded / max(1e-9, time.monotonic() - started)
                bar.set_postfix(chunks_per_s=f"{rate:.1f}")

    # -- scanning ---------------------------------------------------------------------------

    def reconcile(self, roots: list[Root] | None = None) -> int:
        """Compare folders (all, or `roots`) with the index; mark new and changed files
        dirty and delete documents whose files are gone, unless the root itself is gone or
        the delete guard holds them. Returns how many files were marked."""
        marked = 0
        for root in self.roots if roots is None else roots:
            if not self.monitor.is_present(root):
                continue  # gone or replaced: the monitor reports it, nothing is deleted
            known = self._known[root.source] = self._retrying(self.sink.live_documents, root.source)
            present: set[str] = set()
            for path, st in walk(root.path):
                doc_id = root.doc_id(path)
                present.add(doc_id)
                fp = fingerprint(st)
                if known.get(doc_id) != fp and (doc_id, fp) not in self._rejected:
                    self.debouncer.touch(path, immediate=True)
                    marked += 1
            gone = [d for d in known if d not in present]
            if not self.monitor.is_present(root):  # vanished while we walked it
                continue
            if self._deletes_allowed(root.source, len(gone), len(known)) and gone:
                self._submit([self._delete(root, d) for d in gone])
        return marked

    def _take_batch(self) -> list[Path]:
        """The next ready files, as many as fit in `batch_bytes` of file size (one larger
        file alone): the more texts a model call sees, the less it pads them; the fewer,
        the sooner SIGTERM's "finish the batch in hand" is done."""
        return self.debouncer.take_ready(
            timeout=0.2, limit=self.batch_files, weight=_size, budget=self.batch_bytes
        )

    def _process(self, paths: list[Path]) -> None:
        if any(not os.path.lexists(p) for p in paths):
            # a burst of removals is judged as a whole by the delete guard, not in the
            # slices the quiet timers would release it in
            paths = paths + self.debouncer.take_where(lambda p: not os.path.lexists(p))
        events: list[DocumentEvent] = []
        present = {root for root in self.roots if self.monitor.is_present(root)}
        for path in paths:
            root = next((r for r in self.roots if path.is_relative_to(r.path)), None)
            if root is None or path == root.path or root not in present:
                continue
            if is_ignored(PurePosixPath(path.relative_to(root.path).as_posix())):
                continue
            events += self._events_for(root, path)
        deletes = Counter(e.source for e in events if e.op is Op.DELETE)
        held = {
            source
            for source, count in deletes.items()
            if not self._deletes_allowed(source, count, len(self._known.get(source, {})))
        }
        self._submit([e for e in events if e.op is not Op.DELETE or e.source not in held])

    def _deletes_allowed(self, source: str, deletes: int, documents: int) -> bool:
        """Ask the delete guard; a held source is looked at again once confirmed."""
        allowed = self._retrying(self.sink.guard_deletes, source, deletes, documents)
        (self._held.discard if allowed else self._held.add)(source)
        return allowed

    def _retrying(self, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)`, waiting while the database is away."""
        return until_done(partial(call, *args), self.sink.reconnect, self._stopping, call.__name__)

    def _submit(self, events: list[DocumentEvent]) -> None:
        if events:
            self.report.add(self._retrying(self.sink.process, events))

    def _events_for(self, root: Root, path: Path) -> list[DocumentEvent]:
        """What is at `path` now decides: nothing → deletes; a folder → its files are marked;
        a file → an upsert if it changed."""
        doc_id = root.doc_id(path)
        known = self._known.setdefault(root.source, {})
        try:
            st = path.lstat()
        except FileNotFoundError:
            return [self._delete(root, d) for d in list(known) if is_under(d, doc_id)]
        if stat_module.S_ISDIR(st.st_mode):
            present = set()
            for child, _ in walk(path, root.path):
                present.add(root.doc_id(child))
                self.debouncer.touch(child, immediate=True)
            return [
                self._delete(root, d)
                for d in list(known)
                if is_under(d, doc_id) and d != doc_id and d not in present
            ]
        event = self._read(root, path, doc_id)
        return [event] if event else []

    def _read(self, root: Root, path: Path, doc_id: str) -> DocumentEvent | None:
        known = self._known[root.source]

        def unchanged(fp: str) -> bool:  # or already dead-lettered as it is
            return known.get(doc_id) == fp or (doc_id, fp) in self._rejected

        try:
            return self.reader.read(root, path, doc_id, unchanged)
        except FileNotFoundError:
            return self._delete(root, doc_id) if doc_id in known else None
        except PermissionError as e:
            error = CorruptContent(f"cannot read {path}: {e}")
            self._reject(root, doc_id, _safe_fingerprint(path), error)
            return None
        except PoisonInput as e:
            self._reject(root, doc_id, _safe_fingerprint(path), e)
            return self._delete(root, doc_id) if doc_id in known else None

    def _delete(self, root: Root, doc_id: str) -> DocumentEvent:
        return DocumentEvent(
            doc_id=doc_id,
            op=Op.DELETE,
            source=root.source,
            tenant=self.tenant,
            event_time=datetime.now(UTC),
        )

    def _reject(self, root: Root, doc_id: str, fp: str, error: PoisonInput) -> None:
        self._rejected.add((doc_id, fp))
        event = DocumentEvent(doc_id=doc_id, op=Op.UPSERT, source=root.source, tenant=self.tenant)
        self.sink.record_dead_letter(event, error)

    def _remember(self, event: DocumentEvent, outcome: Outcome) -> None:
        """Keep the in-memory picture of the index in step with what was committed."""
        known = self._known.setdefault(event.source, {})
        if outcome is Outcome.DEAD_LETTER:
            self._rejected.add((event.doc_id, event.fingerprint or ""))
        elif event.op is Op.DELETE:
            known.pop(event.doc_id, None)
        elif outcome is not Outcome.STALE:
            known[event.doc_id] = event.fingerprint


def _safe_fingerprint(path: Path) -> str:
    try:
        return fingerprint(path.stat())
    except OSError:
        return ""


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # gone: reading it will say so
        return 0
