"""`reindex` moves the index to another model while documents keep changing: searches work
throughout, the switch is atomic, and workers and the API follow the new model."""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading

import httpx
import numpy as np
import pytest
import torch

from ingest_worker import database, reindex, runtime
from ingest_worker.chunking import embed_text
from ingest_worker.embedding import Embedder, SentenceTransformerEmbedder, resolve_model_path
from ingest_worker.pipeline import Pipeline
from ingest_worker.settings import Settings
from ingest_worker.store import Store
from tests.fix_services import serve_api
from tests.integration.helpers import upsert


@pytest.fixture(scope="session")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """A genuinely different model, made offline: MiniLM's encoder with CLS pooling and a
    seeded 384→256 projection (different vectors and dimensions)."""
    from sentence_transformers import SentenceTransformer, models

    base = SentenceTransformer(str(resolve_model_path("all-MiniLM-L6-v2")), device="cpu")
    torch.manual_seed(0)
    variant = SentenceTransformer(
        modules=[
            base[0],
            models.Pooling(384, pooling_mode="cls"),
            models.Dense(384, 256, activation_function=torch.nn.Identity()),
            models.Normalize(),
        ],
        device="cpu",
    )
    path = tmp_path_factory.mktemp("models") / "minilm-cls-256"
    variant.save(str(path))
    return SentenceTransformerEmbedder(str(path))


def test_reindex_switches_atomically_while_documents_keep_changing(
    db_url: str,
    pipeline: Pipeline,
    embedder: Embedder,
    other_model: Embedder,
) -> None:
    pipeline.process(
        [upsert(f"doc-{i}", f"Document {i} is about topic {i % 5}.") for i in range(30)]
    )
    with contextlib.ExitStack() as cleanup:
        live = Pipeline(
            Store(cleanup.enter_context(database.connect(db_url)), embedder.model_name),
            embedder,
            load_model=lambda name: other_model,
        )
        store = Store(cleanup.enter_context(database.connect(db_url)), other_model.model_name)
        api = cleanup.enter_context(
            serve_api(db_url, embedder, load_model=lambda name: other_model)
        )
        _reindex_while_writing_and_searching(live, store, api, other_model, cleanup)


# The writer may add 4 documents per batch of 16 texts the reindex embeds, and one every
# 2 s: the catch-up always gains, however the two models' speeds compare on a busy machine
# (a writer free to outpace the reindex's model keeps it catching up for ever).
WRITES_PER_REINDEX_BATCH, WRITE_EVERY_S = 4, 2.0


def _reindex_while_writing_and_searching(
    live: Pipeline,
    store: Store,
    api: httpx.Client,
    other_model: Embedder,
    cleanup: contextlib.ExitStack,
) -> None:
    stop, searcher_stop, progress = threading.Event(), threading.Event(), threading.Semaphore(0)
    written: list[int] = []
    errors: list[BaseException] = []  # of the writer and searcher threads, asserted below
    searches: list[tuple[int, set[str]]] = []  # status, doc_ids of the hits

    def keep_writing() -> None:
        i = 0
        try:
            # until stopped, and until a write of its own has met the switch
            while not stop.is_set() or i < 5 or live.embedder is not other_model:
                live.process([upsert(f"live-{i}", f"Live document {i} arrived during reindex.")])
                written.append(i)
                i += 1
                progress.acquire(timeout=WRITE_EVERY_S)
        except BaseException as e:
            errors.append(e)

    def keep_searching() -> None:
        try:
            while not searcher_stop.is_set():
                response = api.post("/v1/search", json={"query": "topic 3"})
                hits = response.json().get("hits", []) if response.status_code == 200 else []
                searches.append((response.status_code, {h["doc_id"] for h in hits}))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=f, daemon=True) for f in (keep_writing, keep_searching)]

    @cleanup.callback
    def stop_threads() -> None:  # also when the reindex fails
        stop.set()
        searcher_stop.set()
        for thread in threads:
            thread.join(timeout=120)

    for thread in threads:
        thread.start()
    embedded = reindex.reindex(
        store,
        other_model,
        batch_size=16,
        on_progress=lambda done, left: progress.release(WRITES_PER_REINDEX_BATCH),
    )
    stop_threads()
    assert not any(thread.is_alive() for thread in threads)
    assert not errors, errors
    assert embedded >= 30 and len(written) >= 5
    assert searches and {status for status, _ in searches} == {200}  # none failed
    known = {f"doc-{i}" for i in range(30)} | {f"live-{i}" for i in written}
    assert all(hits and hits <= known for _, hits in searches)  # real hits, every time
    assert reindex.active_model(store.conn) == other_model.model_name
    assert live.embedder is other_model  # the worker followed the switch

    rows = store.conn.execute("SELECT heading, text, embedding FROM chunks").fetchall()
    expected = other_model.embed([embed_text(h, t) for h, t, _ in rows])
    for (_, _, stored), want in zip(rows, expected, strict=True):
        vector = np.asarray(stored.to_numpy() if hasattr(stored, "to_numpy") else stored)
        assert vector.shape == (256,)
        assert float(np.dot(vector, want)) > 0.999
    count = store.conn.execute("SELECT count(*) FROM documents").fetchone()
    assert count is not None and count[0] == 30 + len(written)
    hits = api.post("/v1/search", json={"query": "Live document arrived"}).json()["hits"]
    assert hits and hits[0]["doc_id"].startswith("live-")


