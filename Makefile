# Two commands on a fresh machine with only python3:  make demo  |  make test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_PACKAGES := $(VENV)/.test-packages
DEMO_DIR := .demo
STORE ?= $(DEMO_DIR)/store
DEMO_DATE ?= 2026-11-20
DEMO_DATE2 ?= 2026-11-21

.PHONY: demo test lint bench bench-api system-packages test-packages screenshots samples clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

## demo: set up, then run the daily job on two consecutive days of the bundled samples and show what changed
demo: $(STAMP)
	rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	$(BIN)/dibao ingest data/samples/drop
	@echo "=== day 1: $(DEMO_DATE)"
	$(BIN)/dibao run --inputs data/samples/drop --date $(DEMO_DATE) --store $(STORE)
	@echo "=== day 2: $(DEMO_DATE2) (a death, an income rise, a new monitored household)"
	$(BIN)/python -m dibao_synth.nextday data/samples/drop $(DEMO_DIR)/day2 --seed 1
	$(BIN)/dibao run --inputs $(DEMO_DIR)/day2 --date $(DEMO_DATE2) --store $(STORE)
	$(BIN)/dibao diff $(DEMO_DATE) $(DEMO_DATE2) --store $(STORE) --limit 10
	$(BIN)/dibao runs --store $(STORE)
	@echo "=== why the first 应退尽退 household was flagged (dibao explain):"
	$(BIN)/dibao explain $$($(BIN)/python -c "import polars as pl; print(pl.read_parquet('$(STORE)/runs/$(DEMO_DATE2)/exit_candidates.parquet').sort(pl.col('reasons').list.len(), descending=True)['dibao_household_id'][0])") --store $(STORE)
	@echo "=== work lists: $(STORE)/runs/$(DEMO_DATE2)/worklists/"
	@$(BIN)/python -c "import json; w = json.load(open('$(STORE)/runs/$(DEMO_DATE2)/manifest.json'))['worklists']; print(w['status'] + ':', chr(10).join(w['files'][:5]))"
	@$(BIN)/dibao demo-access --store $(STORE)

## test: set up (Python packages, and the system packages of test-packages) and run the whole test suite
test: $(STAMP) $(TEST_PACKAGES)
	$(BIN)/python -m pytest -n auto --dist loadscope

## test-packages: what the tests need beyond Python, from Debian's archive only (no browser download): chromium,
## LibreOffice Calc headless, fonts-noto-cjk, fonts-crosextra-carlito (scripts/test-packages.sh says why each).
## apt-get as root when one is missing, once (a stamp in the venv); otherwise a message, and those tests skip.
test-packages: $(TEST_PACKAGES)
$(TEST_PACKAGES): scripts/test-packages.sh
	@mkdir -p $(VENV)
	@bash scripts/test-packages.sh $@

## screenshots: regenerate docs/screenshots/ (the web pages in headless Chromium)
screenshots: $(STAMP) $(TEST_PACKAGES)
	$(BIN)/python -m dibao.serve.pages.screenshots

lint: $(STAMP)
	$(BIN)/ruff check dibao dibao_synth tests benchmarks
	$(BIN)/mypy dibao dibao_synth

## samples: regenerate the committed sample drop (deterministic)
samples: $(STAMP)
	rm -rf data/samples/drop data/samples/truth
	$(BIN)/dibao synth --households 300 --seed 20261120 --out data/samples/drop --truth data/samples/truth --date $(DEMO_DATE)

## bench: the ingestion benchmark (2 million households; needs several GB of disk and ~10 minutes)
bench: $(STAMP)
	$(BIN)/python benchmarks/ingest.py

## system-packages: what the benchmarks need beyond Python: wrk (the HTTP load generator of bench-api). Installed with
## apt-get when running as root and missing; otherwise says what to install. `make test` does not need it.
system-packages:
	@if command -v wrk >/dev/null 2>&1; then echo "wrk: $$(command -v wrk)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update && apt-get install -y wrk; \
	else echo "wrk is missing: install the Debian/Ubuntu package wrk (as root: apt-get install -y wrk)" >&2; exit 1; fi

## bench-api: the API under load (wrk, 50 connections, 2 workers) over the latest run of BENCH_STORE
BENCH_STORE ?= benchmarks/work/store-200000
bench-api: $(STAMP) system-packages
	$(BIN)/python benchmarks/api_load.py --store $(BENCH_STORE) --concurrency 50 --seconds 10 --workers 2

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
