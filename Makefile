# The two commands: `make demo` (run the platform) and `make test` (run the whole suite).
.DEFAULT_GOAL := help
VENV := .venv
DP := $(VENV)/bin/dp
PYTEST := $(VENV)/bin/python -m pytest
SPARK40_PYTEST := .venv-spark40/bin/python -m pytest

.PHONY: help deps demo up stop status test lock jars-lock bundle bench clean

help:
	@echo "make demo    install, start the embedded stack, leave Airflow on http://localhost:8080"
	@echo "make stop    stop everything make demo started"
	@echo "make test    install and run the whole test suite (what CI runs)"
	@echo "make status  show the stack's processes"
	@echo "make bench   run the benchmarks (prints the README tables)"
	@echo "make lock    re-resolve requirements.lock from pyproject.toml"
	@echo "make jars-lock  re-resolve jvm/jars.sha256 from jvm/pom.xml"

deps:
	@scripts/install.sh

demo: deps
	@$(DP) up
	@$(DP) demo-data

up: demo

stop:
	@if [ -x $(DP) ]; then $(DP) down; fi

status: deps
	@$(DP) status

test: deps
	$(VENV)/bin/ruff check .
	@$(DP) build
	$(PYTEST) tests $(PYTEST_ARGS)
	@# The Spark unit tests once more on Spark 4.0.x (emr-spark-8.0.0's Spark): 4.1+-only APIs fail here,
	@# and the spark-4.0 jars are checked against pyspark 4.0's.
	$(SPARK40_PYTEST) tests/spark_apps tests/stack/test_jvm_jars.py -m "spark and not stack" $(PYTEST_ARGS)

bundle: deps
	@$(DP) build

bench: deps
	@$(DP) build
	$(VENV)/bin/python bench/bench_access_logs.py --lines 1000000 --lines 10000000
	$(VENV)/bin/python bench/bench_air_quality.py --rows 1000000
	$(VENV)/bin/python bench/bench_streaming.py --events 1000000 --latency-rates 1000
	$(VENV)/bin/python bench/bench_weather.py
	$(VENV)/bin/python bench/bench_turnstile.py
	$(VENV)/bin/python bench/bench_websocket.py --events 50000
	$(VENV)/bin/python bench/bench_app_events.py --events 1000000
	$(VENV)/bin/python bench/bench_energy_join.py --readings 200000 --latency-rate 1000 --latency-seconds 180

lock:
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

jars-lock: deps
	$(VENV)/bin/python -m include.platform.jvm lock

clean:
	rm -rf build .pytest_cache
