"""Hostile input never crashes the decoder or the parsers: every input becomes an event or
a parsed document, or a poison (dead-letter) error with a reason. Hypothesis fuzzes them;
`FRESHINDEX_FUZZ_EXAMPLES=20000` runs the long variant."""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest_worker.errors import PoisonInput
from ingest_worker.parsing import parse
from ingest_worker.sources.kafka import events as kafka_events
from tests.pdf_factory import encrypt_pdf, make_pdf

EXAMPLES = int(os.environ.get("FRESHINDEX_FUZZ_EXAMPLES", "400"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONTENT_TYPES = [None, "text/plain", "text/markdown", "text/html", "application/pdf", "image/png"]
FILENAMES = [None, "a.txt", "b.md", "c.html", "d.pdf", "e.bin", "név with spaces\n.md", ".hidden"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
# Bodies shaped like events, with every field possibly of the wrong type or value.
event_bodies = st.fixed_dictionaries(
    {},
    optional={
        "doc_id": json_values,
        "op": st.sampled_from(["upsert", "delete", "UPSERT", "rename", ""]) | json_values,
        "version": json_values | st.integers(-(2**70), 2**70),
        "text": json_values,
        "content_base64": st.text(max_size=40) | json_values,
        "content_type": json_values,
        "metadata": json_values,
        "event_time": st.text(max_size=30) | json_values,
        "tenant": json_values,
        "title": json_values,
    },
)


def parse_or_poison(content: bytes, content_type: str | None, filename: str | None) -> None:
    try:
        doc = parse(content, content_type=content_type, filename=filename, max_bytes=200_000)
    except PoisonInput as e:
        assert str(e), "a dead letter needs a reason"
        return
    assert all(isinstance(b.text, str) and b.text for b in doc.blocks)


@FUZZ
@given(
    key=st.none() | st.binary(max_size=64),
    value=st.none() | st.binary(max_size=512) | event_bodies.map(lambda b: json.dumps(b).encode()),
    timestamp_ms=st.none() | st.integers(-(2**63), 2**63 - 1),
    offset=st.integers(0, 2**63 - 1),
)
def test_the_event_decoder_never_raises(
    key: bytes | None, value: bytes | None, timestamp_ms: int | None, offset: int
) -> None:
    event = kafka_events.decode(
        topic="docs", partition=0, offset=offset, key=key, value=value, timestamp_ms=timestamp_ms
    )
    assert event.position is not None and event.position.position == offset
    if event.poison is None:
        assert event.doc_id and isinstance(event.doc_id, str)
        assert event.version is None or isinstance(event.version, int)


@FUZZ
@given(
    content=st.binary(max_size=4096),
    content_type=st.sampled_from(CONTENT_TYPES),
    filename=st.sampled_from(FILENAMES),
)
def test_parsers_turn_any_bytes_into_blocks_or_a_dead_letter(
    content: bytes, content_type: str | None, filename: str | None
) -> None:
    parse_or_poison(content, content_type, filename)


@FUZZ
@given(
    markup=st.lists(
        st.sampled_from(
            [
                "<div>",
                "</div>",
                "<p>",
                "<table><tr><td>",
                "</td></tr>",
                "<ul><li>",
                "<script>",
                "</script>",
                "<!--",
                "-->",
                "<![CDATA[",
                "&amp;",
                "&#xD800;",
                "&#99999999;",
                "<nav>",
                "</nav>",
                "text ",
                "\x00",
                "\ud7ff",
                "<h1>",
                "</h1>",
                "<pre>",
                "<",
                ">",
                "\"'",
            ]
        ),
        max_size=200,
    )
)
def test_html_fragments_in_any_order(markup: list[str]) -> None:
    parse_or_poison("".join(markup).encode("utf-8", "surrogatepass"), "text/html", None)


@FUZZ
@given(cut=st.integers(0, 10_000), flips=st.lists(st.integers(0, 10_000), max_size=8))
def test_corrupted_pdfs_are_dead_letters_not_crashes(cut: int, flips: list[int]) -> None:
    pdf = bytearray(make_pdf([["A page about invoices.", "Another line."]], title="T"))
    for at in flips:
        pdf[at % len(pdf)] ^= 0xFF
    parse_or_poison(bytes(pdf[: max(1, cut % len(pdf))]), "application/pdf", "x.pdf")


@pytest.mark.parametrize(
    ("content", "content_type", "filename"),
    [
        (b"", None, "empty.txt"),
        (b"\xff\xfe\xfa invalid \xc3\x28 utf-8", "text/plain", None),
        (bytes(range(256)) * 40, None, "binary-with-text-extension.txt"),
        (b"<div>" * 100_000 + b"deep" + b"</div>" * 100_000, "text/html", None),
        (b"<p>" + b"x" * 190_000 + b"</p>", "text/html", None),
        (b"x" * 300_000, "text/plain", None),  # over max_bytes
        (b"%PDF-1.7\n" + bytes(random.Random(1).randbytes(5000)), "application/pdf", None),
        (encrypt_pdf(make_pdf([["secret"]]), "pw"), None, "locked.pdf"),
        (b"# " + b"#" * 50_000 + b"\n\n" + b"> " * 50_000, "text/markdown", None),
        (b"\x00" * 1000, "text/markdown", "nul.md"),
    ],
    ids=[
        "zero-bytes",
        "invalid-utf8",
        "binary-as-txt",
        "deep-html",
        "huge-html",
        "oversized",
        "corrupt-pdf",
        "encrypted-pdf",
        "pathological-markdown",
        "nul-bytes",
    ],
)
def test_known_hostile_files(
    content: bytes, content_type: str | None, filename: str | None
) -> None:
    limit = sys.getrecursionlimit()
    parse_or_poison(content, content_type, filename)
    assert sys.getrecursionlimit() == limit


def test_coverage_guided_fuzzing_finds_no_crash(tmp_path: Path) -> None:
    """atheris (libFuzzer) mutates inputs toward new code paths of the decoder and parsers."""
    runs = int(os.environ.get("FRESHINDEX_ATHERIS_RUNS", "20000"))
    # libFuzzer reads its peak RSS from getrusage, which Linux carries over fork and exec:
    # the child starts at this process's peak (the model loaded), so allow 2 GB above it.
    rss_limit_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024 + 2048
    result = subprocess.run(
        [sys.executable, "-m", "tests.fuzz_atheris", f"-runs={runs}", "-max_len=4096",
         f"-rss_limit_mb={rss_limit_mb}", f"-artifact_prefix={tmp_path}/"],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Done {runs} runs" in result.stderr
