# Two commands on a fresh clone: `make demo` (the tiny recipe end to end) and `make test`.
VENV ?= .venv
PYTHON ?= python3
RECIPE ?= config/tiny.yaml
CORES ?= 2
# pytest-xdist processes for `make test` (the suite's long tests mostly wait on subprocesses)
TEST_WORKERS ?= 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.reprolm-installed

.PHONY: demo test lint install clean-artifacts bench

# torch first, pinned to the CPU build (any other torch spec pulls a multi-GB CUDA build);
# then the project with its locked versions.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	# DS_BUILD_OPS=0: DeepSpeed builds no CUDA ops at install (CPU ops compile on first use).
	DS_BUILD_OPS=0 $(BIN)/python -m pip install -q -c requirements.lock -e '.[test]'
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/reprolm plan --recipe $(RECIPE) > /dev/null  # a bad recipe: one clear message
	$(BIN)/snakemake --profile workflow/profiles/local --cores $(CORES) --configfile $(RECIPE)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/reprolm dvc sync --check
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope

bench: $(STAMP)
	$(BIN)/python benchmarks/workflow_stages.py --recipe $(RECIPE)

clean-artifacts:
	rm -rf artifacts logs .snakemake
