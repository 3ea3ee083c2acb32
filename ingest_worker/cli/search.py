"""`freshindex search`: query the index through the HTTP API."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
import typer


def search(
    text: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", help="How many hits.")] = 10,
    mode: Annotated[
        str, typer.Option(help="hybrid (both fused), vector (meaning) or keyword (BM25 words).")
    ] = "hybrid",
    chunks: Annotated[
        bool,
        typer.Option(
            "--chunks", help="List the best chunks (a document may repeat) instead of documents."
        ),
    ] = False,
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
    """Search the index through the HTTP API: the k best documents, each with its best
    chunk (or with --chunks, the k best chunks)."""
    body = {
        "query": text,
        "k": k,
        "mode": mode,
        "group_by": None if chunks else "document",
        "chunks_per_document": 1,
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
    else:
        _print_hits(answer)


def _print_hits(answer: dict[str, Any]) -> None:
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
