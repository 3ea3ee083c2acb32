"""Model-based randomized check of the pipeline + store against a reference model.

Each sequence: ≥ 20 documents get upserts, edits, deletes (tombstones), duplicates and
reordered deliveries, in random batches, with a crash injected at a random step of the commit
protocol (in the embedder, right after embedding, inside the transaction, after the commit
but before the source is acknowledged), each followed by a restart (new connection, new
pipeline) and redelivery of the batch. Afterwards the index must equal the reference model
(versions, tombstones, chunk texts in order, each chunk's vector = the embedding of its
text) and no text may have been embedded twice.

Real Postgres; a deterministic fake embedder for speed. Each sequence is its own tenant, so
sequences share one database. `FRESHINDEX_CHECK_SEQUENCES=2000 make test` runs the long
variant; a divergence names its seed, and `FRESHINDEX_CHECK_SEED=N` replays one.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
import pytest

from ingest_worker import change_log, database, embedding_cache, reindex
from ingest_worker.chunking import split
from ingest_worker.embedding import Vector
from ingest_worker.events import DocumentEvent, Op
from ingest_worker.parsing import parse
from ingest_worker.pipeline import Pipeline
from ingest_worker.store import Store

SEQUENCES = int(os.environ.get("FRESHINDEX_CHECK_SEQUENCES", "80"))
ONLY_SEED = os.environ.get("FRESHINDEX_CHECK_SEED")
CRASH_POINTS = ("embedding", "after-embedding", "in-transaction", "before-ack")
WORDS = (
    "river stone orchid lantern quartz maple falcon harbor tundra ember willow canyon "
    "saffron glacier thistle copper beacon meadow juniper cloud"
).split()


class Crash(BaseException):
    """A simulated process death: a BaseException, so no `except Exception` swallows it."""


@dataclass
class CrashPlan:
    point: str | None = None
    crashes: Counter[str] = field(default_factory=Counter)

    def reach(self, point: str) -> None:
        if self.point == point:
            self.point = None
            self.crashes[point] += 1
            raise Crash(point)


class FakeEmbedder:
    """Deterministic unit vectors from the text's hash; counts every text it embeds."""

    model_name = "fake-sha256-16"
    dimensions = 16
    max_tokens = 40

    def __init__(self, plan: CrashPlan) -> None:
        self.plan = plan
        self.embedded: Counter[str] = Counter()

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        self.plan.reach("embedding")
        self.embedded.update(texts)
        return [vector_of(t) for t in texts]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) for t in texts]


def vector_of(text: str) -> Vector:
    raw = np.frombuffer(hashlib.sha256(text.encode()).digest()[:16], dtype=np.uint8)
    v = raw.astype(np.float32) - 127.5
    unit: Vector = (v / np.linalg.norm(v)).astype(np.float32)
    return unit


# -- the reference model -------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    version: int
    deleted: bool
    text: str | None


def reference(events: Sequence[DocumentEvent]) -> dict[str, Expected]:
    """What the index must hold: per document, its highest-versioned event."""
    state: dict[str, Expected] = {}
    for e in events:
        assert e.version is not None
        if e.doc_id not in state or e.version > state[e.doc_id].version:
            text = None if e.op is Op.DELETE else (e.content or b"").decode()
            state[e.doc_id] = Expected(e.version, e.op is Op.DELETE, text)
    return state


def expected_chunks(text: str, embedder: FakeEmbedder) -> list[tuple[str, str]]:
    """(chunk text, text the model saw), in order."""
    blocks = parse(text.encode(), content_type="text/plain").blocks
    chunks = split(blocks, embedder.count_tokens, max_tokens=embedder.max_tokens)
    return [(c.text, c.embed_text) for c in chunks]


# -- random sequences ----------------------------------------------------------------------


def paragraph(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 60)))


def history(rng: random.Random, tenant: str, doc_id: str) -> list[DocumentEvent]:
    """One document's events in version order: a first text, edits of one paragraph,
    re-saves of the same text, deletes, and re-creations."""
    events: list[DocumentEvent] = []
    paragraphs: list[str] = []
    version = 0
    for _ in range(rng.randint(1, 6)):
        version += rng.randint(1, 3)
        roll = rng.random()
        if paragraphs and roll < 0.15:
            events.append(
                DocumentEvent(
                    doc_id=doc_id, op=Op.DELETE, source="model", tenant=tenant, version=version
                )
            )
            paragraphs = []
            continue
        if not paragraphs or roll < 0.3:
            paragraphs = [paragraph(rng) for _ in range(rng.randint(1, 5))]
        elif roll < 0.8:
            paragraphs[rng.randrange(len(paragraphs))] = paragraph(rng)
        elif roll < 0.9:
            paragraphs.insert(rng.randrange(len(paragraphs) + 1), paragraph(rng))
        # else: the same text again under a new version
        events.append(
            DocumentEvent(
                doc_id=doc_id,
                op=Op.UPSERT,
                source="model",
                tenant=tenant,
                version=version,
                content="\n\n".join(paragraphs).encode(),
                content_type="text/plain",
            )
        )
    return events


def deliveries(rng: random.Random, events: list[DocumentEvent]) -> Iterator[list[DocumentEvent]]:
    """All events (some twice), locally reordered, in batches of 1..6."""
    stream = list(events) + [e for e in events if rng.random() < 0.15]  # duplicates
    rng.shuffle(stream)
    stream.sort(key=lambda _: rng.random() < 0.5)  # a second, coarser reordering
    i = 0
    while i < len(stream):
        size = rng.randint(1, 6)
        yield stream[i : i + size]
        i += size


# -- running one sequence ------------------------------------------------------------------


