"""What an API process holds while it runs: the pools, the model, the change listener and the
Kafka lag probe. One `ApiState` per app (`app.state.api`), opened and closed by its lifespan;
handlers get it with the `State` dependency."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Annotated, Any, TypeAlias

import psycopg_pool
from fastapi import Depends, Request
from pgvector.psycopg import register_vector
from prometheus_client import CollectorRegistry

from ingest_worker.embedding import Embedder
from query_api.bm25 import Bm25
from query_api.index_metrics import IndexCollector
from query_api.lag import CachedLatestOffsets
from query_api.listener import ChangeListener

log = logging.getLogger(__name__)

Pool: TypeAlias = psycopg_pool.ConnectionPool[Any]


class ApiState:
    def __init__(
        self,
        databases: tuple[str, str | None],  # the primary, and a replica for reads if any
        models: tuple[Callable[[], Embedder], Callable[[str], Embedder] | None],  # load, switch
        lag_probe: CachedLatestOffsets | None,
        require_keys: bool,
        bm25: Bm25,
    ) -> None:
        database_url, read_database_url = databases
        embedder_factory, load_model = models
        self.require_keys = require_keys
        self.bm25 = bm25
        self.lag_probe = lag_probe
        self.listener = ChangeListener(database_url, on_reconnect=self._check_pools)
        self.index_metrics = CollectorRegistry()  # index-wide gauges, read at scrape time
        self.index_metrics.register(IndexCollector(lambda: self.pool, self.lag_probe))
        self._database_url = database_url
        self._read_database_url = read_database_url
        self._embedder_factory = embedder_factory
        self._load_model = load_model
        self._model_lock = threading.Lock()
        self._embedder: Embedder | None = None
        self._pool: Pool | None = None
        self._read_pool: Pool | None = None

    def open(self) -> None:
        """Load the model, open the pools (in the background) and start listening."""
        self._embedder = self._embedder_factory()
        self._pool = _open_pool(self._database_url)
        self._read_pool = (
            _open_pool(self._read_database_url) if self._read_database_url else self._pool
        )
        self.listener.start()

    def _check_pools(self) -> None:
        """After the database was away: replace the pooled connections it broke (a restart
        breaks every idle one, and each would fail the next request that takes it)."""
        self.pool.check()
        if self.read_pool is not self.pool:
            self.read_pool.check()

    def close(self) -> None:
        self.listener.stop()
        self.pool.close()
        if self.read_pool is not self.pool:
            self.read_pool.close()

    @property
    def pool(self) -> Pool:
        """The primary: where workers commit and NOTIFY."""
        if self._pool is None:
            raise RuntimeError("the API is not started yet")
        return self._pool

    @property
    def read_pool(self) -> Pool:
        """Where searches and document reads go: a replica, or the primary."""
        if self._read_pool is None:
            raise RuntimeError("the API is not started yet")
        return self._read_pool

    def embedder_for(self, model: str | None) -> Embedder:
        """The loaded model, or `model` (which the index switched to) once loaded."""
        current = self._embedder
        if current is None:
            raise RuntimeError("the API is not started yet")
        if self._load_model is None or model is None or model == current.model_name:
            return current
        with self._model_lock:
            if self._embedder is None or self._embedder.model_name != model:
                log.info("the index switched to model %s; loading it", model)
                self._embedder = self._load_model(model)
            return self._embedder


def state_of(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


State: TypeAlias = Annotated[ApiState, Depends(state_of)]


def _open_pool(url: str) -> Pool:
    """Opened in the background: the API starts (and /readyz says why) while Postgres is away."""
    pool: Pool = psycopg_pool.ConnectionPool(
        url,
        min_size=3,  # a hybrid search ranks by keywords on two more connections (bm25)
        max_size=8,
        open=False,
        timeout=5.0,
        kwargs={"autocommit": True},
        configure=register_vector,
    )
    pool.open(wait=False)
    return pool
