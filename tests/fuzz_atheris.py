"""Coverage-guided fuzzing of the event decoder and the parsers with atheris (libFuzzer).
Run by tests/unit/test_hostile_input.py; by hand: `python -m tests.fuzz_atheris -runs=200000`.
A crash is any exception other than a poison (dead-letter) error."""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from ingest_worker.errors import PoisonInput
    from ingest_worker.parsing import parse
    from ingest_worker.sources.kafka import events as kafka_events

CONTENT_TYPES = ["text/plain", "text/markdown", "text/html", "application/pdf", None]


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():
        key = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 32)) or None
        timestamp = fdp.ConsumeIntInRange(-(2**62), 2**62) if fdp.ConsumeBool() else None
        event = kafka_events.decode(
            topic="docs", partition=0, offset=0, key=key,
            value=fdp.ConsumeBytes(fdp.remaining_bytes()), timestamp_ms=timestamp,
        )  # fmt: skip
        assert event.poison is not None or event.doc_id
        return
    content_type = fdp.PickValueInList(CONTENT_TYPES)
    with contextlib.suppress(PoisonInput):
        parse(fdp.ConsumeBytes(fdp.remaining_bytes()), content_type=content_type, max_bytes=100_000)


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
