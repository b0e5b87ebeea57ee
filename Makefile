# servetrace: two commands on a fresh machine, `make characterize` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TRACE ?= data/samples/burstgpt_sample.csv
NAME := $(firstword $(subst ., ,$(notdir $(TRACE))))
OUT ?= data/$(NAME)
ARGS ?=

.PHONY: setup consumers characterize ingest test bench bench-large bench-spark sample schema-check clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,spark]'
	$(BIN)/python -m compileall -q pipeline  # bytecode, as a non-editable install writes it (PYTHONDONTWRITEBYTECODE machines)
	touch $(STAMP)

characterize: $(STAMP)
	$(BIN)/servetrace characterize $(TRACE) --out $(OUT) $(ARGS)

ingest: $(STAMP)
	$(BIN)/servetrace ingest $(TRACE) --out $(OUT) $(ARGS)

# The consumers' released code (AIPerf, guidellm) the export tests run, in its own venv (kept across runs).
consumers:
	PYTHON=$(PYTHON) tests/consumers/env.sh

test: $(STAMP) consumers
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench.run $(ARGS)

bench-large: $(STAMP)
	$(BIN)/python -m bench.run --large $(ARGS)

# The stages on local Spark against DuckDB (10 M and 100 M rows by default; ARGS="--rows 1000000").
bench-spark: $(STAMP)
	$(BIN)/python -m bench.spark $(ARGS)

# Rebuild the committed default trace from its committed bundle (seeded, byte-identical).
sample: $(STAMP)
	$(BIN)/servetrace generate data/samples/burstgpt_sample.bundle.json --out data/samples/burstgpt_sample.csv --format burstgpt --seed 0

# After an edit of pipeline/schemas/bundle.schema.json: its validator as shipped Python, regenerated.
schema-check: $(STAMP)
	$(BIN)/python -c "from servetrace.bundle.model import bundle_schema; from servetrace.resources import write_schema_module; \
		print(write_schema_module(bundle_schema(), 'servetrace.bundle.schema_check', 'schemas/bundle.schema.json'))"

clean:
	rm -rf $(VENV) .venv-consumers .pytest_cache
