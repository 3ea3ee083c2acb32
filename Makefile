# The README's two commands: `make run` and `make test`. Both create the virtual
# environment on first use and install everything into it (torch pinned in pyproject.toml).
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install run test lint format bench clean

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

test: lint  ## unit + integration tests (real Postgres+pgvector, model, files, HTTP)
	$(BIN)/pytest $(PYTEST_ARGS)

bench: install
	$(PY) -m bench.folder_ingest

clean:
	rm -rf $(VENV) .freshindex .pytest_cache .mypy_cache .ruff_cache
