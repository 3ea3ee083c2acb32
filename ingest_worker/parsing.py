"""Content bytes → title and text blocks, each block with the heading path above it.

Pure: no I/O besides reading the given bytes. Every failure is a `PoisonInput` whose message
says what was wrong, so that a worker can dead-letter the event and go on.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from ingest_worker.errors import ContentTooLarge, CorruptContent, UnsupportedContent

TEXT, MARKDOWN, HTML, PDF = "text/plain", "text/markdown", "text/html", "application/pdf"

_TYPE_BY_EXTENSION = {
    ".txt": TEXT,
    ".text": TEXT,
    ".rst": TEXT,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".html": HTML,
    ".htm": HTML,
    ".xhtml": HTML,
    ".pdf": PDF,
}
_TYPE_ALIASES = {"text/x-markdown": MARKDOWN, "application/xhtml+xml": HTML}
SUPPORTED_EXTENSIONS = frozenset(_TYPE_BY_EXTENSION)


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph-like unit of text and the headings it sits under."""

    heading_path: tuple[str, ...]
    text: str


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    title: str | None
    blocks: tuple[Block, ...]


def detect_content_type(content_type: str | None, filename: str | None) -> str:
    """The parser to use: an explicit content type wins over the file extension."""
    if content_type:
        base = content_type.split(";", 1)[0].strip().lower()
        base = _TYPE_ALIASES.get(base, base)
        if base in (TEXT, MARKDOWN, HTML, PDF):
            return base
        raise UnsupportedContent(
            f"content type {content_type!r} is not supported; use one of "
            f"{TEXT}, {MARKDOWN}, {HTML}, {PDF}"
        )
    suffix = PurePosixPath(filename or "").suffix.lower()
    if suffix in _TYPE_BY_EXTENSION:
        return _TYPE_BY_EXTENSION[suffix]
    raise UnsupportedContent(
        f"cannot tell the type of {filename!r}: supported extensions are "
        f"{', '.join(sorted(_TYPE_BY_EXTENSION))}, or send a content_type"
    )


def text_type(filename: str | None) -> str:
    """The type of content that arrived as text: Markdown or HTML when the name says so,
    plain text otherwise (text is text; only bytes need a type)."""
    kind = _TYPE_BY_EXTENSION.get(PurePosixPath(filename or "").suffix.lower(), TEXT)
    return kind if kind in (MARKDOWN, HTML) else TEXT


def parse(
    content: bytes,
    *,
    content_type: str | None = None,
    filename: str | None = None,
    max_bytes: int = 20 * 1024 * 1024,
) -> ParsedDocument:
    """Parse content into blocks; raises a `PoisonInput` subclass on bad input."""
    if len(content) > max_bytes:
        raise ContentTooLarge(
            f"content is {len(content)} bytes, over the limit of {max_bytes} bytes; raise "
            "FRESHINDEX_MAX_FILE_BYTES or split the document"
        )
    kind = detect_content_type(content_type, filename)
    if kind == PDF:
        return _parse_pdf(content)
    if kind == HTML:
        return _parse_html(content)
    text = _decode_text(content)
    if kind == MARKDOWN:
        return _parse_markdown(text)
    return ParsedDocument(title=None, blocks=tuple(Block((), p) for p in _paragraphs(text)))


def _decode_text(content: bytes) -> str:
    if b"\x00" in content:
        raise CorruptContent("content has NUL bytes: it looks binary, not text")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise CorruptContent(
            f"content is not valid UTF-8 (byte {e.start}); save it as UTF-8"
        ) from e


def _paragraphs(text: str) -> Iterator[str]:
    for raw in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        paragraph = raw.strip()
        if paragraph:
            yield paragraph


