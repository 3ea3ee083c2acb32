"""When the model fails on a batch (out of memory, a text it chokes on), the batch is split
down to single texts; only a document whose text fails alone becomes a dead letter."""

from __future__ import annotations

from collections.abc import Sequence

from ingest_worker.embedding import Embedder, Vector
from ingest_worker.pipeline import Pipeline
from ingest_worker.store import Store
from tests.integration.helpers import upsert


class FragileModel:
    """The real model, behind a device that runs out of memory above 3 texts per call and
    always fails on one poisonous text."""

    def __init__(self, model: Embedder) -> None:
        self.model = model
        self.model_name, self.dimensions, self.max_tokens = (
            model.model_name, model.dimensions, model.max_tokens,
        )  # fmt: skip
        self.calls: list[int] = []

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        self.calls.append(len(texts))
        if len(texts) > 3:
            raise MemoryError("CUDA out of memory (simulated)")
        if any("nan-bomb" in t for t in texts):
            raise RuntimeError("the model produced NaN (simulated)")
        return self.model.embed(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.model.count_tokens(texts)


def test_only_the_document_the_model_fails_on_alone_is_dead_lettered(
    store: Store, embedder: Embedder
) -> None:
    model = FragileModel(embedder)
    events = [
        upsert(f"doc-{i}", f"Document {i} explains topic number {i} in detail.") for i in range(9)
    ]
    events.append(upsert("bad", "This one carries a nan-bomb for the model."))
    report = Pipeline(store, model).process(events)
    assert report.outcomes == {"applied": 9, "dead_letter": 1}
    assert [e.doc_id for e, _ in report.dead_letters] == ["bad"]
    assert model.calls[0] == 10 and max(model.calls[1:]) <= 5  # split, not retried whole
    reason = store.conn.execute("SELECT reason FROM dead_letters WHERE doc_id = 'bad'").fetchone()
    assert reason is not None and "nan-bomb" not in reason[0] and "NaN" in reason[0]
    indexed = {r[0] for r in store.conn.execute("SELECT DISTINCT doc_id FROM chunks")}
    assert indexed == {f"doc-{i}" for i in range(9)}
    cached = store.conn.execute("SELECT count(*) FROM embedding_cache").fetchone()
    assert cached is not None and cached[0] == 9  # what succeeded is kept
