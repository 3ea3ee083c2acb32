"""The watched-folder source: watchdog events + reconciling scans → document events.

Watching starts *before* the initial scan, so no change made during the scan is missed. The
scan reconciles the index with the folder (new, changed and vanished files), and repeats every
`rescan_interval_s` as a safety net for missed events. Every change only marks a path dirty;
a dirty path is looked at once it has been quiet for `debounce_s`: then whatever is there now
(a file, a folder, or nothing) decides between upserts and deletes. So a move is a delete plus
an upsert, an editor's temp-file-and-rename save is one read of the final file, and a deleted
folder deletes every document under it.
"""

from __future__ import annotations

import logging
import os
import stat as stat_module
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm import tqdm
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from ingest_worker.errors import ContentTooLarge, CorruptContent, PoisonInput
from ingest_worker.events import DocumentEvent, Op, Outcome
from ingest_worker.pipeline import BatchReport, EventSink
from ingest_worker.retrying import until_done
from ingest_worker.sources.folder.debouncing import Debouncer
from ingest_worker.sources.folder.paths import Root, fingerprint, is_ignored, is_under

log = logging.getLogger(__name__)


class _Handler(FileSystemEventHandler):
    def __init__(self, debouncer: Debouncer) -> None:
        self.debouncer = debouncer

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        self.debouncer.touch(Path(os.fsdecode(event.src_path)))
        if dest := getattr(event, "dest_path", ""):
            self.debouncer.touch(Path(os.fsdecode(dest)))


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
        batch_files: int = 64,
        progress: bool = False,
    ) -> None:
        self.roots = roots
        self.sink = sink
        self.tenant = tenant
        self.rescan_interval_s = rescan_interval_s
        self.max_file_bytes = max_file_bytes
        self.batch_files = batch_files
        self.progress = progress
        self.debouncer = Debouncer(debounce_s)
        self.report = BatchReport()
        self._known: dict[str, dict[str, str | None]] = {}  # source → doc_id → fingerprint
        self._rejected: set[tuple[str, str]] = set()  # (doc_id, fingerprint) dead-lettered
        self._stopping = threading.Event()  # set by run(): stop retrying a database away
        sink.on_committed = self._remember

    # -- running --------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, once: bool = False) -> BatchReport:
        """Watch and index until `stop` is set; with `once`, stop when the folders are
        indexed (the initial scan and whatever changed meanwhile). While the database is
        away, work waits and is retried with backoff."""
        self._stopping = stop
        observer = self._watch()  # before the scan: a change made during it is not missed
        try:
            initial = self.reconcile()
            self._drain_initial(initial, stop)
            next_rescan = time.monotonic() + self.rescan_interval_s
            while not stop.is_set():
                if once and len(self.debouncer) == 0:
                    break
                if not all(emitter.is_alive() for emitter in observer.emitters):
                    log.warning("the file watcher stopped; restarting it and rescanning")
                    observer.stop()
                    observer = self._watch()
                    next_rescan = 0.0
                if time.monotonic() >= next_rescan:
                    self.reconcile()
                    next_rescan = time.monotonic() + self.rescan_interval_s
                self._process(self.debouncer.take_ready(timeout=0.2, limit=self.batch_files))
        finally:
            observer.stop()
            observer.join(timeout=5)
        return self.report

    def _watch(self) -> Any:
        observer = Observer()
        handler = _Handler(self.debouncer)
        for root in self.roots:
            observer.schedule(handler, str(root.path), recursive=True)
        observer.start()
        return observer

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
                batch = self.debouncer.take_ready(timeout=0.2, limit=self.batch_files)
                if not batch and len(self.debouncer) == 0:
                    break
                self._process(batch)
                bar.update(min(len(batch), count - bar.n))
                rate = self.report.chunks_embedded / max(1e-9, time.monotonic() - started)
                bar.set_postfix(chunks_per_s=f"{rate:.1f}")

    # -- scanning ---------------------------------------------------------------------------

    def reconcile(self) -> int:
        """Compare every folder with the index; mark new and changed files dirty and delete
        documents whose files are gone. Returns how many files were marked."""
        marked = 0
        for root in self.roots:
            known = self._known[root.source] = until_done(
                partial(self.sink.live_documents, root.source),
                self.sink.reconnect,
                self._stopping,
                "reading the index",
            )
            present: set[str] = set()
            for path, st in walk(root.path):
                doc_id = root.doc_id(path)
                present.add(doc_id)
                fp = fingerprint(st)
                if known.get(doc_id) != fp and (doc_id, fp) not in self._rejected:
                    self.debouncer.touch(path, immediate=True)
                    marked += 1
            gone = [d for d in known if d not in present]
            if gone:
                self._submit([self._delete(root, d) for d in gone])
        return marked

    def _process(self, paths: list[Path]) -> None:
        events: list[DocumentEvent] = []
        for path in paths:
            root = next((r for r in self.roots if path.is_relative_to(r.path)), None)
            if root is None or path == root.path:
                continue
            if is_ignored(PurePosixPath(path.relative_to(root.path).as_posix())):
                continue
            events += self._events_for(root, path)
        self._submit(events)

    def _submit(self, events: list[DocumentEvent]) -> None:
        if events:
            report = until_done(
                lambda: self.sink.process(events),
                self.sink.reconnect,
                self._stopping,
                f"indexing {len(events)} file events",
            )
            self.report.add(report)

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
        try:
            st = path.stat()  # follows a symlink: its target's fingerprint
            fp = fingerprint(st)
            if known.get(doc_id) == fp or (doc_id, fp) in self._rejected:
                return None  # unchanged, or already dead-lettered as it is
            if not stat_module.S_ISREG(st.st_mode):
                return None
            if path.is_symlink() and not path.resolve().is_relative_to(root.path):
                raise CorruptContent(
                    f"{path} is a symlink to a path outside {root.path}; "
                    "freshindex refuses to follow it"
                )
            if st.st_size > self.max_file_bytes:
                raise ContentTooLarge(
                    f"{path} is {st.st_size} bytes, over FRESHINDEX_MAX_FILE_BYTES="
                    f"{self.max_file_bytes}; raise the limit or split the file"
                )
            content = path.read_bytes()
            if fingerprint(path.stat()) != fp:  # still being written: look again later
                self.debouncer.touch(path)
                return None
        except FileNotFoundError:
            return self._delete(root, doc_id) if doc_id in known else None
        except PermissionError as e:
            error = CorruptContent(f"cannot read {path}: {e}")
            self._reject(root, doc_id, _safe_fingerprint(path), error)
            return None
        except PoisonInput as e:
            self._reject(root, doc_id, _safe_fingerprint(path), e)
            return self._delete(root, doc_id) if doc_id in known else None
        return DocumentEvent(
            doc_id=doc_id,
            op=Op.UPSERT,
            source=root.source,
            content=content,
            filename=str(path),  # the extension picks the parser; the path allows retries
            tenant=self.tenant,
            fingerprint=fp,
            event_time=datetime.fromtimestamp(st.st_mtime, UTC),
        )

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


def _safe_fingerprint(path: Path) -> str:
    try:
        return fingerprint(path.stat())
    except OSError:
        return ""
