# The two commands of the README: `make dev` and `make test`. Both install from uv.lock.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# uv itself, pinned, in a venv of its own (a machine's own uv, if any, is not used).
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
# uv may not download an interpreter: it uses $(PYTHON) (3.11 or newer).
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
SYNC := $(UV) sync --frozen --python $(PYTHON)

.PHONY: install install-dev dev test docs test-latest test-lowest lock lint format bench bench-events bench-raffle bench-faults bench-sizing clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# The runtime packages only (`--inexact` keeps the dev extras if a test run installed them).
install: $(UV)
	$(SYNC) --inexact

install-dev: $(UV)
	$(SYNC) --extra dev

dev: install
	$(BIN)/jackpot-gateway dev

test: install-dev
	$(BIN)/python -m pytest

# Not part of CI's required path: the newest releases pyproject.toml allows (test-latest) and
# the oldest (test-lowest), each in a venv of its own, so that a release that breaks us is
# found here first and the declared lower bounds stay true.
# $(call fresh-run,VENV,RESOLUTION): resolve pyproject.toml's ranges afresh into VENV, run the suite.
define fresh-run
	rm -rf $(1) && $(PYTHON) -m venv $(1)
	$(UV) pip compile pyproject.toml --extra dev $(2) --python $(PYTHON) --quiet -o $(1)/requirements.txt
	$(UV) pip install --python $(1)/bin/python --quiet -r $(1)/requirements.txt -e .
	$(1)/bin/python -m pip list --format=freeze 2>/dev/null | grep -iE '^(redis|rq|quart|hypercorn|marshmallow|joserfc|fakeredis|apscheduler)==' || true
	$(1)/bin/python -m pytest
endef

test-latest: $(UV)
	$(call fresh-run,.venv-latest,--upgrade)

test-lowest: $(UV)
	$(call fresh-run,.venv-lowest,--resolution lowest-direct)

# After changing a dependency in pyproject.toml: refresh uv.lock (commit both).
lock: $(UV)
	$(UV) lock --python $(PYTHON)

# The documentation site (docs/, mkdocs.yml), built strictly: a broken link or anchor fails.
docs: install-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install-dev
	$(BIN)/python -m bench.contribute $(BENCH_ARGS)

bench-events: install-dev
	$(BIN)/python -m bench.events

bench-raffle: install-dev
	$(BIN)/python -m bench.raffle

bench-faults: install-dev
	$(BIN)/python -m bench.faults $(BENCH_ARGS)

# Redis bytes per contribution, player, raffle holder and day (10^6 contributions: minutes).
bench-sizing: install-dev
	$(BIN)/python -m bench.sizing $(BENCH_ARGS)

clean:
	rm -rf site $(VENV) .venv-latest .venv-lowest $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
