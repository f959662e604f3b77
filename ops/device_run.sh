#!/usr/bin/env bash
# Every GPU check in one call: the machine, update speed at
# size12m/50m/200m, then the reference baseline and adapt commands at size200m on
# Alien for a fixed time each, with the agent's tests on the GPU beside them.
#
#   On the device machine, from the repo root, with the wheels of
#   ops/gpu_wheels.sh carried as .whl:
#     bash ops/device_run.sh                 # everything under $OUT
#   Here, on CPU, the same steps at toy size (debug nets, seconds per step):
#     bash ops/device_run.sh --dry-run       # OUT defaults to a fresh temp dir
#
# Each step has its own time limit and a failed step does not stop the next.
# What comes back (at most 8 files): device_run.log (all output), summary.md
# (the bench tables and each step's status and seconds), bench_<size>.json (each
# size's bench, bench/record.py's format: copy into bench/results/ to render it),
# gpu_runs.tgz (the two run dirs, without checkpoints or replay). The step limits add up to 530 s
# (8.8 minutes). GIT_COMMIT names the commit where .git does not travel.
set -uo pipefail

DRY=0
[[ "${1:-}" == "--dry-run" ]] && DRY=1
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source ops/device_common.sh
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
WORK="$(mktemp -d)"
LOG="$OUT/device_run.log"
SUMMARY="$OUT/summary.md"
: >"$LOG"
: >"$SUMMARY"
export PYTHONUNBUFFERED=1
# One persistent compile cache for every process of this call (a dry run: dry_compile).
((DRY)) || export JAX_COMPILATION_CACHE_DIR="$WORK/jax_cache"

if ((DRY)); then
  PY="${PYTHON:-$ROOT/.venv/bin/python}"
  PLATFORM=cpu
  SIZES=(debug)
  RUN_SIZE=debug
  RUN_SECONDS=40
  # The runs stop after a few updates (training starts at step 32, one update per 4 steps).
  RUN_SETS="--set budget.steps=40 --set flags.run.train_ratio=16"
  BENCH_ARGS=(--updates 1 --reps 1)
  # A few agent tests: the whole files already ran in this suite on CPU.
  TESTS=(tests/test_compute_dtype.py -k auto)
  LIMIT_BENCH=240 LIMIT_RUNS=240 LIMIT_TESTS=120
  # Tests' fast-compile XLA flags (tests/conftest.py) and a shared compile cache.
  dry_compile
else
  PY="${PYTHON:-python3}"
  PLATFORM=cuda
  SIZES=(size12m size50m size200m)
  RUN_SIZE=size200m
  # Measured on an H200 (2026-11-27, two calls): XLA's GPU compile of the update
  # took over 45 s at size12m and over 80 s at size200m, and the agent tests over
  # 60 s for test_compute_dtype alone. So the three bench processes compile at
  # once on the host's 16 cores and take turns on the GPU (--lock), and the tests
  # run beside the reference commands, which need no clean timing.
  RUN_SECONDS=180 RUN_SETS=""
  BENCH_ARGS=(--updates 5 --reps 2)
  TESTS=(tests/test_compute_dtype.py tests/test_agent.py tests/test_scopefile.py)
  LIMIT_BENCH=270 LIMIT_RUNS=250 LIMIT_TESTS=240
  install_carried_wheels "$PY" "$LOG"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

step() {  # step NAME LIMIT_S CMD...: run with a time limit, log, record status and seconds
  local name="$1" limit="$2"; shift 2
  local start=$SECONDS log="${STEP_LOG:-$LOG}"  # STEP_LOG: a step's own log while steps overlap
  echo "===== $name (limit ${limit}s): $*" >>"$log"
  timeout --kill-after=10 "$limit" "$@" >>"$log" 2>&1
  local rc=$?
  local took=$((SECONDS - start))
  local status=ok
  ((rc == 124 || rc == 137)) && status="timed out"
  ((rc != 0 && rc != 124 && rc != 137)) && status="failed (rc $rc)"
  echo "===== $name: $status in ${took}s" >>"$log"
  echo "| $name | $status | $took |" >>"$SUMMARY"
}