def test_reindex_switches_under_a_steady_trickle_of_writes(
    db_url: str, pipeline: Pipeline, other_model: Embedder
) -> None:
    """One document written after every batch the reindex embeds: a text is missing at
    every check, and the reindex still switches (it once caught up until nothing was
    missing, for ever under a trickle of writes)."""
    pipeline.process(
        [upsert(f"doc-{i}", f"Document {i} is about topic {i % 5}.") for i in range(20)]
    )
    rounds = itertools.count()

    def write_one_more(embedded: int, left: int) -> None:
        i = next(rounds)
        if i > 50:
            raise RuntimeError(f"still catching up after {i} batches ({embedded} embedded)")
        pipeline.process([upsert(f"trickle-{i}", f"Trickle document {i} arrived late.")])

    with database.connect(db_url) as conn:
        store = Store(conn, other_model.model_name)
        embedded = reindex.reindex(store, other_model, batch_size=16, on_progress=write_one_more)
        assert reindex.active_model(conn) == other_model.model_name
        assert reindex.missing(conn, other_model.model_name, 1) == []
        # each text embedded once, the last write's (after the last batch) by the switch
        assert embedded == 20 + next(rounds)


def test_a_process_started_with_another_model_uses_the_index_model(
    store: Store, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The index decides its model once it has one: FRESHINDEX_MODEL naming another (here
    one that does not even exist) only earns a warning."""
    settings = Settings(model="/nowhere/another-model", database_url=db_url)
    with caplog.at_level(logging.WARNING, logger="ingest_worker.runtime"):
        embedder = runtime.load_embedder(settings, db_url)
    assert embedder.model_name == store.model == "all-MiniLM-L6-v2"
    assert "the index uses model all-MiniLM-L6-v2, not /nowhere/another-model" in caplog.text


@pytest.mark.parametrize(("batch_size", "switched"), [(16, 3), (2, None)])
def test_the_switch_embeds_what_writers_added_since_the_catch_up_when_it_is_a_batch(
    pipeline: Pipeline, db_url: str, other_model: Embedder, batch_size: int, switched: int | None
) -> None:
    """Under a steady stream of writes a catch-up never ends with nothing missing: the
    switch embeds up to a batch itself, writers waiting; more than that, it lets go."""
    pipeline.process(
        [upsert(f"doc-{i}", f"Document {i} came after the catch-up.") for i in range(3)]
    )
    before = reindex.active_model(pipeline.store.conn)
    with database.connect(db_url) as conn:
        assert reindex.switch(conn, other_model, batch_size) == switched
        now = reindex.active_model(conn)
        assert now == (other_model.model_name if switched else before)
        assert reindex.count_missing(conn, other_model.model_name) == (0 if switched else 3)
