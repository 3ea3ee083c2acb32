"""A genuine single-node Apache Kafka (KRaft mode) on 127.0.0.1, for tests and development.

The jars come from Maven Central through `kafka_dev/pom.xml` (cached in ~/.m2); Java 17 runs
them. `python -m kafka_dev.broker up` starts one in the background on 127.0.0.1:9092 (data in
`.kafka/`), `python -m kafka_dev.broker down` stops it; `make kafka-up` / `make kafka-down`
call these. Tests use `Broker` directly, on a free port with a temporary log directory.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
CACHE = HERE / "target"


def classpath(pom: Path = POM) -> str:
    """The classpath of a pom's dependencies (the broker's by default), resolved by Maven
    once per pom version."""
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    cached = CACHE / f"classpath-{digest}.txt"
    if not cached.exists() or not all(Path(j).exists() for j in cached.read_text().split(":")):
        CACHE.mkdir(exist_ok=True)
        subprocess.run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(pom),
                "dependency:build-classpath",
                f"-Dmdep.outputFile={cached}",
            ],
            check=True,
        )
    return cached.read_text().strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    """One KRaft broker+controller process bound to 127.0.0.1 only."""

    log_dir: Path
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _config(self) -> Path:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        config = self.log_dir / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
                    f"CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={self.log_dir / 'data'}",
                    "num.partitions=1",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=4",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=true",
                    "",
                ]
            )
        )
        return config

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            "java",
            "-Xms256m",
            "-Xmx768m",
            "-XX:+UseG1GC",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            f"-Dkafka.logs.dir={self.log_dir / 'logs'}",
            "-cp",
            classpath(),
            main,
            *args,
        ]

    def start(self, *, timeout: float = 90.0) -> Broker:
        config = self._config()
        if not (self.log_dir / "data" / "meta.properties").exists():
            cluster_id = _cluster_id()
            subprocess.run(
                self._java(
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id,
                    "-c",
                    str(config),
                    "--ignore-formatted",
                ),
                check=True,
                stdout=subprocess.DEVNULL,
            )
        with (self.log_dir / "broker.log").open("ab") as log:  # the child keeps its copy
            self.process = subprocess.Popen(
                self._java("kafka.Kafka", str(config)),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Until the broker answers metadata requests (not merely accepts connections)."""
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"Kafka exited; see {self.log_dir / 'broker.log'}")
            try:
                admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
                admin.list_topics()
                admin.close()
                return
            except (KafkaError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Kafka on {self.bootstrap} not ready in {timeout}s"
                    ) from None
                time.sleep(0.3)

    def stop(self, timeout: float = 30.0) -> None:
        terminate(self.process, timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def terminate(process: subprocess.Popen[bytes] | None, timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited after `timeout` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding."""
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--port", type=int, default=9092)
    parser.add_argument("--controller-port", type=int, default=9093)
    parser.add_argument("--dir", type=Path, default=Path(".kafka"))
    args = parser.parse_args()
    pid_file = args.dir / "broker.pid"
    if args.action == "down":
        if not pid_file.exists():
            print("no broker running here", file=sys.stderr)
            return
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(300):
                os.kill(pid, 0)
                time.sleep(0.1)
        except ProcessLookupError:
            pass
        pid_file.unlink()
        print("Kafka stopped")
        return
    broker = Broker(args.dir.resolve(), args.port, args.controller_port).start()
    assert broker.process is not None
    pid_file.write_text(str(broker.process.pid))
    print(f"Kafka {broker.bootstrap} running (pid {broker.process.pid}); stop: make kafka-down")


if __name__ == "__main__":
    main()
