"""The `freshindex` command line."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from ingest_worker.errors import FreshindexError
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


def _settings(**overrides: Any) -> Settings:
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return settings


def _stop_on_sigterm(stop: threading.Event) -> None:
    def handle(signum: int, _: object) -> None:
        logging.getLogger(__name__).info("signal %d: finishing the batch in hand", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


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

    settings = _settings(host=host, port=port)
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
    settings: Settings, url: str, folders: list[Path], stop: threading.Event, once: bool = False
) -> None:
    from ingest_worker import runtime
    from ingest_worker.folder_paths import make_roots
    from ingest_worker.folder_source import FolderWorker

    try:
        roots = make_roots(folders)
        pipeline = runtime.build_pipeline(settings, url, runtime.load_embedder(settings))
        worker = FolderWorker(
            roots,
            pipeline,
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


@worker_app.command("folder")
def worker_folder(
    folders: Folders,
    once: Annotated[
        bool, typer.Option(help="Index what is there now, then exit (burst mode).")
    ] = False,
) -> None:
    """Watch folders and keep their documents indexed: new, edited, moved and deleted files.

    doc_id = the path relative to the folder (prefixed by the folder's name when several
    folders are watched). Hidden files and editor temp files are ignored."""
    from ingest_worker import runtime

    settings = _settings()
    url = runtime.prepare_database(settings)
    stop = threading.Event()
    _stop_on_sigterm(stop)
    _run_folder_worker(settings, url, folders, stop, once)


@app.command()
def api(host: Host = None, port: Port = None) -> None:
    """Serve the HTTP API only (search, documents, stats, health)."""
    from ingest_worker import runtime

    settings = _settings(host=host, port=port)
    _serve(settings, runtime.prepare_database(settings), threading.Event())


def _serve(settings: Settings, url: str, stop: threading.Event) -> None:
    """Run the API until SIGTERM/Ctrl-C. uvicorn re-raises the signal that stopped it; with
    our handler installed that only sets `stop`, so the process exits normally (and releases
    the embedded Postgres) instead of dying by the signal."""
    import uvicorn

    from ingest_worker import runtime
    from query_api.app import create_app

    _stop_on_sigterm(stop)
    app = create_app(url, lambda: runtime.load_embedder(settings))
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")


@app.command()
def migrate() -> None:
    """Apply pending SQL migrations (every other command does this too)."""
    from ingest_worker import database, migrations

    settings = _settings()
    db = database.locate(settings)
    with database.connect(db.url) as conn:
        applied = migrations.apply(conn)
    typer.echo(f"applied {len(applied)} migration(s)" + "".join(f"\n  {m.name}" for m in applied))


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", help="How many hits.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON answer.")] = False,
    url: Annotated[str, typer.Option(help="The freshindex API.")] = "http://127.0.0.1:8000",
) -> None:
    """Search the index through the HTTP API."""
    try:
        response = httpx.post(f"{url}/v1/search", json={"query": text, "k": k}, timeout=30)
    except httpx.HTTPError as e:
        typer.echo(f"error: cannot reach {url} ({e}); is `freshindex up` running?", err=True)
        raise typer.Exit(2) from e
    if response.status_code != 200:
        typer.echo(f"error {response.status_code}: {response.text}", err=True)
        raise typer.Exit(1)
    body = response.json()
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    for rank, hit in enumerate(body["hits"], start=1):
        snippet = " ".join(hit["text"].split())[:160]
        typer.echo(
            f"{rank:2}. {hit['score']:.3f}  {hit['doc_id']}#{hit['ordinal']} "
            f"(v{hit['version']})\n    {snippet}"
        )
    if not body["hits"]:
        typer.echo("no hits")


@app.command()
def status() -> None:
    """Documents, chunks, counters, dead letters and the last change, from the database."""
    from ingest_worker import runtime
    from ingest_worker.database import connect
    from query_api.queries import stats

    settings = _settings(log_level="WARNING")
    with connect(runtime.prepare_database(settings)) as conn:
        for name, value in stats(conn).items():
            typer.echo(f"{name:24} {value}")


def main() -> None:
    try:
        app()
    except FreshindexError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
