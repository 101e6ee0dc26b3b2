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

.PHONY: setup venv jars cds demo test test-fast lint bench clean-lake help airflow distributed walkthrough mlflow

help:
	@echo "make setup   - create .venv, install pinned requirements, resolve JARs with Maven, build the JVM class archive (idempotent)"
	@echo "make demo    - generate the simulated sources and run the pipeline end to end (env=$(ENV))"
	@echo "make test    - lint (ruff), then run the test suite"
	@echo "make lint    - ruff over the package, jobs, DAGs and tests"
	@echo "make bench   - run the benchmarks (results in bench-results/ and docs/)"
	@echo "make distributed - HDFS minicluster + Spark standalone master/worker on 127.0.0.1, daily jobs via spark://"
	@echo "make walkthrough - run the DAG for a date and screenshot Airflow and MLflow into docs/img/walkthrough"
	@echo "make airflow - Airflow standalone on http://127.0.0.1:8080 with this project's DAGs (SQLite metadata)"
	@echo "make mlflow  - the MLflow UI on http://127.0.0.1:5000 over the local tracking store (runs, models, champion)"

setup: venv jars cds

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

# The driver JVM's class-data-sharing archive (lakehouse/jvm_archive.py): jobs start ~8 s sooner.
# Optional: when it cannot be built, setup warns and jobs start without it.
cds: .jars/cds/spark-driver.jsa
.jars/cds/spark-driver.jsa: .jars/.resolved $(VENV)/.installed
	@echo "building the Spark driver's class archive (about a minute, once)"
	-$(PY) -m lakehouse.jvm_archive $@

demo: setup
	$(VENV)/bin/lakehouse --env $(ENV) demo

# Two pytest workers (pytest-xdist), each group of test files on one worker with its fixtures, longest
# groups first (tests/conftest.py); each worker has its session's Spark JVM. TEST_WORKERS=0 runs the
# suite in one process.
TEST_WORKERS ?= 2
test: setup lint
	$(PY) -m pytest tests $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder) $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check lakehouse jobs dags tests

bench: setup
	$(VENV)/bin/lakehouse --env $(ENV) bench ingest --scales 1,10 --days 4
	$(VENV)/bin/lakehouse --env $(ENV) bench validation --scales 1,10
	$(VENV)/bin/lakehouse --env $(ENV) bench insert --history 1,30,90
	$(VENV)/bin/lakehouse --env $(ENV) bench entities --subscriptions 1000000 --ages 30,120,365
	$(VENV)/bin/lakehouse --env $(ENV) bench features --customers 10000,100000,1000000 --history 30,365
	$(VENV)/bin/lakehouse --env $(ENV) bench train --customers 1000,10000,100000 --dates 10
	$(VENV)/bin/lakehouse --env $(ENV) bench jvm --runs 3
	$(VENV)/bin/lakehouse --env test bench cpu --days 3

test-fast: setup
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

clean-lake:
	rm -rf lake logs var

# Airflow standalone for local use: SQLite metadata under var/airflow, this project's DAGs, the Spark
# connection and Variables from the environment (no secrets in files), UI/API on 127.0.0.1 only.
AIRFLOW_ENV = AIRFLOW_HOME=$(CURDIR)/var/airflow AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT=8080 \
	AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin \
	AIRFLOW_CONN_SPARK_CHURN='{"conn_type":"spark","host":"local[2]"}' \
	AIRFLOW_VAR_CHURN_PROJECT_DIR=$(CURDIR) AIRFLOW_VAR_CHURN_ENV=$(ENV) \
	AIRFLOW_VAR_CHURN_JARS=$$(ls $(CURDIR)/.jars/runtime/*.jar | paste -sd,) PYSPARK_PYTHON=$(CURDIR)/$(PY)
airflow: setup
	@mkdir -p var/airflow
	@echo "Airflow on http://127.0.0.1:8080 - user admin, password in var/airflow/simple_auth_manager_passwords.json.generated"
	$(AIRFLOW_ENV) $(VENV)/bin/airflow standalone

mlflow: venv
	$(VENV)/bin/lakehouse --env $(ENV) mlflow --port $${MLFLOW_PORT:-5000}

distributed: setup
	$(VENV)/bin/lakehouse --env $(ENV) cluster local-run --days 1

walkthrough: setup
	$(VENV)/bin/pip install -q -r requirements-docs.txt
	$(VENV)/bin/lakehouse --env $(ENV) walkthrough --out docs/img/walkthrough
