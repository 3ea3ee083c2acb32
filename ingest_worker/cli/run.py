"""`freshindex up`, `worker folder`, `worker kafka` and `api`: the long-running processes
(wired in `ingest_worker.runtime`)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

import typer

from ingest_worker import runtime

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
    settings = runtime.settings_from(host=host, port=port)
    folders = watch or [Path("inbox")]
    if not watch and not folders[0].exists():
        folders[0].mkdir(parents=True)
        (folders[0] / "welcome.md").write_text(SAMPLE_DOCUMENT, encoding="utf-8")
    url = runtime.prepare_database(settings)
    stop = threading.Event()
    worker = threading.Thread(
        target=runtime.run_folder_worker, args=(settings, url, folders, stop), name="folder-worker"
    )
    worker.start()
    typer.echo(
        f"freshindex: watching {', '.join(map(str, folders))}; "
        f"search on http://{settings.host}:{settings.port}/docs",
        err=True,
    )
    try:
        runtime.serve_api(settings, url, stop)
    finally:
        stop.set()
        worker.join()


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
    settings = runtime.settings_from()
    runtime.serve_worker_metrics(settings)
    url = runtime.prepare_database(settings)
    stop = threading.Event()
    runtime.stop_on_sigterm(stop)
    runtime.run_folder_worker(settings, url, folders, stop, once, publish_to_kafka)


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
    settings = runtime.settings_from(
        kafka_bootstrap_servers=bootstrap_servers,
        kafka_topic=topic,
        kafka_group_id=group_id,
        kafka_partitions=partitions,
    )
    runtime.serve_worker_metrics(settings)
    runtime.run_kafka_worker(settings)


def api(host: Host = None, port: Port = None) -> None:
    """Serve the HTTP API only (search, documents, stats, health)."""
    settings = runtime.settings_from(host=host, port=port)
    runtime.serve_api(settings, runtime.prepare_database(settings), threading.Event())
