# One entry point for people and CI.  `make book` and `make test` are the two
# commands the README promises; both create .venv on first use.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The gate runs lessons offline, in the quick profile, with static widgets.
LESSON_ENV := OMP_WAIT_POLICY=PASSIVE LESSONLIB_PROFILE=quick LESSONLIB_OFFLINE=1 LESSONLIB_STATIC=1 \
	TF_CPP_MIN_LOG_LEVEL=3 KERAS_BACKEND=tensorflow MPLBACKEND=module://matplotlib_inline.backend_inline
LESSONS_MD := $(sort $(wildcard lessons/[0-9]*.md))
LESSONS_NB := $(LESSONS_MD:.md=.ipynb)

.PHONY: help venv book test lint unit pairs nbval html execute sync timings clean lesson

help:
	@echo "make book   - create .venv, install, execute every lesson, build _build/html"
	@echo "make test   - every check: ruff, unit tests + doctests, pair gate, nbval, book build"
	@echo "make sync   - regenerate lessons/*.ipynb from the .md sources (keeps outputs)"
	@echo "make execute- re-execute every lesson in place (refreshes the reference outputs)"
	@echo "make timings- time each lesson under nbval and rewrite book/timings.md"
	@echo "make lesson L=03 - execute one lesson in place and check it under nbval"

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,dev]"
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check lessonlib tests .ci
	$(BIN)/ruff format --check lessonlib tests .ci

unit: $(STAMP)
	$(BIN)/python -m pytest -q --cov=lessonlib --cov-report=term --cov-fail-under=90 tests lessonlib

# The .md files are the sources: regenerate the .ipynb (keeping ids and outputs)
# and fail if that changed anything that is committed.
pairs: $(STAMP)
	$(BIN)/jupytext --to ipynb --update -q $(LESSONS_MD)
	git diff --exit-code --stat -- lessons

nbval: $(STAMP)
	$(LESSON_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider -o addopts= -o filterwarnings= \
		--nbval --nbval-current-env --nbval-cell-timeout=600 \
		--nbval-sanitize-with lessons/sanitize.cfg $(LESSONS_NB)

html: $(STAMP)
	rm -rf _build/html _build/.doctrees
	$(BIN)/jupyter-book build . -W -n --keep-going

sync: $(STAMP)
	$(BIN)/jupytext --to ipynb --update -q $(LESSONS_MD)

execute: sync
	for nb in $(LESSONS_NB); do \
		echo "executing $$nb"; \
		$(LESSON_ENV) $(BIN)/jupyter execute --inplace "$$nb"; \
	done
	$(BIN)/python .ci/clean_notebooks.py $(LESSONS_NB)

timings: $(STAMP)
	$(LESSON_ENV) $(BIN)/python .ci/time_lessons.py $(LESSONS_NB)

book: execute html

test: lint unit pairs nbval html

clean:
	rm -rf _build

# One lesson end to end while writing it: make lesson L=03
lesson: $(STAMP)
	$(MAKE) execute nbval LESSONS_MD="$(wildcard lessons/$(L)_*.md)"
