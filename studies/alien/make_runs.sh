#!/usr/bin/env bash
# Makes the shipped Atari100k Alien runs: the sweep studies/alien/sweep.yaml (its settings and why
# are there), run by dreamer-sweep (docs/sweeps.md). Usage, from the repo root after
# `make install`; options go to `dreamer-sweep run`:
#   bash studies/alien/make_runs.sh                        # seeds 0 1 2, two runs at a time
#   bash studies/alien/make_runs.sh --set budget.steps=2000 --dry-run
set -euo pipefail
cd "$(dirname "$0")/../.."
for old in STEPS RATIO WARMUP PARALLEL SEEDS; do
  if [ -n "${!old:-}" ]; then
    echo "error: $old is no longer read; set it in studies/alien/sweep.yaml or with --set (docs/sweeps.md)" >&2
    exit 2
  fi
done
exec "${PY:-.venv/bin/python}" -m sweep.cli run studies/alien/sweep.yaml "$@"
