# One entry point for people and CI.  `make book` and `make test` are the two
# commands the README promises; both create .venv on first use.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The gate runs lessons offline, in the quick profile, with static widgets.  The
# GPU workflow overrides PROFILE=full OFFLINE=0 NBVAL_MODE=--nbval-lax.
PROFILE ?= quick
OFFLINE ?= 1
NBVAL_MODE ?= --nbval
LESSON_ENV := OMP_WAIT_POLICY=PASSIVE LESSONLIB_PROFILE=$(PROFILE) LESSONLIB_OFFLINE=$(OFFLINE) LESSONLIB_STATIC=1 \
	TF_CPP_MIN_LOG_LEVEL=3 KERAS_BACKEND=tensorflow MPLBACKEND=module://matplotlib_inline.backend_inline
LESSONS_MD := $(sort $(wildcard lessons/[0-9]*.md))
LESSONS_NB := $(LESSONS_MD:.md=.ipynb)
STUDENT := _build/student
STUDENT_NB = $(patsubst lessons/%.md,$(STUDENT)/cnn-course-student/lessons/%.ipynb,$(LESSONS_MD))
PREFETCH_ARGS ?=

.PHONY: help venv book test lint unit pairs nbval html execute sync timings clean lesson \
	vendor student-build student browser meta prefetch timings-from-run

help:
	@echo "make book   - create .venv, install, execute every lesson, build _build/html"
	@echo "make test   - every check: ruff, unit tests + doctests, pair gate, nbval, book build,"
	@echo "              browser test, student edition, workflow/CITATION schemas + large-file guard"
	@echo "make sync   - regenerate lessons/*.ipynb from the .md sources (keeps outputs)"
	@echo "make execute- re-execute every lesson in place (refreshes the reference outputs)"
	@echo "make timings- time each lesson under nbval and rewrite book/timings.md"
	@echo "make lesson L=03 - execute one lesson in place and check it under nbval"
	@echo "make browser- open every page of _build/html in headless Chromium (after make html)"
	@echo "make student- build the student edition (no solutions) and execute it under nbval"
	@echo "               (STUDENT_EXEC=changed: only notebooks whose code differs from the lesson)"
	@echo "make meta   - workflow and CITATION.cff schemas, large-file guard"
	@echo "make prefetch - download the full-profile data and weights into LESSONLIB_CACHE"

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

# Each lesson runs in its own pytest process, so its wall time (kernel start and
# imports included) is measured and kept in _build/timings/nbval.tsv; `make
# timings-from-run` turns that file into book/timings.md.
nbval: $(STAMP)
	mkdir -p _build/timings
	: > _build/timings/nbval.tsv
	failed=0; \
	for nb in $(LESSONS_NB); do \
		start=$$(date +%s.%N); \
		if $(LESSON_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider -o addopts= -o filterwarnings= \
			$(NBVAL_MODE) --nbval-current-env --nbval-cell-timeout=600 \
			--nbval-sanitize-with lessons/sanitize.cfg "$$nb"; then status=passed; \
		else status=failed; failed=1; fi; \
		secs=$$(awk -v s="$$start" -v e="$$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'); \
		printf '%s\t%s\t%s\n' "$$nb" "$$secs" "$$status" >> _build/timings/nbval.tsv; \
		echo "nbval: $$nb $$status in $$secs s"; \
	done; \
	exit $$failed

# MathJax for the offline book, fetched from the npm registry (sha512-pinned).
vendor: $(STAMP)
	$(BIN)/python .ci/vendor_mathjax.py

# The student edition's notebooks and zip (cheap; the book links the zip).
student-build: $(STAMP)
	$(BIN)/python .ci/student_edition.py --out $(STUDENT) $(LESSONS_MD)

html: $(STAMP) vendor student-build
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

# book/timings.md from the per-lesson times of the last `make nbval` run
# (CI_SECONDS=N adds the wall time of a whole .ci/run).
timings-from-run:
	$(PYTHON) .ci/time_lessons.py --from-tsv _build/timings/nbval.tsv $(if $(CI_SECONDS),--ci-seconds $(CI_SECONDS))

book: execute html

# Every page of the built book in headless Chromium (skips loudly without a
# browser, except on CI).  Screenshots and report: _build/screenshots/.
browser: $(STAMP)
	$(BIN)/python .ci/browser_test.py --html _build/html --toc _toc.yml --screenshots _build/screenshots

# The student notebooks have no outputs: nbval only checks that no cell raises.
# STUDENT_EXEC=all executes every lesson a second time; STUDENT_EXEC=changed only
# the notebooks whose code differs from their lesson's (cells tagged `solution`).
STUDENT_EXEC ?= all
student: student-build
	nbs="$(STUDENT_NB)"; \
	if [ "$(STUDENT_EXEC)" = changed ]; then nbs="$$(cat $(STUDENT)/code-changed.txt)"; fi; \
	if [ -z "$$nbs" ]; then echo "student: no student notebook's code differs; nothing to run"; exit 0; fi; \
	$(LESSON_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider -o addopts= -o filterwarnings= \
		--rootdir=$(STUDENT) --nbval-lax --nbval-current-env --nbval-cell-timeout=600 $$nbs

meta: $(STAMP)
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.citation-file-format CITATION.cff
	$(BIN)/python .ci/check_large_files.py $$(git ls-files)

prefetch: $(STAMP)
	$(BIN)/python -m lessonlib.prefetch $(PREFETCH_ARGS)

test: lint unit pairs nbval html browser student meta

clean:
	rm -rf _build

# One lesson end to end while writing it: make lesson L=03
lesson: $(STAMP)
	$(MAKE) execute nbval LESSONS_MD="$(wildcard lessons/$(L)_*.md)"
