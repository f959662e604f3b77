#!/usr/bin/env bash
# Makes the shipped Atari100k Alien runs: the seed's two commands on CPU at a size and
# length this 2-core machine can afford. Same settings for both methods except
# agent.imag_adapt.*. Usage (from the repo root, after `make install`):
#   bash artifacts/make_alien_runs.sh            # seeds 0 1 2, two runs at a time
# Env: STEPS (agent steps, default 4000), RATIO (train ratio, default 32),
#      WARMUP (imag_adapt warmup in updates, default 20), PARALLEL (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-4000}
RATIO=${RATIO:-32}
WARMUP=${WARMUP:-20}
PARALLEL=${PARALLEL:-2}
SEEDS=${SEEDS:-"0 1 2"}
PY=${PY:-.venv/bin/python}

run() {  # method seed
  local method=$1 seed=$2 adapt=False
  [ "$method" = adapt ] && adapt=True
  $PY dreamerv3/main.py \
    --logdir "artifacts/atari100k_alien_${method}/seed${seed}_{timestamp}" \
    --configs atari100k size1m --task atari100k_alien --script train \
    --jax.platform cpu --jax.train_devices [0] --jax.policy_devices [0] \
    --run.steps "$STEPS" --run.envs 1 --run.train_ratio "$RATIO" --seed "$seed" \
    --run.log_every 60 --run.report_every 300 --run.save_every 1800 \
    --agent.imag_adapt.enabled "$adapt" --agent.imag_adapt.abs_thresh 1.0 \
    --agent.imag_adapt.rel_thresh 1.15 --agent.imag_adapt.warmup "$WARMUP" \
    > "artifacts/logs/alien_${method}_seed${seed}.log" 2>&1
}

mkdir -p artifacts/logs
jobs_list=()
for seed in $SEEDS; do for method in baseline adapt; do jobs_list+=("$method $seed"); done; done
for job in "${jobs_list[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$PARALLEL" ]; do sleep 5; done
  echo "start $job $(date +%H:%M:%S)"
  run $job &
done
wait
echo "all done $(date +%H:%M:%S)"
