"""Reading one file of a watched folder into an upsert event.

What is not a document is refused with a reason (a symlink out of the folder, an oversized
file), and a file that looks half-written is not read yet: an empty one is looked at again
for a while (it is usually one just created), one that changes while it is read is looked at
again after the debounce. Only then would a parse failure be the file's fault.
"""

from __future__ import annotations

import stat as stat_module
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ingest_worker.errors import ContentTooLarge, CorruptContent
from ingest_worker.events import DocumentEvent, Op
from ingest_worker.sources.folder.debouncing import Debouncer
from ingest_worker.sources.folder.paths import Root, fingerprint

EMPTY_FILE_WAIT_S = 2.0


class FileReader:
    def __init__(self, debouncer: Debouncer, tenant: str, max_file_bytes: int) -> None:
        self.debouncer = debouncer
        self.tenant = tenant
        self.max_file_bytes = max_file_bytes
        self.empty_since: dict[Path, float] = {}  # empty files being given time

    def read(
        self, root: Root, path: Path, doc_id: str, unchanged: Callable[[str], bool]
    ) -> DocumentEvent | None:
        """The upsert for `path`, or None (not a regular file, `unchanged(fingerprint)`, or
        still being written: then it is marked dirty again). Raises `PoisonInput` for what
        is not a document, `OSError` for what cannot be read."""
        st = path.stat()  # follows a symlink: its target's fingerprint
        fp = fingerprint(st)
        if unchanged(fp) or not stat_module.S_ISREG(st.st_mode):
            return None
        if path.is_symlink() and not path.resolve().is_relative_to(root.path.resolve()):
            raise CorruptContent(
                f"{path} is a symlink to a path outside {root.path}; "
                "freshindex refuses to follow it"
            )
        if st.st_size > self.max_file_bytes:
            raise ContentTooLarge(
                f"{path} is {st.st_size} bytes, over FRESHINDEX_MAX_FILE_BYTES="
                f"{self.max_file_bytes}; raise the limit or split the file"
            )
        if st.st_size == 0 and self._still_empty(path):
            self.debouncer.touch(path)
            return None
        self.empty_since.pop(path, None)
        content = path.read_bytes()
        if fingerprint(path.stat()) != fp:  # still being written: look again later
            self.debouncer.touch(path)
            return None
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

    def _still_empty(self, path: Path) -> bool:
        """True while an empty file is young enough to be given more time to be written."""
        first = self.empty_since.setdefault(path, time.monotonic())
        return time.monotonic() - first < max(EMPTY_FILE_WAIT_S, 3 * self.debouncer.quiet_s)
