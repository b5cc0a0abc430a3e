# The two commands of the README, and the pieces they are made of.
# Every install step lives here, so a fresh clone needs only python3, java, mvn and make.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench kafka-start kafka-stop clean

# A fresh venv with the project (editable) and its test tools; redone when pyproject or the
# compiled collector fast path changes (the install compiles it: hatch_build.py).
$(STAMP): pyproject.toml hatch_build.py collector/_segment_fast.pyx
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Command 1: the real dataflow over the bundled sample events, no Kafka needed.
demo: $(STAMP)
	$(VENV)/bin/cdpflow demo

## Command 2: lint, type-check and the whole suite against a real local Kafka broker.
test: $(STAMP)
	VENV=$(VENV) bash scripts/test-all.sh

## The performance benchmark: one table against the ceiling and the framework (about an
## hour with 1M customers in state; needs the local broker: make kafka-start).
bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

kafka-start:
	bash docker/kafka-local.sh start

kafka-stop:
	bash docker/kafka-local.sh stop

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