class _Headings:
    """The headings above the current line: a stack by level, shared by the Markdown and
    HTML parsers."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    def push(self, level: int, title: str) -> None:
        """A heading of `level` closes the sections of its level and below."""
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, title))

    def path(self) -> tuple[str, ...]:
        return tuple(title for _, title in self._stack)

    def title(self, blocks: Sequence[Block]) -> str | None:
        """The document's title: the top heading of its first block under one, else the
        outermost heading still open at the end."""
        first = next((b.heading_path[0] for b in blocks if b.heading_path), None)
        return first or (self._stack[0][1] if self._stack else None)


_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def _parse_markdown(text: str) -> ParsedDocument:
    """Headings (ATX and setext) set the path; fenced code stays one block."""
    headings = _Headings()
    blocks: list[Block] = []
    buffer: list[str] = []
    fence: str | None = None

    def flush() -> None:
        paragraph = "\n".join(buffer).strip()
        buffer.clear()
        if paragraph:
            blocks.append(Block(headings.path(), paragraph))

    def push_heading(level: int, title: str) -> None:
        flush()
        headings.push(level, title.strip())

    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if fence is not None:
            buffer.append(line)
            if line.lstrip().startswith(fence):
                fence = None
                flush()
            continue
        if match := _FENCE.match(line):
            flush()
            fence = match.group(1)
            buffer.append(line)
        elif match := _ATX_HEADING.match(line):
            push_heading(len(match.group(1)), match.group(2))
        elif (match := _SETEXT_UNDERLINE.match(line)) and len(buffer) == 1 and buffer[0].strip():
            title = buffer.pop()
            push_heading(1 if match.group(1).startswith("=") else 2, title)
        elif line.strip():
            buffer.append(line)
        else:
            flush()
    flush()
    return ParsedDocument(title=headings.title(blocks), blocks=tuple(blocks))


_HTML_DROP = ("script", "style", "noscript", "template", "head", "svg", "iframe", "object")
# Site navigation repeats on every page and answers no question (DocBook: navheader/footer).
_HTML_NAVIGATION = "nav, [role=navigation], .navheader, .navfooter"
_HTML_HEADINGS = {f"h{level}": level for level in range(1, 7)}
# A list, table or definition list is one block (its items are lines), so that it is
# chunked as a whole instead of as a scatter of tiny fragments.
_HTML_BLOCKS = frozenset(
    [
        "p",
        "div",
        "ul",
        "ol",
        "dl",
        "table",
        "pre",
        "blockquote",
        "section",
        "article",
        "main",
        "header",
        "footer",
        "aside",
        "figure",
        "figcaption",
        "caption",
        "form",
        "fieldset",
        "details",
        "summary",
        "address",
        "body",
    ]
) | frozenset(_HTML_HEADINGS)
_HTML_LINES = frozenset(["li", "tr", "dt", "dd"])
_HTML_CELLS = frozenset(("td", "th"))


def _parse_html(content: bytes) -> ParsedDocument:
    """Visible text only, one block per innermost block element, headings as the path."""
    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning
    from bs4.element import NavigableString, Tag

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        try:
            soup = BeautifulSoup(content, "lxml")
        except Exception as e:  # lxml raises assorted errors on hostile input
            raise CorruptContent(f"HTML could not be parsed: {e}") from e
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if isinstance(title_tag, Tag) else None
    for tag in [*soup.find_all(_HTML_DROP), *soup.select(_HTML_NAVIGATION)]:
        tag.decompose()

    headings = _Headings()
    blocks: list[Block] = []
    buffer: list[str] = []
    owner: Tag | None = None
    line: Tag | None = None
    cell: Tag | None = None

    def flush() -> None:
        text = re.sub(r" *\n[ \n]*", "\n", "".join(buffer)).strip()
        buffer.clear()
        if not text or owner is None:
            return
        level = _HTML_HEADINGS.get(owner.name)
        if level is None:
            blocks.append(Block(headings.path(), text))
        else:
            headings.push(level, " ".join(text.split()))

    for node in soup.descendants:
        if type(node) is not NavigableString:  # tags, comments, CData, doctype, ...
            continue
        parents = list(node.parents)
        block = next((p for p in parents if p.name in _HTML_BLOCKS), None)
        if block is not owner:
            flush()
            owner, line = block, None
        item = next((p for p in parents if p.name in _HTML_LINES or p is block), None)
        in_cell = next((p for p in parents if p.name in _HTML_CELLS or p is block), None)
        if item is not line:
            buffer.append("\n")
        elif in_cell is not cell:
            buffer.append(" ")
        line, cell = item, in_cell
        in_pre = any(p.name == "pre" for p in parents)
        buffer.append(str(node) if in_pre else re.sub(r"\s+", " ", str(node)))
    flush()
    return ParsedDocument(title=title or headings.title(blocks) or None, blocks=tuple(blocks))


def _parse_pdf(content: bytes) -> ParsedDocument:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(content))
        if reader.is_encrypted and not reader.decrypt(""):
            raise CorruptContent("the PDF is encrypted with a password; send an unlocked copy")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = reader.metadata.title if reader.metadata else None
    except CorruptContent:
        raise
    except Exception as e:  # pypdf raises many kinds of errors on damaged files
        raise CorruptContent(f"the PDF could not be read ({type(e).__name__}: {e})") from e
    blocks = tuple(
        Block((f"page {number}",), paragraph)
        for number, text in enumerate(pages, start=1)
        for paragraph in _paragraphs(text)
    )
    if not blocks and content.strip():
        raise CorruptContent("the PDF has no extractable text (scanned images need OCR first)")
    title = str(meta_title).strip() if meta_title else None
    return ParsedDocument(title=title or None, blocks=blocks)
