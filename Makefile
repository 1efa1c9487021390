# plateseg — two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1

.PHONY: run test lint fmt bench bench-segment bench-accuracy bench-engine bench-aggregate \
	bench-pipeline bench-plan soak load audit synth serve clean system-deps train-model

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Runtime install: exactly requirements.lock (every transitive pin, each file checked against
# its sha256), then the library and handlers themselves, built without build isolation from
# the hashed setuptools of requirements-build.lock. The locks come from requirements*.txt
# through tools/lock.sh; tests/test_lock.py fails when they disagree.
$(VENV)/.runtime: $(BIN)/python requirements.lock requirements-build.lock pyproject.toml
	$(BIN)/pip install --quiet --require-hashes -r requirements-build.lock
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Development install: tests, linters, CDK, training (requirements-dev.lock, hashed; it holds
# the runtime pins at the same versions, so it changes nothing the runtime install put there).
$(VENV)/.dev: $(VENV)/.runtime requirements-dev.lock
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	touch $@

# System packages the test suite needs (PostgreSQL server binaries, Node.js for CDK).
system-deps:
	@bash .ci/system-deps.sh

run: $(VENV)/.runtime
	$(BIN)/plateseg demo-data DEMO-001
	$(BIN)/plateseg run DEMO-001
	$(BIN)/plateseg results DEMO-001 --compare-truth

test: $(VENV)/.dev system-deps node_modules/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadgroup

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Benchmarks print markdown tables (ratios against a baseline measured in the same run).
bench: bench-segment bench-accuracy bench-engine bench-aggregate bench-pipeline bench-plan

# Retrain the shipped learned nuclei model from ../shared/data/bbbc039-dev (~40 min, 2 cores).
train-model: $(VENV)/.dev
	$(BIN)/python tools/train_nuclei_net.py

bench-segment: $(VENV)/.dev
	$(BIN)/python bench/segment.py

bench-accuracy: $(VENV)/.dev
	$(BIN)/python bench/accuracy.py

bench-engine: $(VENV)/.dev
	$(BIN)/python bench/engine.py

bench-aggregate: $(VENV)/.dev system-deps
	$(BIN)/python bench/aggregate.py

bench-pipeline: $(VENV)/.dev
	$(BIN)/python bench/pipeline.py

# The planning model's predicted vs measured wall time of real local runs (issue: ±25%).
bench-plan: $(VENV)/.dev
	$(BIN)/python bench/plan.py

# Long crash-safety soak (not in make test): SIGKILL a local run at 20 random moments,
# resume each time, compare with an uninterrupted run.
soak: $(VENV)/.dev
	$(BIN)/python bench/resume_soak.py --kills 20

# Load test of the web API on loopback (make test runs a 5-s variant).
load: $(VENV)/.dev
	$(BIN)/python bench/load.py --clients 50 --seconds 20

# Dependency audit: pip-audit over .venv, npm audit over package-lock.json. Exit 1 on a
# vulnerability not in audit-allowlist.txt, 2 when no vulnerability service answered.
audit: $(VENV)/.dev
	bash tools/audit.sh

# Node tools pinned in package.json / package-lock.json: the CDK CLI (plain `npm install
# aws-cdk` gives 3.x, which refuses aws-cdk-lib 2) and axe-core for the accessibility tests.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

synth: $(VENV)/.dev node_modules/.installed
	$(BIN)/python app.py
	PATH=$(CURDIR)/$(BIN):$$PATH node_modules/.bin/cdk synth --quiet --no-notices

serve: $(VENV)/.runtime
	$(BIN)/plateseg serve

clean:
	rm -rf $(VENV) .plateseg cdk.out node_modules test-artifacts .pytest_cache .mypy_cache .ruff_cache
