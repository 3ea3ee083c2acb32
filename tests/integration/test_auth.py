"""API keys and tenant isolation over real HTTP: a key reads its own tenant only, in search
hits, documents and the change feed; revoked keys stop at once; limits hold."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest_worker import api_keys
from ingest_worker.api_keys import required
from ingest_worker.database import connect
from ingest_worker.embedding import Embedder
from ingest_worker.events import DocumentEvent, Op
from ingest_worker.pipeline import Pipeline
from tests.fix_services import serve_api
from tests.integration.helpers import upsert

TENANTS = ("acme", "globex", "initech")
TOPICS = ("invoices", "holidays", "security", "onboarding", "travel")


@pytest.fixture
def secured(db_url: str, embedder: Embedder) -> Iterator[httpx.Client]:
    with serve_api(db_url, embedder, require_keys=True) as client:
        yield client


@pytest.fixture
def keys(db_url: str) -> dict[str, str]:
    """tenant → key, and "admin" → an admin key."""
    with connect(db_url) as conn:
        made = {t: api_keys.create(conn, t, f"{t} app")[0] for t in TENANTS}
        made["admin"] = api_keys.create(conn, None, "ops")[0]
    return made


@pytest.fixture
def three_tenants(pipeline: Pipeline) -> None:
    pipeline.process(
        [
            upsert(
                f"{tenant}-{topic}",
                f"{tenant.title()} policy on {topic}: how our team handles {topic}.",
                tenant=tenant,
            )
            for tenant in TENANTS
            for topic in TOPICS
        ]
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_auth_is_on_by_default_off_loopback() -> None:
    assert not required("auto", "127.0.0.1") and not required("auto", "::1")
    assert not required("auto", "localhost")
    assert required("auto", "0.0.0.0") and required("auto", "10.1.2.3")
    assert required("auto", "search.internal")
    assert required("on", "127.0.0.1") and not required("off", "0.0.0.0")


def test_every_v1_endpoint_needs_a_valid_key(secured: httpx.Client, keys: dict[str, str]) -> None:
    calls = [
        ("POST", "/v1/search", {"query": "policy"}),
        ("GET", "/v1/documents/acme-travel", None),
        ("GET", "/v1/stats", None),
        ("GET", "/v1/dead-letters", None),
        ("GET", "/v1/changes", None),
    ]
    for method, path, body in calls:
        for headers in ({}, bearer("fik_not-a-key")):
            response = secured.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (path, response.text)
            assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "freshindex keys create" in secured.get("/v1/stats").json()["detail"]
    assert secured.get("/healthz").status_code == 200  # probes stay open
    assert secured.get("/v1/stats", headers=bearer(keys["admin"])).status_code == 200


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    tenant=st.sampled_from(TENANTS),
    query=st.sampled_from(TOPICS) | st.text(min_size=1, max_size=40).filter(str.strip),
    mode=st.sampled_from(["vector", "keyword", "hybrid"]),
    k=st.integers(1, 100),
    prefix=st.none() | st.sampled_from(["", "a", "acme-", "globex-", "initech-t"]),
)
def test_a_tenant_key_never_sees_another_tenants_hits(
    secured: httpx.Client,
    keys: dict[str, str],
    three_tenants: None,
    tenant: str,
    query: str,
    mode: str,
    k: int,
    prefix: str | None,
) -> None:
    body: dict[str, object] = {"query": query, "mode": mode, "k": k}
    if prefix is not None:
        body["filter"] = {"doc_id_prefix": prefix}
    response = secured.post("/v1/search", json=body, headers=bearer(keys[tenant]))
    if "\x00" in query:  # Postgres text cannot hold NUL: refused, not a server error
        assert response.status_code == 422 and "NUL" in response.text
        return
    assert response.status_code == 200, response.text
    hits = response.json()["hits"]
    assert all(h["doc_id"].startswith(f"{tenant}-") for h in hits), hits
    if mode == "vector" and not prefix:
        assert len(hits) == min(k, len(TOPICS))  # its own documents are all there


def test_naming_another_tenant_is_refused(
    secured: httpx.Client, keys: dict[str, str], three_tenants: None
) -> None:
    acme = bearer(keys["acme"])
    for body in (
        {"query": "travel", "filter": {"tenant": "globex"}},
        {
            "query": "travel",
            "wait_for": [{"doc_id": "globex-travel", "version": 1, "tenant": "globex"}],
        },
    ):
        response = secured.post("/v1/search", json=body, headers=acme)
        assert response.status_code == 403 and "acme" in response.json()["detail"]
    own = secured.post(
        "/v1/search", json={"query": "travel", "filter": {"tenant": "acme"}}, headers=acme
    )
    assert own.status_code == 200
    assert secured.get("/v1/documents/acme-travel", headers=acme).status_code == 200
    assert secured.get("/v1/documents/globex-travel", headers=acme).status_code == 404
    assert secured.get("/v1/documents/globex-travel?tenant=globex", headers=acme).status_code == 403
    admin = bearer(keys["admin"])
    assert (
        secured.get("/v1/documents/globex-travel?tenant=globex", headers=admin).status_code == 200
    )
    assert secured.get("/v1/stats", headers=acme).status_code == 403


def test_the_change_feed_carries_only_the_keys_tenant(
    secured: httpx.Client, keys: dict[str, str], three_tenants: None
) -> None:
    seen: list[str] = []
    url = f"/v1/changes?api_key={keys['globex']}"  # as a browser's EventSource sends it
    with secured.stream("GET", url, headers={"Last-Event-ID": "0"}, timeout=10) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data:"):
                seen.append(line)
            if len(seen) == len(TOPICS):
                break
    assert len(seen) == len(TOPICS) and all('"globex-' in line for line in seen)


def test_a_tenant_key_lists_only_its_tenants_dead_letters(
    secured: httpx.Client, keys: dict[str, str], pipeline: Pipeline
) -> None:
    pipeline.process(
        [
            DocumentEvent(doc_id=f"{tenant}.pdf", op=Op.UPSERT, source="test", tenant=tenant,
                          content=b"%PDF-1.4 broken", content_type="application/pdf")
            for tenant in TENANTS
        ]
    )  # fmt: skip
    for tenant in TENANTS:
        response = secured.get("/v1/dead-letters", headers=bearer(keys[tenant]))
        assert response.status_code == 200
        assert [d["doc_id"] for d in response.json()] == [f"{tenant}.pdf"]
    everyone = secured.get("/v1/dead-letters", headers=bearer(keys["admin"])).json()
    assert sorted(d["doc_id"] for d in everyone) == sorted(f"{t}.pdf" for t in TENANTS)


def test_a_revoked_key_stops_working_at_once(
    secured: httpx.Client, keys: dict[str, str], db_url: str
) -> None:
    assert (
        secured.post("/v1/search", json={"query": "x"}, headers=bearer(keys["acme"])).status_code
        == 200
    )
    with connect(db_url) as conn:
        key_id = next(k.id for k in api_keys.listing(conn) if k.tenant == "acme")
        assert api_keys.revoke(conn, key_id)
        assert not api_keys.revoke(conn, key_id)  # already revoked
    response = secured.post("/v1/search", json={"query": "x"}, headers=bearer(keys["acme"]))
    assert response.status_code == 401


def test_only_digests_are_stored(keys: dict[str, str], db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        stored = b"".join(r[0] for r in conn.execute("SELECT key_digest FROM api_keys"))
        names = " ".join(str(r) for r in conn.execute("SELECT * FROM api_keys"))
    assert all(key.encode() not in stored and key not in names for key in keys.values())


def test_oversized_bodies_are_refused(api: httpx.Client) -> None:
    big = {"query": "x", "filter": {"metadata": {"k": "v" * 70_000}}}
    assert api.post("/v1/search", json=big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"query": "'
        yield b"y" * 70_000
        yield b'"}'

    response = api.post(
        "/v1/search", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
