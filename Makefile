# Two commands on a fresh machine with only python3:  make demo  |  make test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STORE ?= store
DEMO_DATE ?= 2026-11-20

.PHONY: demo test lint bench samples clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

## demo: set up, validate the bundled sample drop, run the daily job on it
demo: $(STAMP)
	$(BIN)/dibao ingest data/samples/drop
	$(BIN)/dibao run --inputs data/samples/drop --date $(DEMO_DATE) --store $(STORE) --replace
	@echo "--- why the first 应退尽退 household was flagged (dibao explain):"
	$(BIN)/dibao explain $$($(BIN)/python -c "import polars as pl; print(pl.read_parquet('$(STORE)/runs/$(DEMO_DATE)/exit_candidates.parquet').sort(pl.col('reasons').list.len(), descending=True)['dibao_household_id'][0])") --store $(STORE)

## test: set up and run the whole test suite
test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check dibao api tests benchmarks
	$(BIN)/mypy dibao api

## samples: regenerate the committed sample drop (deterministic)
samples: $(STAMP)
	rm -rf data/samples/drop data/samples/truth
	$(BIN)/dibao synth --households 300 --seed 20261120 --out data/samples/drop --truth data/samples/truth --date $(DEMO_DATE)

## bench: the ingestion benchmark (2 million households; needs several GB of disk and ~10 minutes)
bench: $(STAMP)
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) $(STORE) .pytest_cache .mypy_cache .ruff_cache
