"""`freshindex keys`: API keys for the HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer

from ingest_worker import runtime

keys_app = typer.Typer(
    help="API keys for the HTTP API. Keys are required when the API listens beyond loopback "
    "(or with FRESHINDEX_API_KEYS=on); a key reads one tenant, an admin key reads all.",
    no_args_is_help=True,
)


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str | None, typer.Option(help="The tenant this key reads.")] = None,
    admin: Annotated[
        bool, typer.Option("--admin", help="Every tenant, plus stats and dead letters.")
    ] = False,
    name: Annotated[str, typer.Option(help="A label, e.g. the app that uses it.")] = "",
) -> None:
    """Create a key and print it. It is shown once: only its digest is stored."""
    from ingest_worker import api_keys
    from ingest_worker.database import connect

    if admin == (tenant is not None):
        raise typer.BadParameter("give --tenant NAME, or --admin")
    with connect(runtime.database_url()) as conn:
        secret, key = api_keys.create(conn, tenant, name)
    scope = f"tenant {tenant!r}" if tenant else "every tenant (admin)"
    typer.echo(secret)
    typer.echo(f"key {key.id} for {scope}; send it as `Authorization: Bearer <key>`", err=True)


@keys_app.command("list")
def keys_list() -> None:
    """Every key: id, tenant, name, first characters, created, revoked."""
    from ingest_worker import api_keys
    from ingest_worker.database import connect

    with connect(runtime.database_url()) as conn:
        rows = api_keys.listing(conn)
    for key in rows:
        revoked = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
        typer.echo(
            f"{key.id:>4}  {key.prefix}…  {key.tenant or '*admin*':<16} {key.name:<20} "
            f"created {key.created_at:%Y-%m-%d %H:%M}  {revoked}"
        )
    if not rows:
        typer.echo("no API keys (create one: freshindex keys create --tenant NAME)")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="The key's id (see `list`).")]) -> None:
    """Revoke a key; requests with it are refused from the next one on."""
    from ingest_worker import api_keys
    from ingest_worker.database import connect

    with connect(runtime.database_url()) as conn:
        if not api_keys.revoke(conn, key_id):
            typer.echo(f"no active key {key_id} (see `freshindex keys list`)", err=True)
            raise typer.Exit(1)
    typer.echo(f"revoked key {key_id}")
