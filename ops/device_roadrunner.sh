#!/usr/bin/env bash
# Road Runner on the GPU machine: the sweep studies/road_runner/gpu.yaml (the official
# Atari100k preset at size12m, SEEDS side by side on the one GPU, each with a time budget;
# its settings and why are there), run by dreamer-sweep, then the run dirs (no checkpoints,
# no replay) and their terminal logs packed into $OUT.
#
#   On the device machine, from the repo root, with .whl carried (ops/gpu_wheels.sh):
#     GIT_COMMIT=<sha> bash ops/device_roadrunner.sh
#   Here, on CPU, the same steps with the debug model for a few hundred steps (~2 min):
#     bash ops/device_roadrunner.sh --dry-run        # OUT defaults to a fresh temp dir
#   Baseline, adapt and placebo as one population (studies/atari_population/sweep.yaml; TASKS picks
#   the game, as the sweep's tasks: mapping):
#     GIT_COMMIT=<sha> SWEEP=studies/atari_population/sweep.yaml bash ops/device_roadrunner.sh
#     ... TASKS="{gpu_alien_pop: atari100k_alien}" ...
#   A visual dynamics shift (Boxing's difficulty switch), baseline and adapt:
#     GIT_COMMIT=<sha> SWEEP=studies/atari_shift/sweep.yaml bash ops/device_roadrunner.sh
#
# Settings (env, defaults as in the sweep file): SEEDS ["0 1 2"], STEPS [13000 agent
# steps], SIZE [size12m], DURATION [500 s per run, from the run loop's start], LIMIT [550 s
# per run, all at once], LOG_EVERY [15 s].
# What comes back: roadrunner_runs.tgz (artifacts/gpu_road_runner_<size>/seed<N>/ and
# artifacts/logs/gpu_road_runner_<size>_seed<N>.log), progress.log (each run's step
# every 30 s and the GPU's use), device_roadrunner.log (everything else).
set -uo pipefail

source "$(dirname "$0")/device_common.sh"
device_start device_roadrunner "${1:-}"
SWEEP=${SWEEP:-studies/road_runner/gpu.yaml}
case "$SWEEP" in
  studies/road_runner/gpu.yaml) SEEDS=${SEEDS:-"0 1 2"} POPULATION=0 ;;
  studies/atari_population/sweep.yaml) SEEDS=${SEEDS:-"0 1 2 3 4"} POPULATION=1 ;;
  studies/atari_shift/sweep.yaml) SEEDS=${SEEDS:-"0 1 2"} POPULATION=1 ;;
  *) echo "error: SWEEP=$SWEEP: expected studies/road_runner/gpu.yaml, atari_population.yaml or atari_shift.yaml" >&2
     exit 2 ;;
esac
LOG_EVERY=${LOG_EVERY:-15}

COMMIT=$(tree_commit)
if [[ "$COMMIT" == unknown ]]; then
  echo "error: no .git here: set GIT_COMMIT to the commit this tree is a copy of" >&2; exit 2
fi

device_python
if ((DRY)); then
  SIZE=debug STEPS=${STEPS:-120} DURATION=${DURATION:-400} LIMIT=${LIMIT:-500}
  RUNS_OUT=$(mktemp -d)/artifacts  # the dry run writes nothing into this tree
  SEEDS=0
  EXTRA=(--set flags.run.train_fill=32 --set flags.run.train_ratio=16)
  dry_compile
else
  SIZE=${SIZE:-size12m} STEPS=${STEPS:-13000}
  DURATION=${DURATION:-500} LIMIT=${LIMIT:-550}
  RUNS_OUT=artifacts EXTRA=()
  export JAX_COMPILATION_CACHE_DIR="$(mktemp -d)"
  # GPU_XLA_FLAGS (device_common.sh): autotuning on, so cuDNN picks its convolution
  # algorithms; without it a size12m update took 2.7 s instead of 0.035 s (bench/LOG.md).
  export XLA_FLAGS="${XLA_FLAGS:-$GPU_XLA_FLAGS}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export GIT_COMMIT=$COMMIT  # what each run's log names (the sweep reads it)
if ((POPULATION)); then  # the file's arms; the size as a preset after the file's
  ARMS=(--set "configs=[atari100k,$SIZE]" ${TASKS:+--set "tasks=$TASKS"}) NAME="*_pop_*"
else
  ARMS=(--set "arms={$SIZE: {configs: [$SIZE]}}") NAME="gpu_road_runner_${SIZE}"
fi
mkdir -p "$RUNS_OUT/logs"
echo "device_roadrunner $( ((DRY)) && echo --dry-run) $(date -u +%FT%TZ) commit $COMMIT" \
  "sweep $SWEEP platform $PLATFORM size $SIZE steps $STEPS duration ${DURATION}s limit ${LIMIT}s seeds '$SEEDS'" | tee -a "$LOG"

watch_runs "$OUT/progress.log" "$RUNS_OUT/$NAME/seed*"

SETS=(--root "$RUNS_OUT" --set "seeds=[${SEEDS// /,}]" "${ARMS[@]}"
  --set "flags.jax.platform=$PLATFORM" --set "budget.steps=$STEPS" --set "budget.duration=$DURATION"
  --set "budget.time_limit=$LIMIT" --set "flags.run.log_every=$LOG_EVERY" "${EXTRA[@]}")
start=$SECONDS
"$PY" -m sweep.cli run "$SWEEP" "${SETS[@]}" --jobs 64 >>"$LOG" 2>&1
rc=$?
kill "$WATCH_PID" 2>/dev/null
echo "runs: exit ${rc} after $((SECONDS - start)) s" | tee -a "$LOG"

# Pack what there is, finished or not: the labels say how far each run got.
"$PY" -m sweep.cli pack "$SWEEP" "${SETS[@]}" --out "$OUT/roadrunner_runs.tgz" >>"$LOG" 2>&1
ls -la "$OUT" | tee -a "$LOG"
grep -h "Stopping\|Error\|error\|Parameter count" "$RUNS_OUT"/logs/*.log 2>/dev/null \
  | sort | uniq -c | tee -a "$LOG"
