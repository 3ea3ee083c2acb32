"""The one composition root: every process is wired here from its settings.

`run_folder_worker`, `run_kafka_worker` and `serve_api` are what `freshindex up`, `worker
folder`, `worker kafka` and `api` run; the rest are the parts they share: settings and
logging, signals, the database and its migrations, the embedding model, the pipeline.
The `cli` package only parses arguments and calls these.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ingest_worker import database, delete_guard, embedding_backends, logs, migrations, reindex
from ingest_worker.embedding import Embedder, canonical_name
from ingest_worker.errors import ConfigurationError, FreshindexError
from ingest_worker.pipeline import EventSink, Pipeline
from ingest_worker.settings import Settings
from ingest_worker.store import Store

log = logging.getLogger(__name__)

EmbedderLoader = Callable[[str], Embedder]  # model name → loaded model
_LOADED: dict[tuple[str, str, embedding_backends.Options], Embedder] = {}
_LOADING = threading.Lock()


# -- what every process shares ------------------------------------------------------------


def settings_from(**overrides: Any) -> Settings:
    """Settings from the environment; flags that were given override; logging set up."""
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    logs.configure(settings.log_level, settings.log_format)
    return settings


def serve_worker_metrics(settings: Settings) -> None:
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.metrics_host)


def stop_on_sigterm(stop: threading.Event) -> None:
    def handle(signum: int, _: object) -> None:
        log.info("signal %d: finishing the batch in hand", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def prepare_database(settings: Settings) -> str:
    """Locate (or start) the database and apply pending migrations; return its URL.

    Every command does this, so that no one has to remember `freshindex migrate`.
    """
    db = database.locate(settings)
    with database.connect(db.url) as conn:
        applied = migrations.apply(conn)
    for migration in applied:
        log.info("applied migration %s", migration.name)
    return db.url


def database_url() -> str:
    """The database, started if embedded, with pending migrations applied."""
    return prepare_database(settings_from(log_level="WARNING"))


def embedder_loader(settings: Settings) -> EmbedderLoader:
    """The one way a process loads a model (by name: the index may switch models)."""

    options = embedding_backends.Options(
        cache_dir=settings.model_cache_dir or settings.data_dir / "models",
        batch_size=settings.embed_batch_size,
        batch_tokens=settings.embed_batch_tokens,
    )

    def load(model: str) -> Embedder:
        key = (model, settings.embed_backend, options)
        with _LOADING:  # `up` runs the API and a worker: they share one model
            if key not in _LOADED:
                _LOADED[key] = embedding_backends.load(model, settings.embed_backend, options)
            return _LOADED[key]

    return load


def load_embedder(settings: Settings, url: str | None = None) -> Embedder:
    """The model the index uses (it decides once it has one: `freshindex reindex` changes
    it), else FRESHINDEX_MODEL."""
    model = settings.model
    if url is not None:
        with database.connect(url) as conn:
            active = reindex.active_model(conn)
        if active is not None and active != _canonical_or_none(model):
            log.warning("the index uses model %s, not %s; using %s", active, model, active)
            model = active
    return embedder_loader(settings)(model)


def _canonical_or_none(model: str) -> str | None:
    """The model's canonical name; None for a path that is not there (the index's model is
    used anyway, so a stale setting does not stop the process)."""
    try:
        return canonical_name(model)
    except ConfigurationError:
        return None


def build_pipeline(settings: Settings, url: str, embedder: Embedder) -> Pipeline:
    store = Store(database.connect(url), embedder.model_name)
    reindex.activate(store.conn, store.model, embedder.dimensions)
    return Pipeline(
        store,
        embedder,
        max_file_bytes=settings.max_file_bytes,
        chunk_max_tokens=settings.chunk_max_tokens,
        load_model=embedder_loader(settings),
        delete_threshold=delete_threshold(settings),
        claim_lease_s=settings.embed_claim_lease_s,
    )


def delete_threshold(settings: Settings) -> delete_guard.Threshold:
    return delete_guard.Threshold(settings.delete_guard_share, settings.delete_guard_min)


def confirm_deletes(settings: Settings, source: str) -> int:
    """Let the held deletes of `source` through; how many holds were confirmed."""
    with database.connect(prepare_database(settings)) as conn:
        return delete_guard.confirm(conn, source)


@contextlib.contextmanager
def collecting_cache(settings: Settings, url: str, enabled: bool = True) -> Iterator[None]:
    """Collect the embedding cache in the background while an indexing worker runs."""
    if not enabled or settings.cache_gc_interval_s <= 0:
        yield
        return
    from ingest_worker.cache_gc import CacheCollector

    collector = CacheCollector(url, settings.cache_gc_grace_s, settings.cache_gc_interval_s)
    collector.start()
    try:
        yield
    finally:
        collector.halt()


def latest_offsets(settings: Settings) -> Callable[[str], Mapping[int, int]]:
    """Kafka's end offsets per topic, for lag."""

    def latest(topic: str) -> Mapping[int, int]:
        from ingest_worker.sources.kafka.client import end_offsets

        return end_offsets(settings, topic)

    return latest


