# Two entry points for a fresh clone: `make reproduce` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install reproduce full test sync docs browser bench determinism clean

$(STAMP): settings.ini setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,cluster]"
	touch $(STAMP)

install: $(STAMP)

reproduce: install
	$(VENV)/bin/ilmarket reproduce --profile quick

full: install
	$(VENV)/bin/ilmarket reproduce --profile full --out reports/full

# notebooks, library and README must agree with what is committed
sync: install
	$(VENV)/bin/nbdev_export
	git diff --exit-code -- ilmarket
	test -z "$$(git status --porcelain -- ilmarket)"
	$(VENV)/bin/nbdev_clean
	git diff --exit-code -- nbs
	$(PY) tools/nb2readme.py
	git diff --exit-code -- README.md

# the docs site in _docs/: nbdev's processed notebooks rendered by Sphinx + MyST-NB (no Quarto; see tools/build_docs.py)
docs: install
	$(PY) tools/build_docs.py --out _docs

# Debian's Chromium, which the browser tests of the docs site drive (tests/test_docs.py)
browser:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# the suite on one worker per core, at most 4, each single-threaded (a file per worker; tests/conftest.py orders them)
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)

test: install sync browser docs
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --durations=25 tests

# speed figures with their baselines → reports/bench/bench.json and BENCH.md (see bench/README.md)
bench: install
	$(PY) bench/run.py

# every stage notebook in three fresh processes (OMP_NUM_THREADS=1 and unset): lists any cell whose outcome or output differs
determinism: install
	$(PY) tools/nb_determinism.py --runs 3

clean:
	rm -rf reports/quick _docs _proc
