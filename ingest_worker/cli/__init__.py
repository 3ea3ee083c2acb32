"""The `freshindex` command line: argument parsing only. Each command calls the composition
root (`ingest_worker.runtime`) or one module's function; the commands live in `run`
(processes), `publish`, `search`, `mcp`, `admin` (migrate, reindex, status, confirm-deletes),
`keys` and `dead_letters`."""

from __future__ import annotations

import sys

import typer

from ingest_worker.cli import admin, mcp, publish, run, search
from ingest_worker.cli.dead_letters import dead_app
from ingest_worker.cli.keys import keys_app
from ingest_worker.errors import FreshindexError

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

app.command()(run.up)
worker_app.command("folder")(run.worker_folder)
worker_app.command("kafka")(run.worker_kafka)
app.command()(publish.publish)
app.command()(run.api)
app.command()(admin.migrate)
app.command()(search.search)
app.command()(admin.reindex)
app.command()(admin.status)
app.command()(mcp.mcp)
app.command("confirm-deletes")(admin.confirm_deletes)


def main() -> None:
    try:
        app()
    except FreshindexError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
