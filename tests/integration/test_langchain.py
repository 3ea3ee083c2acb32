"""The LangChain retriever against a real `freshindex api` process: langchain-tests'
standard retriever suite, then filters, tenants and read-your-writes."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import RetrieversIntegrationTests

from query_api.integrations.langchain import FreshindexRetriever
from tests.fix_api_process import IndexService
from tests.integration.helpers import upsert


class TestFreshindexRetrieverStandard(RetrieversIntegrationTests):
    service: IndexService

    @pytest.fixture(autouse=True)
    def _service(self, index_service: IndexService) -> None:
        type(self).service = index_service

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return FreshindexRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"url": self.service.url, "api_key": self.service.keys["acme"]}

    @property
    def retriever_query_example(self) -> str:
        return "how many days of leave can I take?"


def test_documents_carry_provenance_and_respect_filters(index_service: IndexService) -> None:
    retriever = FreshindexRetriever(
        url=index_service.url,
        api_key=index_service.keys["acme"],
        k=10,
        filter={"doc_id_prefix": "policies/sick"},
    )
    docs = retriever.invoke("sick days")
    assert [d.metadata["doc_id"] for d in docs] == ["policies/sick-leave.md"]
    meta = docs[0].metadata
    assert meta["version"] == 1 and meta["indexed_at"] and meta["tenant_name"] == "acme"
    assert docs[0].id == "policies/sick-leave.md#0" and "Acme policy" in docs[0].page_content


def test_a_tenant_key_never_sees_another_tenant(index_service: IndexService) -> None:
    retriever = FreshindexRetriever(url=index_service.url, api_key=index_service.keys["acme"])
    docs = retriever.invoke("merger plans", k=20)
    assert docs and {d.metadata["tenant_name"] for d in docs} == {"acme"}
    assert "secret/merger.md" not in {d.metadata["doc_id"] for d in docs}


def test_wait_for_returns_a_write_made_just_before(index_service: IndexService) -> None:
    retriever = FreshindexRetriever(
        url=index_service.url, api_key=index_service.keys["acme"], k=1, wait_timeout=10
    )
    fresh = upsert("policies/remote.md", "Acme remote work: two days a week.", 5, tenant="acme")
    late = threading.Timer(0.5, index_service.pipeline.process, [[fresh]])
    late.start()
    try:
        docs = retriever.invoke(
            "remote work days",
            wait_for=[{"doc_id": "policies/remote.md", "version": 5, "tenant": "acme"}],
        )
    finally:
        late.join()
    assert docs[0].metadata["doc_id"] == "policies/remote.md"
    assert docs[0].metadata["version"] == 5 and docs[0].metadata["fresh"] is True
