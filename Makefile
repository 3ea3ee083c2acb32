# The README's two commands: `make run` and `make test`. Both create the virtual
# environment on first use and install everything into it (torch pinned in pyproject.toml).
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install run test test-long lint format bench bench-retrieval bench-peers test-deps clean \
	kafka-up kafka-down cdc-up cdc-down

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --python $(PY) --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: install  ## watch ./inbox and serve search on http://127.0.0.1:8000
	$(BIN)/freshindex up

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint test-deps  ## unit + integration tests (real Postgres+pgvector, Kafka, model, files, HTTP, browser)
	$(BIN)/pytest $(PYTEST_ARGS)

test-deps:  ## Debian packages the tests use: Chromium (browser test), iproute2 (a network namespace)
	@command -v chromium >/dev/null && command -v ip >/dev/null || { \
	  echo "installing Debian's chromium and iproute2 for the tests (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq chromium iproute2 >/dev/null; \
	} || { echo "make test needs them: run 'sudo apt-get install chromium iproute2'"; exit 1; }

test-long: lint  ## the long variants of the randomized and fuzz tests
	FRESHINDEX_CHECK_SEQUENCES=2000 FRESHINDEX_FUZZ_EXAMPLES=20000 \
	FRESHINDEX_ATHERIS_RUNS=300000 $(BIN)/pytest --timeout=3600 $(PYTEST_ARGS) \
	tests/integration/test_model_check.py tests/unit/test_hostile_input.py

bench: install
	$(PY) -m bench.folder_ingest

bench-retrieval: install  ## nDCG@10, recall@100, latency per mode on ../shared/ir/cranfield
	$(PY) -m bench.retrieval $(BENCH_ARGS)

bench-peers: install  ## LangChain index() and CocoIndex beside freshindex, each over its bare model
	$(PY) -m bench.peers.run $(BENCH_ARGS)

kafka-up: install  ## a genuine Apache Kafka 4 (KRaft) on 127.0.0.1:9092, data in .kafka/
	$(PY) -m kafka_dev.broker up --port 9092 --dir .kafka

kafka-down:
	$(PY) -m kafka_dev.broker down --dir .kafka

cdc-up: install  ## after kafka-up: Postgres (wal_level=logical) on :5433 + Kafka Connect with Debezium on :8083
	$(PY) -m kafka_dev.connect up --bootstrap 127.0.0.1:9092 --dir .cdc

cdc-down:
	$(PY) -m kafka_dev.connect down --dir .cdc

clean:
	rm -rf $(VENV) .freshindex .kafka .cdc kafka_dev/target .pytest_cache .mypy_cache .ruff_cache \
		bench/peers/.venvs