@dataclass
class Harness:
    url: str
    embedder: FakeEmbedder
    plan: CrashPlan
    conn: psycopg.Connection[tuple[object, ...]] | None = None
    pipeline: Pipeline | None = None
    restarts: int = 0

    def restart(self) -> Pipeline:
        if self.conn is not None:
            self.conn.close()
            self.restarts += 1
        self.conn = database.connect(self.url)
        store = Store(self.conn, self.embedder.model_name)
        self.pipeline = Pipeline(store, self.embedder)
        return self.pipeline

    def deliver(self, batch: list[DocumentEvent]) -> None:
        """Until the batch is acknowledged: process it, and after a crash restart and
        redeliver it whole (as Kafka would: its position was not recorded)."""
        pipeline = self.pipeline or self.restart()
        while True:
            try:
                pipeline.process(batch)
                self.plan.reach("before-ack")
                return
            except Crash:
                pipeline = self.restart()


@pytest.fixture
def crash_in_transaction(monkeypatch: pytest.MonkeyPatch) -> CrashPlan:
    """A plan whose "in-transaction" point fires inside the document transaction, after
    its writes and before its commit, and whose "after-embedding" point fires once fresh
    vectors are in the embedding cache."""
    plan = CrashPlan()
    original = change_log.record_change
    original_keep = embedding_cache.keep

    def keep(conn: psycopg.Connection[tuple[object, ...]], vectors: object, model: str) -> None:
        original_keep(conn, vectors, model)  # type: ignore[arg-type]
        plan.reach("after-embedding")

    monkeypatch.setattr(embedding_cache, "keep", keep)

    def record_change(
        cur: psycopg.Cursor[tuple[object, ...]], event: DocumentEvent, version: int
    ) -> None:
        original(cur, event, version)
        plan.reach("in-transaction")

    monkeypatch.setattr(change_log, "record_change", record_change)
    return plan


def run_sequence(seed: int, harness: Harness) -> tuple[dict[str, Expected], str]:
    rng = random.Random(seed)
    tenant = f"seq-{seed}"
    events = [e for d in range(rng.randint(20, 26)) for e in history(rng, tenant, f"doc-{d:02d}")]
    for batch in deliveries(rng, events):
        if rng.random() < 0.35:
            harness.plan.point = rng.choice(CRASH_POINTS)
        harness.deliver(batch)
        harness.plan.point = None
    return reference(events), tenant


def divergences(
    conn: psycopg.Connection[Any],
    tenant: str,
    expected: dict[str, Expected],
    embedder: FakeEmbedder,
) -> list[str]:
    found: list[str] = []
    docs = {
        d: (v, deleted, n)
        for d, v, deleted, n in conn.execute(
            "SELECT doc_id, version, deleted, chunk_count FROM documents WHERE tenant = %s",
            (tenant,),
        )
    }
    chunks: dict[str, list[tuple[int, str, str, np.ndarray]]] = {}
    for d, ordinal, heading, text, embedding in conn.execute(
        """SELECT doc_id, ordinal, heading, text, embedding FROM chunks WHERE tenant = %s
           ORDER BY doc_id, ordinal""",
        (tenant,),
    ):
        chunks.setdefault(d, []).append((ordinal, heading, text, embedding.to_numpy()))
    if docs.keys() != expected.keys():
        found.append(f"documents {sorted(docs.keys() ^ expected.keys())} differ in presence")
    for doc_id, want in expected.items():
        if doc_id not in docs:
            continue
        version, deleted, count = docs[doc_id]
        if (version, deleted) != (want.version, want.deleted):
            found.append(f"{doc_id}: indexed v{version} deleted={deleted}, expected {want}")
            continue
        stored = chunks.get(doc_id, [])
        wanted = expected_chunks(want.text, embedder) if want.text is not None else []
        if [o for o, *_ in stored] != list(range(len(stored))) or count != len(stored):
            found.append(f"{doc_id}: ordinals {[o for o, *_ in stored]}, chunk_count {count}")
        if [t for _, _, t, _ in stored] != [t for t, _ in wanted]:
            found.append(f"{doc_id}: chunk texts differ from v{want.version}")
            continue
        for (ordinal, _, _, vector), (_, seen) in zip(stored, wanted, strict=True):
            if not np.allclose(vector, vector_of(seen), atol=1e-6):
                found.append(f"{doc_id}: chunk {ordinal} holds a vector of another text")
    return found


def test_the_index_equals_the_reference_model_after_crashes_and_redeliveries(
    db_url: str, crash_in_transaction: CrashPlan
) -> None:
    plan = crash_in_transaction
    embedder = FakeEmbedder(plan)
    harness = Harness(db_url, embedder, plan)
    store = harness.restart().store
    reindex.activate(store.conn, store.model, embedder.dimensions)
    seeds = [int(ONLY_SEED)] if ONLY_SEED else range(SEQUENCES)
    failures: dict[int, list[str]] = {}
    try:
        with database.connect(db_url) as check:
            for seed in seeds:
                expected, tenant = run_sequence(seed, harness)
                if found := divergences(check, tenant, expected, embedder):
                    failures[seed] = found
    finally:
        if harness.conn is not None:
            harness.conn.close()
    twice = [t for t, n in embedder.embedded.items() if n > 1]
    print(
        f"\nmodel check: {len(seeds)} sequences, {sum(plan.crashes.values())} crashes "
        f"({dict(plan.crashes)}), {harness.restarts} restarts, "
        f"{len(embedder.embedded)} texts embedded"
    )
    assert not failures, f"{len(failures)} sequences diverged, e.g. {list(failures.items())[:2]}"
    assert not twice, f"{len(twice)} texts embedded more than once, e.g. {twice[:2]}"
    assert all(plan.crashes[p] > 0 for p in CRASH_POINTS)  # every step was really exercised
