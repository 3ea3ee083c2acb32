"""`freshindex dead-letters`: events that could not be indexed, with their reasons."""

from __future__ import annotations

import json
from typing import Annotated, cast

import typer

from ingest_worker import runtime

dead_app = typer.Typer(
    help="Events that could not be indexed, with their reasons.", no_args_is_help=True
)
Ids = Annotated[list[int] | None, typer.Argument(help="Dead letter ids (see `list`).")]
All = Annotated[bool, typer.Option("--all", help="Every dead letter.")]


def _chosen(ids: list[int] | None, every: bool) -> list[int] | None:
    if every == bool(ids):
        raise typer.BadParameter("give dead letter ids, or --all")
    return None if every else ids


@dead_app.command("list")
def dead_letters_list(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    state: Annotated[
        str, typer.Option(help="open (not resolved by a later version), resolved, or all.")
    ] = "open",
) -> None:
    """The newest dead letters: id, when, source, doc_id and why."""
    from ingest_worker import dead_letters
    from ingest_worker.database import connect

    if state not in ("open", "resolved", "all"):
        raise typer.BadParameter("--state is open, resolved or all")
    with connect(runtime.database_url()) as conn:
        rows = dead_letters.listing(conn, limit, state=cast(dead_letters.State, state))
    for row in rows:
        if as_json:
            typer.echo(json.dumps(row, default=str))
        else:
            typer.echo(
                f"{row['id']:>6}  {row['created_at']:%Y-%m-%d %H:%M:%S}  {row['state']:8}  "
                f"{row['source']}  {row['doc_id']!r}\n        {row['reason']}"
            )
    if not rows and not as_json:
        typer.echo("no dead letters" if state == "all" else f"no {state} dead letters")


@dead_app.command("show")
def dead_letters_show(dead_letter_id: Annotated[int, typer.Argument(help="Its id.")]) -> None:
    """One dead letter in full, with the start of its payload."""
    from ingest_worker import dead_letters
    from ingest_worker.database import connect

    with connect(runtime.database_url()) as conn:
        row = dead_letters.get(conn, dead_letter_id)
    if row is None:
        typer.echo(f"error: no dead letter {dead_letter_id}", err=True)
        raise typer.Exit(1)
    payload = row.pop("payload")
    typer.echo(json.dumps(row, default=str, indent=2))
    if payload is not None:
        typer.echo(f"payload ({len(payload)} bytes): {bytes(payload[:300])!r}")


@dead_app.command("retry")
def dead_letters_retry(ids: Ids = None, every: All = False) -> None:
    """Index dead letters again (files are read again from their folder, so fix the file
    first). One that fails again is stored again with its new reason."""
    from ingest_worker.sources import dead_letters

    settings = runtime.settings_from(log_level="WARNING")
    url = runtime.prepare_database(settings)
    pipeline = runtime.build_pipeline(settings, url, runtime.load_embedder(settings, url))
    report = dead_letters.retry(pipeline, _chosen(ids, every))
    typer.echo(
        ", ".join(f"{n} {outcome}" for n, outcome in ((v, k) for k, v in report.outcomes.items()))
        or "nothing to retry"
    )


@dead_app.command("purge")
def dead_letters_purge(ids: Ids = None, every: All = False) -> None:
    """Delete dead letters."""
    from ingest_worker import dead_letters
    from ingest_worker.database import connect

    with connect(runtime.database_url()) as conn:
        count = dead_letters.purge(conn, _chosen(ids, every))
    typer.echo(f"purged {count} dead letter(s)")
