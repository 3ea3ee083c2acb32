"""One settings object per process, read from `FRESHINDEX_*` variables and `DATABASE_URL`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting of freshindex; the README's settings table mirrors this class."""

    model_config = SettingsConfigDict(env_prefix="FRESHINDEX_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "FRESHINDEX_DATABASE_URL"),
        description="Postgres with pgvector >= 0.7; unset = embedded server in data_dir.",
    )
    read_database_url: str | None = Field(
        default=None,
        description="The API searches here (a streaming replica) while workers write to "
        "DATABASE_URL; read-your-writes waits for the replica to replay the awaited commits.",
    )
    data_dir: Path = Field(
        default=Path(".freshindex"), description="Where the embedded Postgres keeps its data."
    )
    model: str = Field(
        default="all-MiniLM-L6-v2",
        description="Embedding model: all-MiniLM-L6-v2 (shipped offline) or a local model path.",
    )
    embed_backend: Literal["auto", "torch", "openvino", "openvino-bf16", "onnx"] = Field(
        default="auto",
        description="What runs the model: auto = the fastest backend whose vectors match "
        "torch's (checked and timed here on first use); see `bench.embedders`.",
    )
    model_cache_dir: Path | None = Field(
        default=None,
        description="Where exported models are kept (built once); default: data_dir/models.",
    )
    embed_batch_size: int = Field(
        default=32, ge=1, description="Chunks per embedding call (torch backend)."
    )
    embed_batch_tokens: int = Field(
        default=8192,
        ge=256,
        description="Padded tokens per model call (exported backends; texts of similar length "
        "are batched together).",
    )
    chunk_max_tokens: int | None = Field(
        default=None, ge=16, description="Chunk size cap in model tokens; default: model maximum."
    )
    max_file_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1, description="Larger files/events become dead letters."
    )
    tenant: str = Field(default="default", description="Tenant of documents from folders.")
    rescan_interval_s: float = Field(
        default=300.0, gt=0, description="Periodic full rescan of watched folders (safety net)."
    )
    debounce_s: float = Field(
        default=0.3, ge=0, description="Quiet time after a file event before it is read."
    )
    delete_guard_share: float = Field(
        default=0.5,
        ge=0,
        description="Hold a folder reconcile or batch, or a Kafka micro-batch, that would "
        "delete more than this share of a source's documents (and more than "
        "delete_guard_min) until `freshindex confirm-deletes`; 1 turns the guard off.",
    )
    delete_guard_min: int = Field(
        default=20, ge=0, description="Deletes at once that the delete guard always allows."
    )
    cache_gc_grace_s: float = Field(
        default=3600.0,
        ge=0,
        description="Embedding-cache vectors no chunk uses are removed after this long unused "
        "(re-saving a file within it embeds nothing).",
    )
    cache_gc_interval_s: float = Field(
        default=60.0, ge=0, description="How often workers collect the embedding cache; 0 = off."
    )
    embed_claim_lease_s: float = Field(
        default=60.0,
        gt=0,
        description="A worker embedding a text claims it this long (renewed per slice); other "
        "workers wait for its vector instead of embedding it again.",
    )
    host: str = Field(default="127.0.0.1", description="HTTP API bind address.")
    port: int = Field(default=8000, ge=0, le=65535, description="HTTP API port.")
    api_keys: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Require API keys on /v1 (`freshindex keys`): auto = when the API listens "
        "beyond loopback.",
    )
    bm25_k1: float = Field(
        default=1.2, ge=0, description="BM25 term-frequency saturation (keyword search)."
    )
    bm25_b: float = Field(
        default=0.75, ge=0, le=1, description="BM25 length normalisation (keyword search)."
    )
    api_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The freshindex API that `freshindex mcp` (and other clients) talk to.",
    )
    api_key: str | None = Field(
        default=None, description="The API key clients send (`freshindex mcp`, `search`)."
    )
    mcp_port: int = Field(
        default=8765, ge=0, le=65535, description="`freshindex mcp --transport http` port."
    )
    log_level: str = Field(default="INFO", description="Python log level.")
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one object per line with doc_id, version, position."
    )

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Kafka brokers, comma-separated host:port."
    )
    kafka_topic: str = Field(default="freshindex.documents", description="Documents topic.")
    kafka_dlq_topic: str | None = Field(
        default=None, description="Where poison messages go; default: <topic>.dlq."
    )
    kafka_group_id: str = Field(default="freshindex", description="Consumer group of workers.")
    kafka_partitions: int = Field(
        default=8, ge=1, description="Partitions when freshindex creates the topic."
    )
    kafka_session_timeout_s: float = Field(
        default=10.0, gt=0, description="Consumer session timeout (failure detection)."
    )
    kafka_batch_size: int = Field(default=256, ge=1, description="Events per micro-batch.")
    kafka_batch_wait_s: float = Field(
        default=0.0,
        ge=0,
        description="How long a micro-batch waits for one more event once none is queued. "
        "0: an event on an idle worker is applied at once; under load a batch is every event "
        "that arrived while the previous one was embedded.",
    )
    kafka_security_protocol: str = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: str | None = Field(
        default=None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."
    )
    kafka_sasl_username: str | None = Field(default=None, description="SASL user.")
    kafka_sasl_password: str | None = Field(default=None, description="SASL password.")
    kafka_ssl_cafile: str | None = Field(default=None, description="CA bundle for SSL.")
    kafka_format: Literal["freshindex", "debezium"] = Field(
        default="freshindex",
        description="freshindex: our event contract; debezium: Debezium change events of "
        "one table, mapped to documents by the cdc_* settings.",
    )
    cdc_doc_id: str = Field(
        default="{id}",
        description="doc_id of a row: a template over its key columns, or one column name.",
    )
    cdc_text: str = Field(
        default="body", description='Text of a row: a column, or a template ("{title}\n{body}").'
    )
    cdc_title: str | None = Field(default=None, description="The column holding the title.")
    cdc_metadata: str = Field(
        default="", description="Columns copied into the metadata, comma-separated."
    )
    cdc_tenant: str = Field(default="default", description="Tenant of the table's documents.")
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Workers serve Prometheus metrics on <metrics_host>:<port>; 0 = off.",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Where workers' metrics listen; 0.0.0.0 in a container, for probes.",
    )
    worker_web_port: int = Field(
        default=0, ge=0, le=65535, description="faust's web server port (127.0.0.1); 0 = off."
    )

    @property
    def dlq_topic(self) -> str:
        return self.kafka_dlq_topic or f"{self.kafka_topic}.dlq"
