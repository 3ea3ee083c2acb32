"""A real `freshindex api` process (the installed command) over a seeded test database,
shared by the integration tests of the client adapters (LangChain, LlamaIndex, MCP).

Keys are required: `keys` holds one per tenant and an admin key."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ingest_worker import api_keys, database, reindex
from ingest_worker.embedding import Embedder
from ingest_worker.pipeline import Pipeline
from ingest_worker.store import Store
from kafka_dev.broker import terminate
from tests.fix_db import TEMPLATE, _database
from tests.fix_services import free_port, wait_until
from tests.integration.helpers import upsert

FRESHINDEX = str(Path(sys.executable).with_name("freshindex"))
TENANTS = ("acme", "globex")
TOPICS = ("annual leave", "parental leave", "sick leave", "leave carry-over", "unpaid leave")


@dataclass
class IndexService:
    url: str
    db_url: str
    pipeline: Pipeline
    keys: dict[str, str]  # tenant → key, "admin" → an admin key


@contextmanager
def spawn_api(db_url: str, log: Path, **env: str) -> Iterator[str]:
    """`freshindex api` on a free loopback port until the block ends; yields its URL."""
    port = free_port()
    with log.open("ab") as out:  # the child keeps its own copy of the file
        process = subprocess.Popen(
            [FRESHINDEX, "api", "--port", str(port)],
            env={**os.environ, "DATABASE_URL": db_url, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, 180, "`freshindex api` to be ready")
        yield url
    finally:
        terminate(process, 60)


def seed(pipeline: Pipeline) -> None:
    """Five leave policies per tenant, plus one document only globex has."""
    pipeline.process(
        [
            upsert(
                f"policies/{topic.replace(' ', '-')}.md",
                f"{tenant.title()} policy on {topic}: how many days, who approves, and "
                f"how to request {topic} in the HR portal.",
                version=1,
                tenant=tenant,
                metadata={"team": "hr", "tenant_name": tenant},
            )
            for tenant in TENANTS
            for topic in TOPICS
        ]
        + [upsert("secret/merger.md", "Globex plans a merger.", version=1, tenant="globex")]
    )


@pytest.fixture(scope="module")
def index_service(
    pg_url: str, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IndexService]:
    with _database(pg_url, "service", TEMPLATE) as db_url, database.connect(db_url) as conn:
        store = Store(conn, embedder.model_name)
        reindex.activate(conn, store.model, embedder.dimensions)
        pipeline = Pipeline(store, embedder)
        seed(pipeline)
        keys = {t: api_keys.create(conn, t, f"{t} app")[0] for t in TENANTS}
        keys["admin"] = api_keys.create(conn, None, "ops")[0]
        log = tmp_path_factory.mktemp("api") / "api.log"
        with spawn_api(db_url, log, FRESHINDEX_API_KEYS="on") as url:
            yield IndexService(url, db_url, pipeline, keys)
