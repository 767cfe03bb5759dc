# Two entry points for a fresh machine (see README): `make demo` and `make test`.
# Both create .venv on first use; torch is pinned to the CPU build that lies on disk.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(VENV)/bin/pip

.PHONY: setup demo test test-slow paper clean-venv

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev,minari,sb3]'
	touch $@

# The main job on its embedded default: the smoke study (every question, both imitators, 3 rungs),
# resumed if it was interrupted; prints the summary table.
demo: setup
	$(PY) -m experiments.study --preset smoke --out runs/study-smoke --resume

# The default study (resumable: ~2.5 h on 2 cores) and the default scaling sweep (~2.3 h more from an empty cache, measured; less reusing
# the study's models), then the paper's figures and REPORT.md from them.
# The study's tables and cell records are committed in experiments/results/study-default (not under
# paper/, which each run of experiments.paper replaces whole): this resumes them
# (only cells not yet recorded run), then redraws paper/.
paper: setup
	$(PY) -m experiments.study --preset default --out experiments/results/study-default --resume
	$(PY) -m experiments.scaling --preset default --out experiments/results/scaling-default --resume
	$(PY) -m experiments.paper --study experiments/results/study-default --scaling experiments/results/scaling-default --out paper --formats png

test: setup
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

clean-venv:
	rm -rf $(VENV)
