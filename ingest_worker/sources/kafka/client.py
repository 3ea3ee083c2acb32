"""kafka-python helpers: connection options, topic creation, end offsets, and `Publisher`,
the small Python API for producers (the `freshindex publish` command uses it)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from ingest_worker.errors import Retryable
from ingest_worker.parsing import detect_content_type
from ingest_worker.settings import Settings
from ingest_worker.sources.kafka import events as kafka_events

log = logging.getLogger(__name__)


def connection_options(settings: Settings) -> dict[str, Any]:
    """Bootstrap servers and the SASL/SSL options, in kafka-python's names."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers.split(","),
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password
    if settings.kafka_ssl_cafile:
        options["ssl_cafile"] = settings.kafka_ssl_cafile
    return options


def ensure_topic(settings: Settings, topic: str, partitions: int | None = None) -> None:
    """Create the topic with N partitions unless it exists (then leave it as it is)."""
    try:
        admin = KafkaAdminClient(**connection_options(settings), request_timeout_ms=10_000)
    except KafkaError as e:
        raise Retryable(
            f"cannot reach Kafka at {settings.kafka_bootstrap_servers} ({e}); is it running? "
            "(`make kafka-up` starts one on 127.0.0.1:9092)"
        ) from e
    try:
        if topic not in admin.list_topics():
            count = partitions or settings.kafka_partitions
            admin.create_topics([NewTopic(topic, count, 1 if _single_node(admin) else 3)])
            log.info("created topic %s with %d partitions", topic, count)
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def _single_node(admin: KafkaAdminClient) -> bool:
    return len(admin.describe_cluster().get("brokers", [])) < 3


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """partition → the offset the next message will get (so lag = end - 1 - applied)."""
    consumer = KafkaConsumer(
        **connection_options(settings), request_timeout_ms=10_000, enable_auto_commit=False
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        offsets = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: int(offset) for tp, offset in offsets.items()}
    finally:
        consumer.close()


@dataclass(frozen=True, slots=True)
class Published:
    """Where an event landed; `wait_for` is what a search can wait for (read-your-writes)."""

    doc_id: str
    topic: str
    partition: int
    offset: int
    version: int | None

    @property
    def wait_for(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


class Publisher:
    """Send document events to Kafka, keyed by doc_id, acks=all, idempotent.

    with Publisher(Settings()) as publisher:
        landed = publisher.upsert("handbook/leave.md", text="# Leave ...",
                                  content_type="text/markdown", metadata={"team": "hr"})
        publisher.delete("old.md")
    """

    def __init__(self, settings: Settings | None = None, *, create_topic: bool = True) -> None:
        self.settings = settings or Settings()
        self.topic = self.settings.kafka_topic
        if create_topic:
            ensure_topic(self.settings, self.topic)
        options = connection_options(self.settings)
        try:
            self._producer = KafkaProducer(
                **options, acks="all", enable_idempotence=True, linger_ms=5, compression_type=None
            )
        except KafkaError as e:
            raise Retryable(
                f"cannot reach Kafka at {self.settings.kafka_bootstrap_servers}: {e}"
            ) from e

    def upsert(self, doc_id: str, **fields: Any) -> Published:
        """Fields: text or content (bytes), content_type, version, title, metadata, tenant,
        event_time (default: now)."""
        if fields.get("event_time") is None:
            fields["event_time"] = datetime.now(UTC)
        return self._send(doc_id, **fields)

    def delete(
        self,
        doc_id: str,
        *,
        version: int | None = None,
        tenant: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Published:
        return self._send(
            doc_id,
            delete=True,
            version=version,
            tenant=tenant,
            event_time=datetime.now(UTC),
            extra=extra,
        )

    def tombstone(self, doc_id: str) -> Published:
        """A null value keyed by doc_id (the Kafka way to delete; ordered by offset)."""
        future = self._producer.send(self.topic, key=doc_id.encode(), value=None)
        meta = future.get(timeout=30)
        return Published(doc_id, meta.topic, meta.partition, meta.offset, None)

    def upsert_file(self, path: Path, doc_id: str | None = None, **fields: Any) -> Published:
        doc_id = doc_id or path.name
        fields.setdefault("content_type", guess_type(path.name))
        return self.upsert(doc_id, content=path.read_bytes(), **fields)

    def _send(self, doc_id: str, **fields: Any) -> Published:
        key, value = kafka_events.encode(doc_id, **fields)
        meta = self._producer.send(self.topic, key=key, value=value).get(timeout=30)
        return Published(doc_id, meta.topic, meta.partition, meta.offset, fields.get("version"))

    def send_raw(
        self,
        key: bytes | None,
        value: bytes | None,
        topic: str | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Published:
        future = self._producer.send(topic or self.topic, key=key, value=value, headers=headers)
        meta = future.get(timeout=30)
        return Published(
            (key or b"").decode("utf-8", "replace"), meta.topic, meta.partition, meta.offset, None
        )

    def flush(self) -> None:
        self._producer.flush()

    def close(self) -> None:
        self._producer.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def guess_type(filename: str) -> str | None:
    try:
        return detect_content_type(None, filename)
    except Exception:
        return None  # the worker dead-letters what it cannot parse, with the reason


def metadata_pairs(pairs: list[str]) -> Mapping[str, str]:
    """`k=v` strings from the command line → a dict."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--metadata takes key=value, not {pair!r}")
        result[key] = value
    return result
