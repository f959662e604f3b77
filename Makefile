# Two commands on a fresh clone: `make demo` and `make test`.
# Each creates .venv (if missing) and installs the project into it first.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test results install clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The formatter and the linter (ruff, settings in pyproject.toml), then the tests: two
# workers, one test file each at a time (compiles are single-threaded; files share
# their module fixtures): about 10 minutes on 2 cores instead of about 19.
test: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -n 2 --dist loadfile

# Every number the README, the labels in artifacts/ and the studies' write-ups quote,
# computed from the run files: docs/results.md, then each study's own results.md.
results: $(STAMP)
	$(VENV)/bin/dreamer-report results --out docs/results.md
	$(PY) -m studies.shift_cartpole.results --out studies/shift_cartpole/results.md

# The main job on the shipped runs (artifacts/README.md says how they were made).
BASE := artifacts/atari100k_alien_baseline
ADAPT := artifacts/atari100k_alien_adapt
OUT := reports/atari100k_alien
BIN := $(VENV)/bin
# The dynamics-shift study (studies/shift_cartpole/): the pilot's four arms, scored after
# the shift, before it, and adapt against the placebo.
SHIFT := artifacts/shift_cartpole/gym_CartPole-v1
SHIFT_ARMS := $(SHIFT)_baseline $(SHIFT)_adapt $(SHIFT)_placebo $(SHIFT)_fixed
SHIFT_OUT := reports/shift_cartpole

demo: $(STAMP)
	$(BIN)/dreamer-report runs $(BASE) $(ADAPT)
	$(BIN)/dreamer-report compare $(BASE) $(ADAPT) --out $(OUT) --reps 50000
	$(BIN)/dreamer-report mask $(BASE) $(ADAPT) --out $(OUT)/mask
	$(BIN)/dreamer-report openloop $(BASE) $(ADAPT) --context 5 --horizon 45 --out $(OUT)/openloop
	$(BIN)/dreamer-report best-seed $(ADAPT) --video $(OUT)/best_seed_adapt_openloop.mp4
	@echo "demo: the report is $(OUT)/report.html (and report.pdf); figures, panels and video are beside it"
	@echo "demo: this trainer's Road Runner runs (size12m, GPU) beside the published DreamerV3, at equal env frames"
	$(BIN)/dreamer-report compare published:dreamerv3 artifacts/gpu_road_runner_size12m --out reports/road_runner_vs_published --reps 50000
	@echo "demo: the dynamics-shift experiment (studies/shift_cartpole/README.md), four arms, shift at env step 9,500"
	$(BIN)/dreamer-report compare $(SHIFT_ARMS) --frames 9500:13000 --metric iqm,mean \
	  --out $(SHIFT_OUT) --reps 50000
	$(BIN)/dreamer-report compare $(SHIFT_ARMS) --frames 6000:9500 --metric iqm,mean \
	  --out $(SHIFT_OUT)/before_shift --reps 50000 --no-report
	$(BIN)/dreamer-report compare $(SHIFT)_placebo $(SHIFT)_adapt --frames 9500:13000 \
	  --metric iqm,mean --out $(SHIFT_OUT)/adapt_vs_placebo --reps 50000 --no-report
	$(BIN)/dreamer-report mask $(SHIFT_ARMS) --out $(SHIFT_OUT)/mask
	@echo "demo: the shift report is $(SHIFT_OUT)/report.html; before_shift/, adapt_vs_placebo/ and mask/ beside it"

clean-venv:
	rm -rf $(VENV)
