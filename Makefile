# Set-up and everyday commands. Each target installs what it needs into .venv first.
#   make demo   - the built-in default job end to end (synthetic MIND, offline)
#   make test   - lint + the test suite (make test-fast: the fast lane)
PYTHON ?= python3
VENV ?= .venv
# torch is installed on its own first: an unpinned resolve would pull a multi-GB CUDA build on
# machines that only need the CPU wheel. Override for another build, e.g. make TORCH='torch==2.13.0+cu128'.
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench bench-speed clean services

demo: $(STAMP)
	$(BIN)/mmnewsrec demo
	@echo "The command line is $(BIN)/mmnewsrec (or: source $(BIN)/activate, then mmnewsrec --help)."

# The tests run in one process per core, at most four (pytest-xdist), each taking whole test files
# so that a file's fixtures are built once; make test PYTEST_PROCESSES='-n 0' runs them in one.
PYTEST_PROCESSES ?= -n auto --maxprocesses 4 --dist loadfile

test: $(STAMP) services
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest -q $(PYTEST_PROCESSES)

# The fast lane: every test not marked slow (the slow ones start servers, browsers, several processes).
test-fast: $(STAMP) services
	$(BIN)/pytest -q -m "not slow" $(PYTEST_PROCESSES)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/parse_mind.py
	$(BIN)/python benchmarks/metrics_speed.py

# Training and evaluation speed with MiniLM on synthetic small (about 30 minutes on 2 cores).
bench-speed: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/eval_throughput.py

# What the tests start besides Python (on 127.0.0.1, stopped at the end), from the OS packages:
# Redis (user state), and Chromium with its driver (the web page's browser test).
SYSTEM_PACKAGES := redis-server chromium chromium-driver
services:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing (OS packages the tests use)"; \
	    apt-get install -y -q $$missing >/dev/null || { apt-get update -q && apt-get install -y -q $$missing; }; \
	  else echo "error: the tests need$$missing: sudo apt-get install -y$$missing" >&2; exit 1; fi; \
	fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c "import torch" 2>/dev/null || { echo "installing $(TORCH) (a few minutes)"; \
	  $(BIN)/python -m pip install --progress-bar on "$(TORCH)"; }
	@echo "installing mmnewsrec with its development extras into $(VENV) (a few minutes; pip lists each package)"
	$(BIN)/python -m pip install --progress-bar on -e ".[dev]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
