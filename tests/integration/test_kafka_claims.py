"""Concurrent `freshindex worker kafka` processes on one topic, with a genuine broker and the
real model: a text in flight in one worker is not embedded again by another, so each
distinct text is embedded exactly once (counted by the workers' lifetime counter)."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from tests.fix_kafka import KafkaSetup
from tests.fix_services import wait_until
from tests.integration.helpers import stats

TEXTS = 40
COPIES = 4  # each text in 4 documents, spread by their doc_ids over every partition


@pytest.mark.parametrize("workers", [3])
def test_concurrent_workers_embed_each_distinct_text_once(
    kafka_setup: KafkaSetup, api: httpx.Client, workers: int
) -> None:
    names = [f"worker-{i}" for i in range(workers)]
    for name in names:
        kafka_setup.spawn(name=name)
    wait_until(
        lambda: all("resuming at offset" in kafka_setup.log_text(n) for n in names),
        600,  # three model loads on a shared 2-core machine can take minutes
        "every worker to own partitions",
    )
    texts = [
        f"Observation {i}: the survey team counted {i * 7} nesting terns on island {i}."
        for i in range(TEXTS)
    ]
    with kafka_setup.publisher() as publisher:
        for copy in range(COPIES):
            for i, text in enumerate(texts):
                publisher.upsert(f"site-{copy}/obs-{i}", text=text)
    total = TEXTS * COPIES
    wait_until(lambda: stats(api)["documents"] == total, 300, f"{total} documents")
    assert stats(api)["chunks_embedded_total"] == TEXTS  # once each, not once per worker
    with psycopg.connect(kafka_setup.db_url) as conn:
        owners = conn.execute("SELECT count(DISTINCT chunk_hash), count(*) FROM chunks").fetchone()
        claims = conn.execute("SELECT count(*) FROM embedding_claims").fetchone()
    assert owners == (TEXTS, total) and claims == (0,)
    assert all(p.poll() is None for p in kafka_setup.processes)
