# Two entry points on a fresh machine: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
DEMO_DB ?= demo/broker.db
PYTEST_ARGS ?=

.PHONY: demo test lint bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf demo && mkdir -p demo
	$(BIN)/broker --db sqlite:///$(DEMO_DB) init
	-$(BIN)/broker --db sqlite:///$(DEMO_DB) ingest fixtures/opportunities
	$(BIN)/broker --db sqlite:///$(DEMO_DB) directory import fixtures/directory/vcses.csv --consortia fixtures/directory/consortia.csv
	$(BIN)/broker --db sqlite:///$(DEMO_DB) opportunities list --limit 15
	$(BIN)/broker --db sqlite:///$(DEMO_DB) directory list --limit 10

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check broker tests bench

bench: $(STAMP)
	$(BIN)/python bench/ingest_bench.py

clean:
	rm -rf $(VENV) demo broker.db
