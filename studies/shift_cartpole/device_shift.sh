#!/usr/bin/env bash
# The shift study (studies/shift_cartpole/sweep.yaml, run by dreamer-sweep) on the GPU machine:
# every run of the call at once on the one GPU, each with a time budget, then the run dirs (no
# checkpoints, no replay) and the terminal logs packed into $OUT.
#
#   On the device machine, from the repo root, with .whl carried (ops/gpu_wheels.sh):
#     GIT_COMMIT=<sha> SEEDS=1000-1015 bash studies/shift_cartpole/device_shift.sh
#     GIT_COMMIT=<sha> PART=pilot bash studies/shift_cartpole/device_shift.sh
#   Here, on CPU, the same steps with the debug model (about 2 minutes):
#     bash studies/shift_cartpole/device_shift.sh --dry-run             # seeds 1000-1001
#     PART=pilot bash studies/shift_cartpole/device_shift.sh --dry-run  # seed 0
#
# Settings (env): PART [powered: the pre-registered study as the sweep file says, population
# processes; pilot: seeds 0-4, one process a run], DURATION [470 s per run, counted from the
# run loop's start], LIMIT [545 s for all runs together], SEEDS [powered: 1000-1015; pilot:
# "0 1 2 3 4"; spaces or the sweep's '1000-1015' form], LOG_EVERY [5 s], PACK [pack options;
# powered: gzipped logs. The image has no polars, so `--scope best` (which ranks seeds with
# the toolkit) is for re-packing here].
# One seed of the pilot (4 runs at once) took about 2 minutes; the pilot's seeds 2-4 were
# made in one call (SEEDS="2 3 4"; studies/shift_cartpole/README.md).
# The runs compute in float32 with full-precision matmuls on the GPU, as on CPU, so
# that the mask thresholds meet the same numbers as in the CPU runs that chose them.
# What comes back: shift_runs.tgz (<root>/<task>_<arm>/seed<N>/ and <root>/logs/), progress.log
# (each run's step every 30 s and the GPU's use), device_shift.log (everything else).
set -uo pipefail

source "$(dirname "$0")/../../ops/device_common.sh"
device_start device_shift "${1:-}"
SWEEP=studies/shift_cartpole/sweep.yaml
PART=${PART:-powered}
LOG_EVERY=${LOG_EVERY:-5}
case "$PART" in
  pilot) ROOT_NAME=artifacts PACK=${PACK:-} SEEDS=${SEEDS:-"0 1 2 3 4"}
    AS_PART=(--set population=false --set population_seeds=0) ;;
  powered) ROOT_NAME=artifacts/shift_powered PACK=${PACK-"--gzip-logs"}
    SEEDS=${SEEDS:-$( ((DRY)) && echo 1000-1001 || echo 1000-1015)} AS_PART=() ;;
  *) echo "error: PART=$PART: expected powered or pilot" >&2; exit 2 ;;
esac

device_python
if ((DRY)); then
  DURATION=${DURATION:-60} LIMIT=${LIMIT:-240}
  RUNS_OUT=$(mktemp -d)/$ROOT_NAME  # the dry run writes nothing into this tree
  # The debug model on CartPole, shift after 40 steps: about a minute per run, mostly compile.
  TINY=(--set "configs=[cartpole,debug]" --set budget.steps=80 --set flags.env.gym.shift.step=40
        --set flags.agent.imag_adapt.warmup=0 --set flags.run.train_fill=32
        --set flags.run.train_ratio=16)
  [[ $PART == pilot ]] && SEEDS=0
  dry_compile
else
  DURATION=${DURATION:-470} LIMIT=${LIMIT:-545}
  RUNS_OUT=$ROOT_NAME TINY=()
  # Twenty processes share the GPU: each takes memory as it needs it. One compile
  # cache, so identical programs are compiled once where the timing allows.
  export XLA_PYTHON_CLIENT_PREALLOCATE=false
  export JAX_COMPILATION_CACHE_DIR="$(mktemp -d)"
  export JAX_DEFAULT_MATMUL_PRECISION=highest
  # GPU_XLA_FLAGS_NOAUTOTUNE (device_common.sh says what they fixed here), the flags of the
  # shipped shift runs: their MLPs have no convolution whose algorithm autotuning would pick.
  export XLA_FLAGS="${XLA_FLAGS:-$GPU_XLA_FLAGS_NOAUTOTUNE}"
fi
echo "device_shift $( ((DRY)) && echo --dry-run) $(date -u +%FT%TZ) commit ${GIT_COMMIT:-tree}" \
  "sweep $SWEEP ($PART) platform $PLATFORM duration ${DURATION}s limit ${LIMIT}s seeds '$SEEDS'" | tee -a "$LOG"

watch_runs "$OUT/progress.log" "$RUNS_OUT/shift_cartpole_*/seed*"

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
SETS=(--root "$RUNS_OUT" --set "seeds='${SEEDS// /,}'" "${AS_PART[@]}" "${TINY[@]}")
start=$SECONDS
timeout --kill-after=10 "$LIMIT" "$PY" -m sweep.cli run "$SWEEP" "${SETS[@]}" \
  --set "flags.jax.platform=$PLATFORM" --set flags.jax.compute_dtype=float32 \
  --set "budget.duration=$DURATION" --set "flags.run.log_every=$LOG_EVERY" \
  --set flags.run.save_every=1e9 --jobs 64 >>"$LOG" 2>&1
rc=$?
kill "$WATCH_PID" 2>/dev/null
echo "runs: exit $rc after $((SECONDS - start)) s" | tee -a "$LOG"

# Pack what there is, finished or not: the labels say how far each run got.
"$PY" -m sweep.cli pack "$SWEEP" "${SETS[@]}" $PACK --out "$OUT/shift_runs.tgz" >>"$LOG" 2>&1
ls -la "$OUT" | tee -a "$LOG"
grep -h "Stopping\|Error\|error" "$RUNS_OUT"/logs/shift_cartpole_*.log 2>/dev/null | sort | uniq -c | tee -a "$LOG"
exit "$rc"  # the sweep's: 0 when every run finished (124: the call's LIMIT ended it)
