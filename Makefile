# The two commands a fresh machine needs: `make demo` and `make test`.
# Both create the virtual environment in .venv and install the package with every extra,
# pinned by constraints.txt (torch must be the CPU build on this machine's disk).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Tests run in two worker processes; one BLAS thread each keeps the two cores from being oversubscribed.
TEST_ENV := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg
PYTEST_ARGS ?=

.PHONY: demo test test-slow lint bench bench-quick clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[all,test]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m latentmix.demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

test: lint
	$(TEST_ENV) $(VENV)/bin/pytest -n 2 $(PYTEST_ARGS)

# The slow tests: mclust quality bars (the fourteen-model grid included, about 4 minutes),
# the Dask worker-kill test, the VAE digits bar. SLOW_SELECT narrows them (pytest -k).
SLOW_SELECT ?=
test-slow: $(STAMP)
	$(TEST_ENV) $(VENV)/bin/pytest -n 2 --runslow -m slow $(SLOW_SELECT)

bench: $(STAMP)
	$(PY) benchmarks/run.py

bench-quick: $(STAMP)
	$(PY) benchmarks/run.py --quick

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
