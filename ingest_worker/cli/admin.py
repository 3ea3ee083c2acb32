"""`freshindex migrate`, `reindex`, `status` and `confirm-deletes`: looking after the index."""

from __future__ import annotations

from typing import Annotated

import typer

from ingest_worker import runtime


def migrate() -> None:
    """Apply pending SQL migrations (every other command does this too)."""
    from ingest_worker import database, migrations

    settings = runtime.settings_from()
    db = database.locate(settings)
    with database.connect(db.url) as conn:
        applied = migrations.apply(conn)
    typer.echo(f"applied {len(applied)} migration(s)" + "".join(f"\n  {m.name}" for m in applied))


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
    from ingest_worker.database import connect
    from ingest_worker.store import Store

    settings = runtime.settings_from()
    url = runtime.prepare_database(settings)
    new = runtime.embedder_loader(settings)(model)
    store = Store(connect(url), new.model_name)
    current = reindexing.active_model(store.conn)
    if current == new.model_name:
        typer.echo(f"the index already uses {current}")
        return
    if current is None:
        reindexing.activate(store.conn, store.model, new.dimensions)
        typer.echo(f"the index was empty; it now uses {new.model_name}")
        return
    total = reindexing.count_missing(store.conn, new.model_name)
    with tqdm(total=total, unit="chunk", desc=f"embedding with {model}") as bar:

        def progress(done: int, left: int) -> None:
            bar.total = done + left
            bar.update(done - bar.n)

        embedded = reindexing.reindex(store, new, on_progress=progress)
    typer.echo(f"switched from {current} to {new.model_name}; embedded {embedded} chunk texts")


def status() -> None:
    """Documents, chunks, counters, dead letters and the last change, from the database."""
    from ingest_worker.database import connect
    from query_api.lag import CachedLatestOffsets, with_lag
    from query_api.queries import stats

    settings = runtime.settings_from(log_level="WARNING")
    with connect(runtime.prepare_database(settings)) as conn:
        counts = stats(conn)
    sources = with_lag(counts.pop("sources"), CachedLatestOffsets(runtime.latest_offsets(settings)))
    holds = counts.pop("deletes_held")
    for name, value in counts.items():
        typer.echo(f"{name:24} {value}")
    for row in sources:
        lag = "?" if row["lag"] is None else row["lag"]
        typer.echo(f"{row['source']}[{row['partition']}]  applied {row['position']}  lag {lag}")
    for hold in holds:
        state = "confirmed, applying" if hold["confirmed_at"] else "HELD"
        typer.echo(f"deletes {state}: {hold['source']} since {hold['held_at']:%Y-%m-%d %H:%M:%S}")
        typer.echo(f"  {hold['reason']}")


def confirm_deletes(
    source: Annotated[
        str, typer.Argument(help="The held source, as `status` shows it (folder:/path).")
    ],
) -> None:
    """Let a mass delete the delete guard held go ahead (the worker applies it within
    seconds, against what the folder holds then)."""
    settings = runtime.settings_from(log_level="WARNING")
    if runtime.confirm_deletes(settings, source):
        typer.echo(f"confirmed: the held deletes of {source} go ahead")
    else:
        typer.echo(f"error: no deletes of {source} are held", err=True)
        raise typer.Exit(1)
