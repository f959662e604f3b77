#!/usr/bin/env bash
# Makes the dynamics-shift experiment (studies/shift_cartpole/README.md): the sweep
# studies/shift_cartpole/pilot.yaml (four arms, five seeds; its settings and why are there), run
# by dreamer-sweep (docs/sweeps.md) from the code of COMMIT (exported with git archive,
# so uncommitted edits never run). Usage, from the repo root; options go to `dreamer-sweep run`:
#   COMMIT=<hash> bash studies/shift_cartpole/make_runs.sh              # the runs (10-15 min each on CPU)
#   bash studies/shift_cartpole/make_runs.sh --dry-run                  # one command per run, run none
#   COMMIT=<hash> bash studies/shift_cartpole/make_runs.sh --set seeds=[2,3,4] --backend slurm
# Runs go to artifacts/shift_cartpole_<arm>/seed<N>/, terminal output to
# artifacts/logs/shift_cartpole_<arm>_seed<N>.log (each start headed by the commit).
set -euo pipefail
cd "$(dirname "$0")/.."
for old in SEEDS ARMS STEPS SHIFT_STEP SHIFT_GRAVITY SHIFT_LENGTH WARMUP PLACEBO_RATE \
           PLACEBO_SEVERITY FIXED_LENGTH PARALLEL OUT PLATFORM FLAGS; do
  if [ -n "${!old:-}" ]; then
    echo "error: $old is no longer read; set it in studies/shift_cartpole/pilot.yaml or with --set (docs/sweeps.md)" >&2
    exit 2
  fi
done
exec "${PY:-.venv/bin/python}" -m sweep.cli run studies/shift_cartpole/pilot.yaml ${COMMIT:+--commit "$COMMIT"} "$@"
