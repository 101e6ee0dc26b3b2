# Churn Lakehouse. The README's two commands: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
ENV ?= local
export SPARK_LOCAL_IP ?= 127.0.0.1
export SUPPORT_API_TOKEN ?= local-dev-token
export PII_HASH_KEY ?= local-dev-pii-key
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup venv jars demo test test-fast bench clean-lake help

help:
	@echo "make setup   - create .venv, install pinned requirements, resolve JARs with Maven (idempotent)"
	@echo "make demo    - generate the simulated sources and run the pipeline end to end (env=$(ENV))"
	@echo "make test    - run the test suite"
	@echo "make bench   - run the benchmarks (results in bench-results/ and docs/)"

setup: venv jars

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip wheel
	$(VENV)/bin/pip install -q -r requirements.txt
	$(VENV)/bin/pip install -q --no-deps -e .
	@touch $@

jars: .jars/.resolved
.jars/.resolved: jvm/runtime/pom.xml jvm/minicluster/pom.xml
	rm -rf .jars/runtime .jars/minicluster
	mvn -q -B -f jvm/runtime/pom.xml dependency:copy-dependencies -DexcludeTransitive=true -DoutputDirectory=$(CURDIR)/.jars/runtime
	mvn -q -B -f jvm/minicluster/pom.xml dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/.jars/minicluster
	@touch $@

demo: setup
	$(VENV)/bin/lakehouse --env $(ENV) demo

test: setup
	$(PY) -m pytest tests $(PYTEST_ARGS)

bench: setup
	$(VENV)/bin/lakehouse --env $(ENV) bench ingest --scales 1,10 --days 4
	$(VENV)/bin/lakehouse --env $(ENV) bench validation --scales 1,10

test-fast: setup
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

clean-lake:
	rm -rf lake logs var
