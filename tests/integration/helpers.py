"""Small helpers over the real HTTP API."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from ingest_worker.events import DocumentEvent, Op


def search(api: httpx.Client, query: str, k: int = 10, **filters: Any) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"query": query, "k": k}
    if filters:
        body["filter"] = filters
    response = api.post("/v1/search", json=body)
    assert response.status_code == 200, response.text
    return list(response.json()["hits"])


def doc_ids(api: httpx.Client, query: str, k: int = 10) -> set[str]:
    return {hit["doc_id"] for hit in search(api, query, k)}


def document(api: httpx.Client, doc_id: str) -> dict[str, Any] | None:
    response = api.get(f"/v1/documents/{doc_id}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return dict(response.json())


def stats(api: httpx.Client) -> dict[str, Any]:
    response = api.get("/v1/stats")
    assert response.status_code == 200, response.text
    return dict(response.json())


def write(path: Path, text: str) -> Path:
    """Write like an editor that saves in place, and close the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def save_atomically(path: Path, text: str) -> None:
    """Write like an editor that saves to a temp file and renames it over the original."""
    temp = path.with_name(f".{path.name}.swp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def paragraphs(n: int, topic: str = "topic") -> str:
    """A Markdown document of n distinct paragraphs, each about 40 tokens."""
    sections = []
    for i in range(n):
        if i % 10 == 0:
            sections.append(f"## Part {i // 10}")
        sections.append(
            f"Paragraph {i} about {topic}: the {i}th observation records how sample {i} "
            f"behaved under condition {i * 7 % 13}, with notes on temperature, pressure, "
            f"duration and the operator's remarks for run number {i}."
        )
    return "# Long report\n\n" + "\n\n".join(sections) + "\n"


def upsert(doc_id: str, text: str, version: int | None = None, **fields: Any) -> DocumentEvent:
    """A plain-text upsert as a source would make it."""
    fields.setdefault("content_type", "text/plain")
    return DocumentEvent(
        doc_id=doc_id, op=Op.UPSERT, source="test", version=version, content=text.encode(), **fields
    )
