"""Content bytes → title and text blocks, each block with the heading path above it.

Pure: no I/O besides reading the given bytes. Every failure is a `PoisonInput` whose message
says what was wrong, so that a worker can dead-letter the event and go on.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

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


# Hidden parts; and ruby annotations (rt, rp: pronunciation guides set above the base text),
# which would split its words.
_HTML_DROP = frozenset(
    ["script", "style", "noscript", "template", "head", "svg", "iframe", "object", "rt", "rp"]
)
# Site navigation repeats on every page and answers no question (DocBook: navheader/footer).
_HTML_NAVIGATION_CLASSES = frozenset(["navheader", "navfooter"])
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


@dataclass(frozen=True, slots=True)
class _Within:
    """Where a text node sits: its innermost block element (numbered in document order, and
    its tag), the innermost line (list item, table row, or the block) and cell (or the
    block), and whether it is preformatted. Derived from the parent's on the way down."""

    block: int | None = None
    block_tag: str = ""
    line: int | None = None
    cell: int | None = None
    in_pre: bool = False

    def child(self, number: int, tag: str) -> _Within:
        if tag in _HTML_BLOCKS:
            return _Within(number, tag, number, number, self.in_pre or tag == "pre")
        line = number if tag in _HTML_LINES else self.line
        cell = number if tag in _HTML_CELLS else self.cell
        return _Within(self.block, self.block_tag, line, cell, self.in_pre)


def _parse_html(content: bytes) -> ParsedDocument:
    """Visible text only, one block per innermost block element, headings as the path."""
    from lxml import etree

    text = _HtmlText()
    for encoding in _html_encodings(content):
        try:
            # A parser target sees the page as a stream of events: no tree, and no depth
            # limit (libxml2's trees stop at 256 levels, 2,048 with huge_tree).
            parser = etree.HTMLParser(encoding=encoding, target=text)
        except LookupError:  # an encoding lxml does not know: try the next
            continue
        try:
            return etree.fromstring(content, parser)
        except etree.LxmlError as e:  # lxml raises assorted errors on hostile input
            raise CorruptContent(f"HTML could not be parsed: {e}") from e
    raise AssertionError("unreachable: lxml knows UTF-8")


def _html_encodings(content: bytes) -> list[str | None]:
    """How to decode a page, in order: a byte-order mark, else its declared encoding
    (<meta charset>, an XML declaration), else UTF-8 if it decodes, else Beautiful Soup's
    guesses from the bytes; UTF-8 last."""
    from bs4.dammit import EncodingDetector

    detector = EncodingDetector(content, is_html=True)
    declared = detector.sniffed_encoding or detector.declared_encoding
    if declared:
        return [declared, "utf-8"]
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return [*detector.encodings, "utf-8"]
    return ["utf-8"]


if TYPE_CHECKING:  # the interface lxml calls, as the stubs spell it (types-lxml)
    from lxml.etree import ParserTarget

    _Target = ParserTarget[ParsedDocument]
else:
    _Target = object


class _HtmlText(_Target):
    """An lxml parser target that turns a page's events into blocks: the text of each
    innermost block element (a list, table or definition list is one block, its items
    lines), headings as the path, hidden parts and site navigation left out."""

    def __init__(self) -> None:
        self.headings = _Headings()
        self.blocks: list[Block] = []
        self.title: list[str] | None = None  # the first <title>'s strings, once it opens
        self.in_title = False
        self.within = [_Within()]  # where the next text sits, an entry per open element
        self.elements = 0  # numbers the elements in document order
        self.dropped = 0  # open elements inside a dropped one (its text is not shown)
        self.text_node: list[str] = []  # a text node arrives in pieces (split at entities)
        self.buffer: list[str] = []  # the current block's text so far
        self.current = _Within()  # where the text in `buffer` sits

    def start(self, tag: str, attrib: Mapping[str, str], /) -> None:
        self._end_text_node()
        self.elements += 1
        if self.title is None and tag == "title":
            self.title, self.in_title = [], True
        if self.dropped or tag in _HTML_DROP or _is_navigation(tag, attrib):
            self.dropped += 1
        self.within.append(self.within[-1].child(self.elements, tag))

    def end(self, tag: str, /) -> None:
        self._end_text_node()
        self.in_title = False
        self.dropped = max(self.dropped - 1, 0)
        self.within.pop()

    def data(self, text: str, /) -> None:
        self.text_node.append(text)

    def comment(self, text: str, /) -> None:  # (processing instructions arrive as comments)
        self._end_text_node()

    def close(self) -> ParsedDocument:
        self._end_text_node()
        self._flush()
        title = " ".join(self.title) if self.title is not None else None
        return ParsedDocument(
            title=title or self.headings.title(self.blocks) or None, blocks=tuple(self.blocks)
        )

    def _end_text_node(self) -> None:
        text = "".join(self.text_node)
        self.text_node.clear()
        if not text:
            return
        if self.in_title and text.strip():
            assert self.title is not None
            self.title.append(text.strip())
        if self.dropped:
            return
        within = self.within[-1]
        if within.block != self.current.block:
            self._flush()
            self.current = _Within(within.block, within.block_tag)
        if within.line != self.current.line:
            self.buffer.append("\n")
        elif within.cell != self.current.cell:
            self.buffer.append(" ")
        self.current = within
        self.buffer.append(text if within.in_pre else re.sub(r"\s+", " ", text))

    def _flush(self) -> None:
        text = re.sub(r" *\n[ \n]*", "\n", "".join(self.buffer)).strip()
        self.buffer.clear()
        if not text or self.current.block is None:
            return
        level = _HTML_HEADINGS.get(self.current.block_tag)
        if level is None:
            self.blocks.append(Block(self.headings.path(), text))
        else:
            self.headings.push(level, " ".join(text.split()))


def _is_navigation(tag: str, attrib: Mapping[str, str]) -> bool:
    return (
        tag == "nav"
        or attrib.get("role") == "navigation"
        or not _HTML_NAVIGATION_CLASSES.isdisjoint(attrib.get("class", "").split())
    )


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