# -- the processes ------------------------------------------------------------------------


def run_folder_worker(
    settings: Settings,
    url: str,
    folders: list[Path],
    stop: threading.Event,
    once: bool = False,
    publish_to_kafka: bool = False,
) -> None:
    """Watch `folders` until `stop` (or, with `once`, until they are indexed), indexing into
    the database at `url`, or publishing to Kafka."""
    from ingest_worker.sources.folder.paths import make_roots
    from ingest_worker.sources.folder.watcher import FolderWorker

    try:
        roots = make_roots(folders)
        worker = FolderWorker(
            roots,
            _kafka_sink(settings, url)
            if publish_to_kafka
            else build_pipeline(settings, url, load_embedder(settings, url)),
            tenant=settings.tenant,
            debounce_s=settings.debounce_s,
            rescan_interval_s=settings.rescan_interval_s,
            max_file_bytes=settings.max_file_bytes,
            progress=sys.stderr.isatty(),
        )
        with collecting_cache(settings, url, enabled=not publish_to_kafka):
            report = worker.run(stop, once=once)
        log.info("folder worker stopped: %s", dict(report.outcomes))
    except FreshindexError as e:
        print(f"error: {e}", file=sys.stderr)
        stop.set()
        raise


def _kafka_sink(settings: Settings, url: str) -> EventSink:
    from ingest_worker.sources.kafka.client import Publisher
    from ingest_worker.sources.kafka.sink import KafkaSink

    return KafkaSink(
        Publisher(settings),
        Store(database.connect(url), settings.model),
        settings.dlq_topic,
        delete_threshold(settings),
    )


def run_kafka_worker(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT; faust's worker owns the event loop and the signals."""
    import faust

    from ingest_worker.events import DocumentEvent
    from ingest_worker.sources.kafka import events as kafka_events
    from ingest_worker.sources.kafka.client import Publisher, ensure_topic
    from ingest_worker.sources.kafka.resume import start_positions
    from ingest_worker.sources.kafka.worker import build_app

    # Until faust installs its handlers, SIGTERM means "stop starting": exit cleanly (and
    # release the embedded Postgres) rather than die by the signal while the model loads.
    signal.signal(signal.SIGTERM, _stop_starting)
    url = prepare_database(settings)
    ensure_topic(settings, settings.kafka_topic)
    ensure_topic(settings, settings.dlq_topic)
    # faust elects the group's leader through this topic and only warns when it is missing.
    ensure_topic(settings, f"{settings.kafka_group_id}-__assignor-__leader", partitions=1)
    pipeline = build_pipeline(settings, url, load_embedder(settings, url))
    dlq = Publisher(settings, create_topic=False)

    def resume_positions(topic: str, log_starts: Mapping[int, int]) -> Mapping[int, int]:
        with database.connect(url) as conn:  # its own connection: called from faust's thread
            return start_positions(conn, kafka_events.source_name(topic), log_starts)

    def dead_letter(
        event: DocumentEvent, error: Exception, key: bytes | None, value: bytes | None
    ) -> None:
        reason = str(error).encode()
        dlq.send_raw(key, value, topic=settings.dlq_topic, headers=[("reason", reason)])

    app = build_app(settings, pipeline, resume_positions, dead_letter)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    try:
        with collecting_cache(settings, url):
            worker.execute_from_commandline()
    finally:
        dlq.close()


def _stop_starting(signum: int, _: object) -> None:
    log.info("signal %d while starting: exiting", signum)
    sys.exit(0)


def serve_api(settings: Settings, url: str, stop: threading.Event) -> None:
    """Run the API until SIGTERM/Ctrl-C. uvicorn re-raises the signal that stopped it; with
    our handler installed that only sets `stop`, so the process exits normally (and releases
    the embedded Postgres) instead of dying by the signal."""
    import uvicorn

    from ingest_worker import api_keys
    from query_api.app import create_app
    from query_api.bm25 import Bm25

    stop_on_sigterm(stop)
    load = embedder_loader(settings)
    # Queries on the model's query lane: in `up` the worker's batches use the same model.
    app = create_app(
        url,
        lambda: embedding_backends.for_queries(load_embedder(settings, url)),
        latest_offsets(settings),
        load_model=lambda model: embedding_backends.for_queries(load(model)),
        read_database_url=settings.read_database_url,
        require_keys=api_keys.required(settings.api_keys, settings.host),
        bm25=Bm25(settings.bm25_k1, settings.bm25_b),
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")


def serve_mcp(settings: Settings, transport: str) -> None:
    """`freshindex mcp`: MCP tools over the API at settings.api_url, on stdio or on
    streamable HTTP at http://<host>:<mcp_port>/mcp."""
    from query_api.integrations import mcp_server

    mcp_server.run(settings.api_url, settings.api_key, transport, settings.host, settings.mcp_port)
