"""`freshindex publish`: send document events to Kafka."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ingest_worker import runtime


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
    from ingest_worker.sources.folder.roots import walk
    from ingest_worker.sources.kafka.client import Publisher, metadata_pairs

    settings = runtime.settings_from(
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
