#!/usr/bin/env bash
# Issue 12 on the GPU machine: Road Runner with the official Atari100k preset (train
# ratio 256, batch 16 x 64, lr 4e-5, bfloat16 compute as the official on GPU) at size12m,
# SEEDS side by side on the one GPU, each with a time budget, then the run dirs (no
# checkpoints, no replay) and their terminal logs packed into $OUT.
#
#   On the device machine, from the repo root, with .whl carried (bench/gpu_wheels.sh):
#     GIT_COMMIT=<sha> bash bench/device_roadrunner.sh
#   Here, on CPU, the same steps with the debug model for a few hundred steps (~2 min):
#     bash bench/device_roadrunner.sh --dry-run        # OUT defaults to a fresh temp dir
#
# Settings (env): SEEDS ["0 1 2"], STEPS [13000 agent steps = 52,000 env frames, the CPU
# run's length], SIZE [size12m], DURATION [500 s per run, from the run loop's start],
# LIMIT [550 s for all together], LOG_EVERY [15 s]. Three size12m seeds at once made 139
# env frames/s each after a ~60 s start (2026-11-28), so 500 s reach about 52,000 frames.
# What comes back: roadrunner_runs.tgz (artifacts/gpu_road_runner_<size>/seed<N>_*/ and
# artifacts/logs/gpu_road_runner_<size>_seed<N>.log), progress.log (each run's step
# every 30 s and the GPU's use), device_roadrunner.log (everything else).
set -uo pipefail

source "$(dirname "$0")/device_common.sh"
device_start device_roadrunner "${1:-}"
SEEDS=${SEEDS:-"0 1 2"}
LOG_EVERY=${LOG_EVERY:-15}

COMMIT=$(tree_commit)
if [[ "$COMMIT" == unknown ]]; then
  echo "error: no .git here: set GIT_COMMIT to the commit this tree is a copy of" >&2; exit 2
fi

if ((DRY)); then
  PY="${PYTHON:-$PWD/.venv/bin/python}"
  PLATFORM=cpu SIZE=debug STEPS=${STEPS:-120} DURATION=${DURATION:-400} LIMIT=${LIMIT:-500}
  RUNS_OUT=$(mktemp -d)/artifacts  # the dry run writes nothing into this tree
  SEEDS=0
  EXTRA=(--run.train_fill 32 --run.train_ratio 16)
  export XLA_FLAGS="${XLA_FLAGS:-} $DRY_XLA_FLAGS"
else
  PY="${PYTHON:-python3}"
  PLATFORM=cuda SIZE=${SIZE:-size12m} STEPS=${STEPS:-13000}
  DURATION=${DURATION:-500} LIMIT=${LIMIT:-550}
  RUNS_OUT=artifacts EXTRA=()
  install_carried_wheels "$PY" "$LOG"
  export XLA_PYTHON_CLIENT_PREALLOCATE=false
  export JAX_COMPILATION_CACHE_DIR="$(mktemp -d)"
  # GPU_XLA_FLAGS (device_common.sh): autotuning on, so cuDNN picks its convolution
  # algorithms; without it a size12m update took 2.7 s instead of 0.035 s (bench/README.md).
  export XLA_FLAGS="${XLA_FLAGS:-$GPU_XLA_FLAGS}"
  nvidia-smi >>"$LOG" 2>&1
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
NAME="gpu_road_runner_${SIZE}"
mkdir -p "$RUNS_OUT/logs"
echo "device_roadrunner $( ((DRY)) && echo --dry-run) $(date -u +%FT%TZ) commit $COMMIT" \
  "platform $PLATFORM size $SIZE steps $STEPS duration ${DURATION}s limit ${LIMIT}s seeds '$SEEDS'" | tee -a "$LOG"

watch_runs "$OUT/progress.log" "$RUNS_OUT/$NAME/*"

start=$SECONDS
pids=()
for seed in $SEEDS; do
  flags=(--logdir "$RUNS_OUT/$NAME/seed${seed}_{timestamp}"
    --configs atari100k "$SIZE" --task atari100k_road_runner --script train
    --jax.platform "$PLATFORM" --jax.train_devices '[0]' --jax.policy_devices '[0]'
    --run.steps "$STEPS" --run.duration "$DURATION" --seed "$seed"
    --run.log_every "$LOG_EVERY" --run.report_every 1e9 --run.save_every 1e9 "${EXTRA[@]}")
  runlog="$RUNS_OUT/logs/${NAME}_seed${seed}.log"
  echo "commit $COMMIT: python dreamerv3/main.py ${flags[*]}" >"$runlog"
  timeout --kill-after=10 "$LIMIT" "$PY" dreamerv3/main.py "${flags[@]}" >>"$runlog" 2>&1 &
  pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
kill "$WATCH_PID" 2>/dev/null
echo "runs: last nonzero exit ${rc} after $((SECONDS - start)) s" | tee -a "$LOG"

# Pack what there is, finished or not: the labels say how far each run got.
(cd "$(dirname "$RUNS_OUT")" && tar --exclude=ckpt --exclude=replay -czf "$OUT/roadrunner_runs.tgz" \
  "$(basename "$RUNS_OUT")/$NAME" "$(basename "$RUNS_OUT")"/logs/"${NAME}"_seed*.log) 2>>"$LOG"
ls -la "$OUT" | tee -a "$LOG"
grep -h "Stopping\|Error\|error\|Parameter count" "$RUNS_OUT"/logs/"${NAME}"_seed*.log 2>/dev/null \
  | sort | uniq -c | tee -a "$LOG"
