# Two entry points on a fresh machine: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
DEMO_DB ?= demo/broker.db
DEMO_AS_OF ?= 2020-04-16
# Outcomes (fixtures/directory/outcomes.csv) arrive over the following weeks; progress is shown after them.
DEMO_REPORT_AS_OF ?= 2020-06-01
DEMO_TARGET ?= fixtures/directory/target.toml
PYTEST_ARGS ?=

.PHONY: demo test lint bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	rm -rf demo && mkdir -p demo/inbox
	cp fixtures/opportunities/*.json fixtures/opportunities/*.csv fixtures/opportunities/*.jsonl demo/inbox/
	$(BIN)/broker --db sqlite:///$(DEMO_DB) init
	$(BIN)/broker --db sqlite:///$(DEMO_DB) directory import fixtures/directory/vcses.csv --consortia fixtures/directory/consortia.csv
	@echo "--- the nightly job on the shipped fixtures (business date $(DEMO_AS_OF)) ---"
	$(BIN)/broker --db sqlite:///$(DEMO_DB) nightly --inbox demo/inbox --outbox demo/outbox --as-of $(DEMO_AS_OF) \
	  --target-config $(DEMO_TARGET) \
	  || test $$? -eq 4
	@echo "--- what was loaded ---"
	$(BIN)/broker --db sqlite:///$(DEMO_DB) opportunities list --open-on $(DEMO_AS_OF) --limit 8
	@echo "--- matches for one VCSE, with reasons ---"
	$(BIN)/broker --db sqlite:///$(DEMO_DB) matches list --party wm-0003 --limit 3
	@echo "--- one digest, as the VCSE receives it ---"
	$(BIN)/broker --db sqlite:///$(DEMO_DB) digest show --outbox demo/outbox --text \
	  "$$($(BIN)/broker --db sqlite:///$(DEMO_DB) digest build --as-of $(DEMO_AS_OF) --outbox demo/outbox --json \
	     | $(BIN)/python -c 'import json,sys; print(json.load(sys.stdin)["digests"][0]["id"])')"
	@echo "--- outbox only: the officer sends the digests by hand, then marks them sent (now they are introduced) ---"
	$(BIN)/broker --db sqlite:///$(DEMO_DB) digest mark-sent --all-pending --as-of $(DEMO_AS_OF) --note "sent from the office mailbox" | tail -1
	@echo "--- outcomes the officer recorded over the next weeks (fixtures/directory/outcomes.csv) ---"
	$(BIN)/broker --db sqlite:///$(DEMO_DB) outcome import fixtures/directory/outcomes.csv --as-of $(DEMO_REPORT_AS_OF) \
	  --config $(DEMO_TARGET)
	$(BIN)/broker --db sqlite:///$(DEMO_DB) report --html demo/outbox/report.html --as-of $(DEMO_REPORT_AS_OF) \
	  --config $(DEMO_TARGET)
	@echo "--- progress toward the £1m target on $(DEMO_REPORT_AS_OF) (report: demo/outbox/report.html) ---"
	$(BIN)/broker --db sqlite:///$(DEMO_DB) target --as-of $(DEMO_REPORT_AS_OF) --config $(DEMO_TARGET)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check broker tests bench

bench: $(STAMP)
	$(BIN)/python bench/ingest_bench.py

clean:
	rm -rf $(VENV) demo broker.db
