from __future__ import annotations

import pytest

from ingest_worker.errors import ContentTooLarge, CorruptContent, UnsupportedContent
from ingest_worker.parsing import Block, detect_content_type, parse
from tests.pdf_factory import encrypt_pdf, make_pdf


def test_markdown_blocks_carry_their_heading_path() -> None:
    doc = parse(
        b"# Guide\n\nIntro text.\n\n## Install\n\nRun make.\nThen wait.\n\n"
        b"```sh\nmake run\n\nmake test\n```\n\n# Appendix\n\nLast words.\n",
        filename="guide.md",
    )
    assert doc.title == "Guide"
    assert doc.blocks == (
        Block(("Guide",), "Intro text."),
        Block(("Guide", "Install"), "Run make.\nThen wait."),
        Block(("Guide", "Install"), "```sh\nmake run\n\nmake test\n```"),
        Block(("Appendix",), "Last words."),
    )


def test_markdown_setext_headings() -> None:
    doc = parse(b"Title\n=====\n\nBody here.\n\nPart\n----\n\nMore.", content_type="text/markdown")
    assert doc.blocks == (Block(("Title",), "Body here."), Block(("Title", "Part"), "More."))


def test_plain_text_splits_paragraphs() -> None:
    doc = parse(b"one\r\ntwo\r\n\r\n\r\nthree", filename="a.txt")
    assert [b.text for b in doc.blocks] == ["one\ntwo", "three"]
    assert doc.title is None


def test_html_keeps_visible_text_only() -> None:
    html = b"""<html><head><title>The Title</title><style>p {color: red}</style>
    <script>var secret = 1;</script></head><body>
    <h1>Main</h1><p>First <b>bold</b> paragraph.</p><!-- hidden comment -->
    <h2>Sub</h2><ul><li>item one</li><li>item two</li></ul>
    <noscript>enable js</noscript><div>loose text<p>inner</p>tail</div>
    <nav>Home | Next page</nav><table><tr><td>cell a</td><td>cell b</td></tr>
    <tr><td>cell c</td></tr></table></body></html>"""
    doc = parse(html, filename="page.html")
    assert doc.title == "The Title"
    texts = [b.text for b in doc.blocks]
    assert texts == [
        "First bold paragraph.",
        "item one\nitem two",
        "loose text",
        "inner",
        "tail",
        "cell a cell b\ncell c",
    ]
    assert doc.blocks[1].heading_path == ("Main", "Sub")
    joined = " ".join(texts)
    assert "secret" not in joined and "color" not in joined and "hidden" not in joined
    assert "enable js" not in joined and "Next page" not in joined


def test_html_title_falls_back_to_first_heading() -> None:
    doc = parse(b"<h1>Heading Title</h1><p>x y z</p>", content_type="text/html; charset=utf-8")
    assert doc.title == "Heading Title"


def test_pdf_text_and_title() -> None:
    pdf = make_pdf([["Hello PDF world.", "Second line."], ["Page two text."]], title="Report")
    doc = parse(pdf, filename="r.pdf")
    assert doc.title == "Report"
    assert "Hello PDF world." in doc.blocks[0].text
    assert doc.blocks[0].heading_path == ("page 1",)
    assert doc.blocks[-1].text == "Page two text."


@pytest.mark.parametrize(
    ("content", "filename", "error", "reason"),
    [
        (b"%PDF-1.4\ngarbage", "x.pdf", CorruptContent, "PDF could not be read"),
        (b"\xff\xfe\xfa broken", "x.txt", CorruptContent, "not valid UTF-8"),
        (b"\x7fELF\x00\x00binary", "x.md", CorruptContent, "looks binary"),
        (b"PK\x03\x04", "x.docx", UnsupportedContent, "supported extensions"),
        (b"data", "noextension", UnsupportedContent, "supported extensions"),
    ],
)
def test_bad_input_is_poison_with_a_reason(
    content: bytes, filename: str, error: type[Exception], reason: str
) -> None:
    with pytest.raises(error, match=reason):
        parse(content, filename=filename)


def test_encrypted_pdf_is_refused() -> None:
    pdf = encrypt_pdf(make_pdf([["secret text"]]), "pw")
    with pytest.raises(CorruptContent, match="encrypted"):
        parse(pdf, filename="locked.pdf")


def test_size_limit() -> None:
    with pytest.raises(ContentTooLarge, match="over the limit of 10 bytes"):
        parse(b"x" * 11, filename="a.txt", max_bytes=10)


def test_content_type_wins_over_extension() -> None:
    assert detect_content_type("text/html", "a.md") == "text/html"
    assert detect_content_type(None, "A.MARKDOWN") == "text/markdown"
    with pytest.raises(UnsupportedContent, match="image/png"):
        detect_content_type("image/png", "a.md")


@pytest.mark.parametrize(
    ("content", "text"),
    [
        ("<p>café</p>".encode(), "café"),  # no declaration, valid UTF-8: UTF-8
        ('<meta charset="iso-8859-1"><p>café</p>'.encode("latin-1"), "café"),
        ('<?xml version="1.0" encoding="UTF-8"?><html><p>café</p></html>'.encode(), "café"),
        ('<meta charset="x-unknown"><p>café</p>'.encode(), "café"),  # unknown: UTF-8
        ("\ufeff<p>café</p>".encode("utf-16-le"), "café"),  # a byte-order mark wins
    ],
)
def test_html_is_decoded_as_declared_else_as_utf8(content: bytes, text: str) -> None:
    assert [b.text for b in parse(content, filename="page.html").blocks] == [text]


def test_html_text_around_dropped_elements_stays_and_ruby_annotations_go() -> None:
    html = b"<p>before<script>x()</script>after <ruby>\xe6\xbc\xa2<rt>kan</rt></ruby> end</p>"
    assert [b.text for b in parse(html, filename="a.html").blocks] == ["beforeafter \u6f22 end"]


def test_html_nested_deeper_than_any_recursion_limit() -> None:
    html = b"<p>top</p>" + b"<div>" * 50_000 + b"deep" + b"</div>" * 50_000 + b"<p>end</p>"
    assert [b.text for b in parse(html, filename="a.html").blocks] == ["top", "deep", "end"]


def test_html_with_no_elements_has_no_blocks() -> None:
    for content in (b"", b"  \n ", b"<!-- only a comment -->"):
        assert parse(content, filename="a.html") == parse(b"", filename="a.txt")
