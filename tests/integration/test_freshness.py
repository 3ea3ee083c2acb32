"""Read-your-writes, freshness in every answer, the SSE change feed, and search modes."""

from __future__ import annotations

import functools
import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from ingest_worker.embedding import Embedder
from ingest_worker.pipeline import Pipeline
from ingest_worker.sources.kafka.client import end_offsets
from tests.fix_kafka import FRESHINDEX, KafkaSetup
from tests.fix_services import RunningWorker, free_port, serve_api, wait_until
from tests.integration.helpers import document, upsert, write


def search(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/v1/search", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_search_waits_for_a_published_kafka_event(
    kafka_setup: KafkaSetup, embedder: Embedder
) -> None:
    kafka_setup.spawn()
    offsets = functools.partial(end_offsets, kafka_setup.settings)
    with (
        serve_api(kafka_setup.db_url, embedder, offsets) as api,
        kafka_setup.publisher() as publisher,
    ):
        publisher.upsert("warm", text="warm up", content_type="text/plain")
        wait_until(lambda: document(api, "warm"), 120, "the worker")
        for i in range(5):
            landed = publisher.upsert(
                f"fresh-{i}", text=f"Fresh fact number {i} about ibises.", content_type="text/plain"
            )
            answer = search(
                api,
                {
                    "query": f"fact number {i} ibises",
                    "k": 1,
                    "wait_for": [landed.wait_for],
                    "wait_timeout_ms": 10_000,
                },
            )
            assert answer["fresh"] and answer["missing"] == []
            assert answer["hits"][0]["doc_id"] == f"fresh-{i}"  # on the first call
        landed = publisher.upsert(
            "cli", text="Published for the command line about egrets.", content_type="text/plain"
        )
        cli = subprocess.run(
            [
                FRESHINDEX,
                "search",
                "egrets",
                "-k",
                "1",
                "--json",
                "--url",
                str(api.base_url),
                "--wait-for",
                f"{landed.topic}:{landed.partition}:{landed.offset}",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        answer = json.loads(cli.stdout)
        assert answer["fresh"] and answer["hits"][0]["doc_id"] == "cli"
        partitions = [
            s for s in answer["freshness"]["sources"] if s["source"] == f"kafka:{kafka_setup.topic}"
        ]
        assert partitions and all(s["lag"] == 0 and s["lag_ms"] == 0 for s in partitions)


def lag(api: httpx.Client, topic: str) -> int | None:
    """Events of `topic` not applied yet, summed over partitions (None: not known)."""
    sources = search(api, {"query": "lag"})["freshness"]["sources"]
    lags = [s["lag"] for s in sources if s["source"] == f"kafka:{topic}"]
    return None if not lags or None in lags else sum(lags)


def test_lag_counts_the_events_not_applied_yet(kafka_setup: KafkaSetup, embedder: Embedder) -> None:
    offsets = functools.partial(end_offsets, kafka_setup.settings)
    with (
        serve_api(kafka_setup.db_url, embedder, offsets) as api,
        kafka_setup.publisher() as publisher,
    ):
        worker = kafka_setup.spawn()
        publisher.upsert("warm", text="warm up", content_type="text/plain")
        wait_until(lambda: lag(api, kafka_setup.topic) == 0, 120, "the worker to catch up")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
        for i in range(7):  # no worker runs: these wait in Kafka
            publisher.upsert(f"late-{i}", text=f"Late note {i}.", content_type="text/plain")
        # The probe caches Kafka's offsets for 2 s; then the lag is exactly the 7 events.
        wait_until(lambda: lag(api, kafka_setup.topic) == 7, 30, "a lag of 7 events")
        kafka_setup.spawn()
        wait_until(lambda: lag(api, kafka_setup.topic) == 0, 120, "the lag to drop to 0")
        assert all(document(api, f"late-{i}") for i in range(7))


def test_a_wait_that_times_out_says_what_is_missing(api: httpx.Client) -> None:
    awaited = [{"doc_id": "never", "version": 3}, {"topic": "t", "partition": 0, "offset": 9}]
    started = time.monotonic()
    answer = search(api, {"query": "x", "wait_for": awaited, "wait_timeout_ms": 300})
    # It waited its 300 ms, and then no longer than it takes to answer on a busy machine.
    assert 0.3 <= time.monotonic() - started < 30
    assert answer["fresh"] is False
    assert answer["missing"] == [{**awaited[0], "tenant": "default"}, awaited[1]]


def test_a_search_waits_for_a_folder_write(api: httpx.Client, folder_worker: RunningWorker) -> None:
    write(folder_worker.root / "note.md", "# Note\n\nHerons stand still in shallow water.\n")
    answer = search(
        api,
        {
            "query": "herons",
            "k": 1,
            "wait_timeout_ms": 10_000,
            "wait_for": [{"doc_id": "note.md", "version": 1}],
        },
    )
    assert answer["fresh"] and answer["hits"][0]["doc_id"] == "note.md"


def test_change_feed_streams_commits_and_resumes(api: httpx.Client, pipeline: Pipeline) -> None:
    received: list[dict[str, Any]] = []

    def listen(headers: dict[str, str], count: int) -> None:
        with api.stream("GET", "/v1/changes", headers=headers, timeout=30) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            event: dict[str, Any] = {}
            for line in response.iter_lines():
                if line.startswith("id: "):
                    event["id"] = int(line[4:])
                elif line.startswith("data: "):
                    event.update(json.loads(line[6:]))
                elif not line and event:
                    received.append(event)
                    event = {}
                    if len(received) >= count:
                        return

    errors: list[BaseException] = []

    def listen_live() -> None:
        try:
            # From the feed's start (id 0): whether the stream opens before or after the
            # commits below, it must deliver both.
            listen({"Last-Event-ID": "0"}, 2)
        except BaseException as e:  # handed to the test thread below
            errors.append(e)

    reader = threading.Thread(target=listen_live)
    reader.start()
    pipeline.process([upsert("a", "first about ants", 1)])
    pipeline.process([upsert("b", "second about bees", 1)])
    reader.join(timeout=60)
    assert not reader.is_alive(), "the change feed did not deliver two events"
    assert not errors, errors
    assert [(e["doc_id"], e["version"], e["op"]) for e in received] == [
        ("a", 1, "upsert"),
        ("b", 1, "upsert"),
    ]
    pipeline.process([upsert("a", "third about ants", 2)])
    first_id = received[0]["id"]
    received.clear()
    listen({"Last-Event-ID": str(first_id)}, 2)  # resumes: b, then a v2
    assert [(e["doc_id"], e["version"]) for e in received] == [("b", 1), ("a", 2)]


def test_keyword_and_hybrid_modes(api: httpx.Client, pipeline: Pipeline) -> None:
    pipeline.process(
        [
            upsert("codes", "Error code XJ-4471 means the disk quota is exceeded."),
            upsert("storage", "When your storage fills up, delete old files to free space."),
            upsert("cats", "Cats sleep most of the day."),
        ]
    )
    keyword = search(api, {"query": "XJ-4471", "mode": "keyword"})
    assert [h["doc_id"] for h in keyword["hits"]] == ["codes"] and keyword["mode"] == "keyword"
    # BM25 with OR semantics: each document sharing a word of the question is a hit.
    keyword = search(api, {"query": "running out of disk space", "mode": "keyword"})
    assert {h["doc_id"] for h in keyword["hits"]} == {"codes", "storage"}
    hybrid = search(api, {"query": "XJ-4471 disk full", "k": 2})  # hybrid is the default
    assert hybrid["mode"] == "hybrid" and hybrid["hits"][0]["doc_id"] == "codes"
    assert {h["doc_id"] for h in hybrid["hits"]} == {"codes", "storage"}
    vector = search(api, {"query": "running out of disk space", "mode": "vector", "k": 1})
    assert vector["hits"][0]["doc_id"] == "storage" and vector["mode"] == "vector"


def test_metrics_of_a_worker_process_and_of_the_api(
    kafka_setup: KafkaSetup, api: httpx.Client, tmp_path: Path
) -> None:
    """The pipeline's counters move in the worker process that ran it (its
    FRESHINDEX_METRICS_PORT), the search counters in the API, and the index-wide gauges
    that the API reads from Postgres see the worker's document."""
    folder = tmp_path / "docs"
    folder.mkdir()
    port = free_port()
    kafka_setup.spawn("worker", "folder", str(folder), name="folder",
                      FRESHINDEX_METRICS_PORT=str(port))  # fmt: skip
    worker = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    wait_until(lambda: scrape(worker) is not None, 180, "the worker's metrics endpoint")
    api_events = metric(api, "freshindex_events_total")
    searches = metric(api, 'freshindex_search_seconds_count{mode="keyword"}')
    write(folder / "m1.md", "# Metrics\n\nMetrics should move when documents arrive.\n")
    wait_until(lambda: metric(worker, "freshindex_events_total") == 1, 180, "the worker to count")
    assert metric(worker, "freshindex_chunks_embedded_total") == 1
    assert metric(worker, "freshindex_freshness_seconds_count") == 1
    search(api, {"query": "metrics", "mode": "keyword"})
    assert metric(api, 'freshindex_search_seconds_count{mode="keyword"}') == searches + 1
    assert metric(api, "freshindex_events_total") == api_events  # not the API's work
    assert metric(api, "freshindex_index_documents") == 1
    assert metric(api, "freshindex_index_up") == 1
    assert metric(worker, 'freshindex_search_seconds_count{mode="keyword"}') == 0
    worker.close()


def scrape(client: httpx.Client) -> str | None:
    try:
        response = client.get("/metrics")
    except httpx.TransportError:
        return None
    return response.text if response.status_code == 200 else None


def metric(client: httpx.Client, name: str) -> float:
    """The sum of a metric's samples (0 when it has none yet)."""
    text = scrape(client) or ""
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + " ") or line.startswith(name + "{")
    ]
    return sum(values)
