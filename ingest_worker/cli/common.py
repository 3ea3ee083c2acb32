"""What every `freshindex` command shares: settings, logging, signals, the database."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from ingest_worker import logs
from ingest_worker.settings import Settings


def settings_from(**overrides: Any) -> Settings:
    """Settings from the environment; flags that were given override; logging set up."""
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    logs.configure(settings.log_level, settings.log_format)
    return settings


def serve_worker_metrics(settings: Settings) -> None:
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.metrics_host)


def stop_on_sigterm(stop: threading.Event) -> None:
    def handle(signum: int, _: object) -> None:
        logging.getLogger(__name__).info("signal %d: finishing the batch in hand", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def database_url() -> str:
    """The database, started if embedded, with pending migrations applied."""
    from ingest_worker import runtime

    return runtime.prepare_database(settings_from(log_level="WARNING"))
