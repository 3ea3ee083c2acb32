"""The LlamaIndex retriever against a real `freshindex api` process: nodes with provenance,
through a RetrieverQueryEngine whose stub LLM echoes its prompt, and a wait for a fresh
write."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import TextNode

from query_api.integrations.llamaindex import FreshindexRetriever
from tests.fix_api_process import IndexService
from tests.integration.helpers import upsert


def retriever(service: IndexService, **options: Any) -> FreshindexRetriever:
    return FreshindexRetriever(service.url, api_key=service.keys["acme"], **options)


def test_nodes_carry_doc_id_version_and_indexed_at(index_service: IndexService) -> None:
    nodes = retriever(index_service, k=3).retrieve("how do I request parental leave?")
    assert len(nodes) == 3
    best = nodes[0]
    assert isinstance(best.node, TextNode) and best.score is not None
    assert best.node.metadata["doc_id"] == "policies/parental-leave.md"
    assert best.node.metadata["version"] == 1 and best.node.metadata["indexed_at"]
    assert best.node.node_id == "policies/parental-leave.md#0"
    assert {n.node.metadata["tenant_name"] for n in nodes} == {"acme"}


def test_nodes_flow_through_a_query_engine(index_service: IndexService) -> None:
    engine = RetrieverQueryEngine.from_args(
        retriever(index_service, k=2, filter={"doc_id_prefix": "policies/sick"}), llm=MockLLM()
    )
    response = engine.query("sick leave rules")
    assert [n.node.metadata["doc_id"] for n in response.source_nodes] == ["policies/sick-leave.md"]
    assert "Acme policy on sick leave" in str(response)  # the echoed context


def test_waits_for_a_fresh_write(index_service: IndexService) -> None:
    write = upsert("policies/gym.md", "Acme gym membership is paid.", 2, tenant="acme")
    late = threading.Timer(0.5, index_service.pipeline.process, [[write]])
    late.start()
    try:
        nodes = retriever(index_service, k=1, wait_timeout=10).retrieve_fresh(
            "gym membership", [{"doc_id": "policies/gym.md", "version": 2, "tenant": "acme"}]
        )
    finally:
        late.join()
    assert nodes[0].node.metadata["doc_id"] == "policies/gym.md"
    assert nodes[0].node.metadata["fresh"] is True


def test_async_retrieval_honours_wait_for(index_service: IndexService) -> None:
    index_service.pipeline.process(
        [upsert("policies/bike.md", "Acme bike leasing.", 3, tenant="acme")]
    )
    r = retriever(
        index_service,
        k=1,
        wait_for=[{"doc_id": "policies/bike.md", "version": 3, "tenant": "acme"}],
    )
    nodes = asyncio.run(r.aretrieve("bike leasing"))
    assert nodes[0].node.metadata["doc_id"] == "policies/bike.md"