echo "# device_run $( ((DRY)) && echo '--dry-run' ) on $(date -u +%Y-%m-%dT%H:%MZ), commit $(tree_commit)" >>"$SUMMARY"
echo >>"$SUMMARY"
echo "| step | status | seconds |" >>"$SUMMARY"
echo "|---|---|---|" >>"$SUMMARY"

# 1. The machine and the jax it has.
((DRY)) || step nvidia-smi 20 nvidia-smi
step jax 60 "$PY" -c "
import importlib.util, jax, numpy
jax.config.update('jax_platforms', '$PLATFORM')
print('jax', jax.__version__, 'numpy', numpy.__version__, 'backend', jax.default_backend())
print('devices', jax.devices())
print('have', {m: importlib.util.find_spec(m) is not None for m in
      ('ninjax', 'elements', 'ale_py', 'gymnasium', 'scope', 'av', 'cv2', 'polars')})
"

# 2. Update speed, one process per size (peak device memory is per process):
#    compiled at once, timed one at a time. Memory grows as needed (no prealloc).
for size in "${SIZES[@]}"; do
  ( STEP_LOG="$WORK/bench_$size.log" XLA_PYTHON_CLIENT_PREALLOCATE=false \
      step "bench $size" "$LIMIT_BENCH" "$PY" bench/bench_train.py --platform "$PLATFORM" \
      --size "$size" --impls auto --lock "$WORK/gpu.lock" "${BENCH_ARGS[@]}" --json "$OUT/bench_$size.json" ) &
done
wait
for size in "${SIZES[@]}"; do
  grep -v 'Delay kernel timed out' "$WORK/bench_$size.log" >>"$LOG" 2>/dev/null
done

# 3. The reference commands (baseline and adapt) with a time budget, both at once on the
#    one device (each with 40% of its memory), from the same seed: the sweep
#    studies/alien/gpu.yaml. It runs from $WORK with a relative root, so config.yaml
#    and the logs name artifacts/..., as the shipped runs do, and no path of the machine.
RUNS="$WORK/artifacts"
both_runs() {
  cd "$WORK" && "$PY" -m sweep.cli run "$ROOT/studies/alien/gpu.yaml" --root artifacts \
    --set "configs=[atari100k,$RUN_SIZE]" --set "flags.jax.platform=$PLATFORM" \
    --set "budget.duration=$RUN_SECONDS" $RUN_SETS
  local rc=$?
  for m in baseline adapt; do
    echo "--- $m (last lines)"; tail -n 25 "$RUNS/logs/gpu_atari100k_alien_${m}_seed0.log"
  done
  return $rc
}
export -f both_runs
export PY RUN_SIZE PLATFORM RUN_SECONDS RUN_SETS RUNS WORK LOG ROOT
# The agent's tests (every test config on this platform) beside the two runs,
# taking GPU memory as they need it.
( STEP_LOG="$WORK/tests.log" step tests "$LIMIT_TESTS" env DREAMER_TEST_PLATFORM="$PLATFORM" XLA_PYTHON_CLIENT_PREALLOCATE=false \
    "$PY" -m pytest -q -p no:cacheprovider "${TESTS[@]}" ) &
TESTS_PID=$!
step "reference commands ($RUN_SIZE, ${RUN_SECONDS}s each, concurrent)" "$LIMIT_RUNS" bash -c both_runs
wait "$TESTS_PID"
cat "$WORK/tests.log" >>"$LOG"

# 4. Pack the run dirs (no checkpoints, no replay) and the tables.
if [[ -d "$RUNS" ]]; then
  for m in baseline adapt; do
    cp "$RUNS/logs/gpu_atari100k_alien_${m}_seed0.log" "$RUNS/gpu_atari100k_alien_$m/seed0/train.log" 2>/dev/null
  done
  rm -rf "$RUNS/logs" "$RUNS/.sweep"  # the logs travel inside the run dirs, as train.log
  tar -C "$RUNS" --exclude=ckpt --exclude=replay -czf "$OUT/gpu_runs.tgz" . 2>>"$LOG"
fi
{
  echo
  grep -m1 -E '^\| size \| platform' "$LOG" && echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  grep -E '^\| (size[0-9]+m|debug) \| ' "$LOG"
} >>"$SUMMARY"
cat "$SUMMARY"
rm -rf "$WORK"
