"""A genuine Apache Kafka 4 broker (KRaft, one node, 127.0.0.1, free port) per test session,
and `freshindex worker kafka` processes pointed at a test database."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from ingest_worker.settings import Settings
from ingest_worker.sources.kafka.client import Publisher, ensure_topic
from kafka_dev.broker import Broker

FRESHINDEX = str(Path(sys.executable).with_name("freshindex"))
_numbers = itertools.count()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = Broker(tmp_path_factory.mktemp("kafka")).start()
    yield broker
    broker.stop()


@dataclass
class KafkaSetup:
    """One topic and consumer group per test, so tests never see each other's events."""

    broker: Broker
    db_url: str
    topic: str
    group: str
    logs: Path
    # Divisible by 1, 2 and 3 workers: faust's sticky assignor caps each member at
    # ceil(partitions / members), so with 4 partitions a third member that joins after two
    # others hold 2 each gets none.
    partitions: int = 6
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _log_files: list[IO[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.db_url,
            "FRESHINDEX_KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap,
            "FRESHINDEX_KAFKA_TOPIC": self.topic,
            "FRESHINDEX_KAFKA_GROUP_ID": self.group,
            "FRESHINDEX_KAFKA_PARTITIONS": str(self.partitions),
            "FRESHINDEX_KAFKA_SESSION_TIMEOUT_S": "6",
            "FRESHINDEX_KAFKA_BATCH_WAIT_S": "0.05",
            "FRESHINDEX_DEBOUNCE_S": "0.1",
            "FRESHINDEX_MAX_FILE_BYTES": "500000",  # under Kafka's 1 MB message limit
        }

    @property
    def settings(self) -> Settings:
        fields = {
            k.removeprefix("FRESHINDEX_").lower(): v
            for k, v in self.env.items()
            if k.startswith("FRESHINDEX_")
        }
        overrides: dict[str, Any] = {**fields, "DATABASE_URL": self.db_url}
        return Settings(**overrides)

    def publisher(self) -> Publisher:
        return Publisher(self.settings)

    def spawn(self, *args: str, name: str = "worker", **env: str) -> subprocess.Popen[bytes]:
        """A freshindex process (default: `worker kafka`), output in logs/<name>.log. It runs
        in the logs folder: faust keeps a data folder in its working directory."""
        log = (self.logs / f"{name}.log").open("ab")
        self._log_files.append(log)
        process = subprocess.Popen(
            [FRESHINDEX, *(args or ("worker", "kafka"))],
            cwd=self.logs,
            env={**os.environ, **self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def kill_all(self) -> None:
        """SIGKILL whatever still runs and close the logs (every test ends with this)."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait()
        for log in self._log_files:
            log.close()

    def __enter__(self) -> KafkaSetup:
        return self

    def __exit__(self, *_: object) -> None:
        self.kill_all()

    def running(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.processes if p.poll() is None]

    def log_text(self, name: str = "worker") -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture
def kafka_setup(kafka_broker: Broker, db_url: str, tmp_path: Path) -> Iterator[KafkaSetup]:
    n = next(_numbers)
    setup = KafkaSetup(kafka_broker, db_url, f"docs-{n}", f"group-{n}", tmp_path)
    # Created before anything publishes: the broker would auto-create it with 1 partition.
    ensure_topic(setup.settings, setup.topic)
    with setup:
        yield setup
