# The two commands of the README: `make dev` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install dev test lint format bench bench-events bench-raffle clean

$(BIN)/jackpot-gateway: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

install: $(BIN)/jackpot-gateway

dev: install
	$(BIN)/jackpot-gateway dev

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m bench.contribute $(BENCH_ARGS)

bench-events: install
	$(BIN)/python -m bench.events

bench-raffle: install
	$(BIN)/python -m bench.raffle

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
