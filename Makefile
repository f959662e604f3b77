# Two commands on a fresh clone: `make demo` and `make test`.
# Each creates .venv (if missing) and installs the project into it first.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test install clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

# The main job on the shipped runs (artifacts/README.md says how they were made).
BASE := artifacts/atari100k_alien_baseline
ADAPT := artifacts/atari100k_alien_adapt
OUT := reports/atari100k_alien
BIN := $(VENV)/bin

demo: $(STAMP)
	$(BIN)/dreamer-report runs $(BASE) $(ADAPT)
	$(BIN)/dreamer-report compare $(BASE) $(ADAPT) --out $(OUT) --reps 50000
	$(BIN)/dreamer-report mask $(BASE) $(ADAPT) --out $(OUT)/mask
	$(BIN)/dreamer-report openloop $(BASE) $(ADAPT) --context 5 --horizon 45 --out $(OUT)/openloop
	$(BIN)/dreamer-report best-seed $(ADAPT) --video $(OUT)/best_seed_adapt_openloop.mp4
	@echo "demo: the report is $(OUT)/report.html (and report.pdf); figures, panels and video are beside it"

clean-venv:
	rm -rf $(VENV)
