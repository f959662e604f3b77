#!/usr/bin/env bash
# Makes the pilot of the dynamics-shift study (studies/shift_cartpole/README.md): the study's
# sweep file with the pilot's seeds 0-4, one process a run, into artifacts/, run by
# dreamer-sweep (docs/sweeps.md) from the code of COMMIT (exported with git archive, so
# uncommitted edits never run). Usage, from the repo root; options go to `dreamer-sweep run`:
#   COMMIT=<hash> bash studies/shift_cartpole/make_runs.sh              # the runs (10-15 min each on CPU)
#   bash studies/shift_cartpole/make_runs.sh --dry-run                  # one command per run, run none
#   COMMIT=<hash> bash studies/shift_cartpole/make_runs.sh --set seeds=[2,3,4] --backend slurm
# Runs go to artifacts/shift_cartpole_<arm>/seed<N>/, terminal output to
# artifacts/logs/shift_cartpole_<arm>_seed<N>.log (each start headed by the commit).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec "${PY:-.venv/bin/python}" -m sweep.cli run studies/shift_cartpole/sweep.yaml --root artifacts \
  --set "seeds='0-4'" --set population=false --set population_seeds=0 \
  --set backend.slurm.gpus_per_job=0 --set backend.slurm.cpus_per_job=2 \
  ${COMMIT:+--commit "$COMMIT"} "$@"
