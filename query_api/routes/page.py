"""GET /: the search page for people (its assets are mounted at /static by the app)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter()


@router.get("/", include_in_schema=False)
def search_page() -> FileResponse:
    """The search page for people: results, live index status and change feed."""
    return FileResponse(STATIC / "index.html")
