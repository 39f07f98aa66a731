# Everything goes through .venv, created on first use from the lock, requirements-dev.txt
# (every version pinned, every file's hash checked), compiled from pyproject.toml by
# `make lock`; requirements.txt is the same without the [dev] tools, for deployments.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv lock demo up test unit integration lint typecheck typecheck-all bench load soak clean focus-validator bqemulator azurite

venv: $(STAMP)

$(STAMP): requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# pip-tools, with the machine's pip configuration: the versions already in the two files
# are kept unless pyproject.toml rules them out (PIP_COMPILE_ARGS=--upgrade to move on).
LOCK := $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links $(PIP_COMPILE_ARGS)
lock: $(STAMP)
	$(LOCK) --extra all -o requirements.txt pyproject.toml
	$(LOCK) --extra all --extra dev -o requirements-dev.txt pyproject.toml

# KEEP=1 leaves redis-server, the worker and the API running at the end (for the web
# console); the demo prints the `kill` that stops them.
demo: $(STAMP)
	PIPELINE_OPS_DEMO_KEEP=$(KEEP) $(BIN)/python scripts/demo.py

# The Procfile's four processes (web, worker, beat, flower) in one terminal, with honcho:
# the metadata DB is migrated first (what the Procfile's `release` line does on a platform;
# no process migrates by itself), and `web` gets PORT (8001).
# Needs a running redis-server (REDIS_URL) and FLOWER_BASIC_AUTH=user:password, from the
# environment or a `.env` file, which honcho reads. Ctrl-C stops all four.
up: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho run pipeline-ops bootstrap
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start --port "$${PORT:-8001}" web worker beat flower

test: $(STAMP) focus-validator bqemulator azurite
	$(BIN)/pipeline-ops validate configs
	$(BIN)/python -m pytest tests/unit tests/integration -q

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

# The official FOCUS 1.3 validator, in its own Python 3.12 venv outside the repo.
focus-validator:
	bash scripts/focus_validator_venv.sh

integration: $(STAMP) focus-validator bqemulator azurite
	$(BIN)/python -m pytest tests/integration -q

# The BigQuery emulator for the warehouse tests: its own venv under ~/.cache, made once.
bqemulator: $(STAMP)
	$(BIN)/python -m tests.integration.bigquery_emulator install

# Azurite (Azure Blob Storage emulator, from npm) for the Azure export tests: installed once
# under ~/.cache/pipeline-ops/azurite.
azurite: $(STAMP)
	$(BIN)/python -m tests.support.azurite install

# The packages mypy finds clean, checked by `lint` (imports outside them are followed
# silently); `make typecheck-all` checks everything in [tool.mypy] and still has findings.
MYPY_CLEAN := pipeline/storage pipeline/runs pipeline/orgs pipeline/backfill.py \
	pipeline/notifications.py pipeline/queue.py quota credentials notify pipeline_ops_core \
	warehouse/base.py processors/base.py

# ruff, the import contracts of pyproject.toml ([tool.importlinter]) and the pipeline files.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo
	$(BIN)/mypy --follow-imports=silent $(MYPY_CLEAN)
	$(BIN)/pipeline-ops validate configs

# mypy on the packages it finds clean (MYPY_CLEAN), as `lint` runs it; the pre-commit hook
# `mypy` runs this. No $(STAMP) prerequisite: a hook must never reinstall the venv.
typecheck:
	$(BIN)/mypy --follow-imports=silent $(MYPY_CLEAN)

# mypy with the whole configuration of pyproject.toml ([tool.mypy]); its cache is
# .mypy_cache. Not part of `lint` or the hook: the existing code still has findings.
typecheck-all: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python tests/bench/run_all.py

# An open-loop ramp (10 -> 160 runs/s, 30 s a step, 50 orgs) against gunicorn + Celery +
# PostgreSQL on loopback, then the same ramp as raw Celery chains; prints the table and
# writes var/load/latency.png. About 8 minutes; not part of `make test`.
load: $(STAMP)
	$(BIN)/python tests/load/load_test.py

# The quota state machine of `make test` (tests/integration/test_quota_property.py) at
# length, on SQLite and PostgreSQL: fresh random examples each run, failures replayed
# first the next time. About 25 minutes with the defaults on 2 cores.
QUOTA_SOAK_EXAMPLES ?= 500
QUOTA_SOAK_STEPS ?= 100
soak: $(STAMP)
	QUOTA_SOAK_EXAMPLES=$(QUOTA_SOAK_EXAMPLES) QUOTA_SOAK_STEPS=$(QUOTA_SOAK_STEPS) \
		$(BIN)/python -m pytest tests/integration/test_quota_property.py -q -o timeout=0

clean:
	rm -rf var .pytest_cache
