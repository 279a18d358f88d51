# Two entry points for a fresh clone: `make reproduce` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install reproduce full test sync docs bench clean

$(STAMP): settings.ini setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
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

test: install sync
	$(PY) -m pytest -q -p no:cacheprovider tests

clean:
	rm -rf reports/quick _docs _proc
