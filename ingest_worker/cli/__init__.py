"""The `freshindex` command line."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from ingest_worker.cli.common import serve_worker_metrics, settings_from, stop_on_sigterm
from ingest_worker.cli.dead_letters import dead_app
from ingest_worker.cli.keys import keys_app
from ingest_worker.errors import FreshindexError
from ingest_worker.pipeline import EventSink
from ingest_worker.settings import Settings

app = typer.Typer(
    help="freshindex keeps a pgvector index continuously fresh for retrieval (RAG).\n\n"
    "Start with `freshindex up`: it watches ./inbox and serves search on "
    "http://127.0.0.1:8000. Settings come from FRESHINDEX_* environment variables "
    "and DATABASE_URL (see the README); flags override them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
worker_app = typer.Typer(help="Run one ingest worker.", no_args_is_help=True)
app.add_typer(worker_app, name="worker")
app.add_typer(dead_app, name="dead-letters")
app.add_typer(keys_app, name="keys")

SAMPLE_DOCUMENT = """# Welcome to freshindex

freshindex watches this folder. Drop Markdown, text, HTML or PDF files here and they become
searchable within about a second; edit or delete them and the index follows.

## Try it

Search from another terminal with `freshindex search "what does freshindex watch"`, or with
curl against http://127.0.0.1:8000/v1/search.
"""

Folders = Annotated[list[Path], typer.Argument(help="Folders to watch (recursively).")]
Host = Annotated[str | None, typer.Option(help="Bind address [env FRESHINDEX_HOST].")]
Port = Annotated[int | None, typer.Option(help="Port [env FRESHINDEX_PORT].")]


@app.command()
def up(
    watch: Annotated[
        list[Path] | None,
        typer.Option("--watch", "-w", help="Folder to watch; repeat for more. Default ./inbox."),
    ] = None,
    host: Host = None,
    port: Port = None,
) -> None:
    """Everything in one process: database (embedded unless DATABASE_URL is set),
    migrations, folder worker and HTTP API. Ctrl-C stops it cleanly."""
    from ingest_worker import runtime

    settings = settings_from(host=host, port=port)
    folders = watch or [Path("inbox")]
    if not watch and not folders[0].exists():
        folders[0].mkdir(parents=True)
        (folders[0] / "welcome.md").write_text(SAMPLE_DOCUMENT, encoding="utf-8")
    url = runtime.prepare_database(settings)
    stop = threading.Event()
    worker = threading.Thread(
        target=_run_folder_worker, args=(settings, url, folders, stop), name="folder-worker"
    )
    worker.start()
    typer.echo(
        f"freshindex: watching {', '.join(map(str, folders))}; "
        f"search on http://{settings.host}:{settings.port}/docs",
        err=True,
    )
    try:
        _serve(settings, url, stop)
    finally:
        stop.set()
        worker.join()


def _run_folder_worker(
    settings: Settings,
    url: str,
    folders: list[Path],
    stop: threading.Event,
    once: bool = False,
    publish_to_kafka: bool = False,
) -> None:
    from ingest_worker import runtime
    from ingest_worker.sources.folder.paths import make_roots
    from ingest_worker.sources.folder.watcher import FolderWorker

    try:
        roots = make_roots(folders)
        worker = FolderWorker(
            roots,
            _kafka_sink(settings, url)
            if publish_to_kafka
            else runtime.build_pipeline(settings, url, runtime.load_embedder(settings, url)),
            tenant=settings.tenant,
            debounce_s=settings.debounce_s,
            rescan_interval_s=settings.rescan_interval_s,
            max_file_bytes=settings.max_file_bytes,
            progress=sys.stderr.isatty(),
        )
        report = worker.run(stop, once=once)
        logging.getLogger(__name__).info("folder worker stopped: %s", dict(report.outcomes))
    except FreshindexError as e:
        typer.echo(f"error: {e}", err=True)
        stop.set()
        raise


def _kafka_sink(settings: Settings, url: str) -> EventSink:
    from ingest_worker.database import connect
    from ingest_worker.sources.kafka.client import Publisher
    from ingest_worker.sources.kafka.sink import KafkaSink
    from ingest_worker.store import Store

    return KafkaSink(Publisher(settings), Store(connect(url), settings.model), settings.dlq_topic)


@worker_app.command("folder")
def worker_folder(
    folders: Folders,
    once: Annotated[
        bool, typer.Option(help="Index what is there now, then exit (burst mode).")
    ] = False,
    publish_to_kafka: Annotated[
        bool,
        typer.Option(
            help="Publish changes to the Kafka topic instead of indexing them (many watchers "
            "can feed one `worker kafka` group). Reconciles against the index at "
            "DATABASE_URL."
        ),
    ] = False,
) -> None:
    """Watch folders and keep their documents indexed: new, edited, moved and deleted files.

    doc_id = the path relative to the folder (prefixed by the folder's name when several
    folders are watched). Hidden files and editor temp files are ignored."""
    from ingest_worker import runtime

    settings = settings_from()
    serve_worker_metrics(settings)
    url = runtime.prepare_database(settings)
    stop = threading.Event()
    stop_on_sigterm(stop)
    _run_folder_worker(settings, url, folders, stop, once, publish_to_kafka)


@worker_app.command("kafka")
def worker_kafka(
    bootstrap_servers: Annotated[
        str | None, typer.Option(help="[env FRESHINDEX_KAFKA_BOOTSTRAP_SERVERS]")
    ] = None,
    topic: Annotated[str | None, typer.Option(help="[env FRESHINDEX_KAFKA_TOPIC]")] = None,
    group_id: Annotated[str | None, typer.Option(help="[env FRESHINDEX_KAFKA_GROUP_ID]")] = None,
    partitions: Annotated[
        int | None, typer.Option(help="Partitions if the topic must be created.")
    ] = None,
) -> None:
    """Consume document events from Kafka and keep the index fresh.

    Run several in one consumer group to split the partitions. Each partition's position is
    stored in Postgres with the documents it produced, so a crash or rebalance neither loses
    nor re-applies an event. SIGTERM finishes the batch in hand, then leaves the group."""
    from ingest_worker import kafka_worker_main

    settings = settings_from(
        kafka_bootstrap_servers=bootstrap_servers,
        kafka_topic=topic,
        kafka_group_id=group_id,
        kafka_partitions=partitions,
    )
    serve_worker_metrics(settings)
    kafka_worker_main.run(settings)


@app.command()
def publish(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders to publish as upserts.")
    ] = None,
    delete: Annotated[
        list[str] | None, typer.Option("--delete", help="Publish a delete for this doc_id.")
    ] = None,
    doc_id: Annotated[
        str | None, typer.Option(help="doc_id for a single FILE (default: its name).")
    ] = None,
    version: Annotated[int | None, typer.Option(help="Explicit version of the event.")] = None,
    metadata: Annotated[
        list[str] | None, typer.Option("--metadata", "-m", help="key=value; repeatable.")
    ] = None,
    topic: Annotated[str | None, typer.Option(help="[env FRESHINDEX_KAFKA_TOPIC]")] = None,
    bootstrap_servers: Annotated[
        str | None, typer.Option(help="[env FRESHINDEX_KAFKA_BOOTSTRAP_SERVERS]")
    ] = None,
) -> None:
    """Send document events to Kafka (keyed by doc_id, acks=all, idempotent), creating the
    topic if needed. Prints where each event landed: pass that to a search to wait for it.

    Files in a folder get the doc_id of their path relative to it, as the folder worker
    gives them."""
    from ingest_worker.sources.folder.paths import make_roots
    from ingest_worker.sources.folder.watcher import walk
    from ingest_worker.sources.kafka.client import Publisher, metadata_pairs

    settings = settings_from(
        kafka_topic=topic, kafka_bootstrap_servers=bootstrap_servers, log_level="WARNING"
    )
    files: list[tuple[Path, str]] = []
    for path in paths or []:
        if path.is_dir():
            [root] = make_roots([path])
            files += [(f, root.doc_id(f)) for f, _ in walk(root.path)]
        elif path.is_file():
            files.append((path, path.name))
        else:
            raise typer.BadParameter(f"{path} is neither a file nor a folder", param_hint="PATHS")
    if doc_id and len(files) != 1:
        raise typer.BadParameter("--doc-id needs exactly one FILE", param_hint="--doc-id")
    if not files and not delete:
        raise typer.BadParameter("give FILEs/folders to publish, or --delete DOC_ID")
    try:
        fields = {"metadata": metadata_pairs(metadata or []), "version": version}
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--metadata") from e
    with Publisher(settings) as publisher:
        for path, name in files:
            landed = publisher.upsert_file(path, doc_id or name, **fields)
            typer.echo(f"{landed.doc_id}\tpartition {landed.partition}\toffset {landed.offset}")
        for name in delete or []:
            landed = publisher.delete(name, version=version)
            typer.echo(
                f"{landed.doc_id}\tpartition {landed.partition}\toffset {landed.offset}\t(delete)"
            )


@app.command()
def api(host: Host = None, port: Port = None) -> None:
    """Serve the HTTP API only (search, documents, stats, health)."""
    from ingest_worker import runtime

    settings = settings_from(host=host, port=port)
    _serve(settings, runtime.prepare_database(settings), threading.Event())


def _serve(settings: Settings, url: str, stop: threading.Event) -> None:
    """Run the API until SIGTERM/Ctrl-C. uvicorn re-raises the signal that stopped it; with
    our handler installed that only sets `stop`, so the process exits normally (and releases
    the embedded Postgres) instead of dying by the signal."""
    import uvicorn

    from ingest_worker import api_keys, runtime
    from ingest_worker.embedding import SentenceTransformerEmbedder
    from query_api.app import create_app

    stop_on_sigterm(stop)
    app = create_app(
        url,
        lambda: runtime.load_embedder(settings, url),
        _latest_offsets(settings),
        load_model=lambda name: SentenceTransformerEmbedder(
            name, batch_size=settings.embed_batch_size
        ),
        read_database_url=settings.read_database_url,
        require_keys=api_keys.required(settings.api_keys, settings.host),
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")


@app.command()
def migrate() -> None:
    """Apply pending SQL migrations (every other command does this too)."""
    from ingest_worker import database, migrations

    settings = settings_from()
    db = database.locate(settings)
    with database.connect(db.url) as conn:
        applied = migrations.apply(conn)
    typer.echo(f"applied {len(applied)} migration(s)" + "".join(f"\n  {m.name}" for m in applied))


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", help="How many hits.")] = 10,
    mode: Annotated[str, typer.Option(help="vector, keyword or hybrid.")] = "vector",
    wait_for: Annotated[
        list[str] | None,
        typer.Option(
            "--wait-for",
            help="Answer once this is indexed: TOPIC:PARTITION:OFFSET (what `publish` "
            "prints) or DOC_ID@VERSION; repeatable.",
        ),
    ] = None,
    wait_timeout_ms: Annotated[int, typer.Option(help="Longest wait for --wait-for.")] = 5000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON answer.")] = False,
    url: Annotated[str, typer.Option(help="The freshindex API.")] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str | None,
        typer.Option(envvar="FRESHINDEX_API_KEY", help="When the API requires keys."),
    ] = None,
) -> None:
    """Search the index through the HTTP API."""
    body = {
        "query": text,
        "k": k,
        "mode": mode,
        "wait_for": [_awaited(item) for item in wait_for or []],
        "wait_timeout_ms": wait_timeout_ms,
    }
    try:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        response = httpx.post(f"{url}/v1/search", json=body, headers=headers, timeout=30)
    except httpx.HTTPError as e:
        typer.echo(f"error: cannot reach {url} ({e}); is `freshindex up` running?", err=True)
        raise typer.Exit(2) from e
    if response.status_code != 200:
        typer.echo(f"error {response.status_code}: {response.text}", err=True)
        raise typer.Exit(1)
    answer = response.json()
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    if not answer["fresh"]:
        typer.echo(f"warning: not indexed yet: {answer['missing']}", err=True)
    for rank, hit in enumerate(answer["hits"], start=1):
        snippet = " ".join(hit["text"].split())[:160]
        typer.echo(
            f"{rank:2}. {hit['score']:.3f}  {hit['doc_id']}#{hit['ordinal']} "
            f"(v{hit['version']})\n    {snippet}"
        )
    if not answer["hits"]:
        typer.echo("no hits")


def _awaited(item: str) -> dict[str, Any]:
    """`topic:partition:offset` or `doc_id@version` → a wait_for entry."""
    doc_id, at, version = item.rpartition("@")
    if at and version.isdigit():
        return {"doc_id": doc_id, "version": int(version)}
    topic, _, rest = item.partition(":")
    partition, _, offset = rest.partition(":")
    if topic and partition.isdigit() and offset.isdigit():
        return {"topic": topic, "partition": int(partition), "offset": int(offset)}
    raise typer.BadParameter(
        f"{item!r} is neither TOPIC:PARTITION:OFFSET nor DOC_ID@VERSION", param_hint="--wait-for"
    )


@app.command()
def reindex(
    model: Annotated[
        str, typer.Option("--model", help="all-MiniLM-L6-v2, or the path of a local model.")
    ],
) -> None:
    """Move the index to another embedding model without downtime: embed every chunk with the
    new model beside the old vectors (searches and workers go on), then switch in one
    transaction. Running workers and APIs load the new model by themselves."""
    from tqdm import tqdm

    from ingest_worker import reindex as reindexing
    from ingest_worker import runtime
    from ingest_worker.database import connect
    from ingest_worker.embedding import SentenceTransformerEmbedder
    from ingest_worker.store import Store

    settings = settings_from()
    url = runtime.prepare_database(settings)
    new = SentenceTransformerEmbedder(model, batch_size=settings.embed_batch_size)
    store = Store(connect(url), new.model_name)
    current = reindexing.active_model(store.conn)
    if current == new.model_name:
        typer.echo(f"the index already uses {current}")
        return
    if current is None:
        store.activate_model(new.dimensions)
        typer.echo(f"the index was empty; it now uses {new.model_name}")
        return
    total = reindexing.count_missing(store.conn, new.model_name)
    with tqdm(total=total, unit="chunk", desc=f"embedding with {model}") as bar:

        def progress(done: int, left: int) -> None:
            bar.total = done + left
            bar.update(done - bar.n)

        embedded = reindexing.reindex(store, new, on_progress=progress)
    typer.echo(f"switched from {current} to {new.model_name}; embedded {embedded} chunk texts")


@app.command()
def status() -> None:
    """Documents, chunks, counters, dead letters and the last change, from the database."""
    from ingest_worker import runtime
    from ingest_worker.database import connect
    from query_api.lag import with_lag
    from query_api.queries import stats

    settings = settings_from(log_level="WARNING")
    with connect(runtime.prepare_database(settings)) as conn:
        counts = stats(conn)
    sources = with_lag(counts.pop("sources"), _latest_offsets(settings))
    for name, value in counts.items():
        typer.echo(f"{name:24} {value}")
    for row in sources:
        lag = "?" if row["lag"] is None else row["lag"]
        typer.echo(f"{row['source']}[{row['partition']}]  applied {row['position']}  lag {lag}")


def _latest_offsets(settings: Settings) -> Callable[[str], Mapping[int, int]]:
    def latest(topic: str) -> Mapping[int, int]:
        from ingest_worker.sources.kafka.client import end_offsets

        return end_offsets(settings, topic)

    return latest


def main() -> None:
    try:
        app()
    except FreshindexError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
