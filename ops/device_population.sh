#!/usr/bin/env bash
# The population benchmark on the GPU machine, as one call: aggregate updates/s, env
# steps/s, compile time and peak memory against the number of members, with the solo
# agent in the same call (bench/bench_population.py), for CartPole size1m and Atari
# size12m. Targets: at N = 16, size12m Atari, 8x the aggregate updates/s of N = 1; at
# N = 64, CartPole size1m, 25x. A mixed-arm population (`N:mixed`: the shift study's
# baseline, adapt and placebo arms taking turns) is timed beside the one-arm one of the
# same N: one update must cost about what the one-arm update costs.
#
#   On the device machine, from the repo root, with .whl carried (ops/gpu_wheels.sh):
#     bash ops/device_population.sh
#   Here, on CPU, the same steps with the debug model and N = 1, 2 (a few minutes):
#     bash ops/device_population.sh --dry-run     # OUT defaults to a fresh temp dir
#
# Settings (env): TASKS ["cartpole atari"], CARTPOLE_MEMBERS [1,2,4,8,16,64,48,48:mixed],
# ATARI_MEMBERS [1,2,4,8,16,15,15:mixed], LIMIT [seconds per task, 240], ROW_LIMIT [seconds per row, 200].
# What comes back: device_population.log (all output) and population.md (the tables).
set -uo pipefail

source "$(dirname "$0")/device_common.sh"
device_start device_population "${1:-}"
SUMMARY="$OUT/population.md"
: >"$SUMMARY"
TASKS=${TASKS:-"cartpole atari"}
for task in $TASKS; do
  case "$task" in cartpole|atari) ;; *)
    echo "error: unknown task '$task' in TASKS (known: cartpole atari)" >&2; exit 2 ;;
  esac
done

device_python
if ((DRY)); then
  LIMIT=${LIMIT:-400} ARGS=(--dry-run)
  export XLA_FLAGS="$DRY_XLA_FLAGS"
else
  LIMIT=${LIMIT:-240} ARGS=(--updates 5 --act-steps 50)
  export XLA_FLAGS="$GPU_XLA_FLAGS"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

echo "# device_population $( ((DRY)) && echo --dry-run) $(date -u +%FT%TZ), commit $(tree_commit), on $PLATFORM, XLA_FLAGS='$XLA_FLAGS'" >>"$SUMMARY"
for task in $TASKS; do
  if [[ $task == cartpole ]]; then size=size1m members=${CARTPOLE_MEMBERS:-1,2,4,8,16,64,48,48:mixed}
  else size=size12m members=${ATARI_MEMBERS:-1,2,4,8,16,15,15:mixed}; fi
  start=$SECONDS
  echo "===== $task $size members $members" >>"$LOG"
  timeout --kill-after=10 "$LIMIT" "$PY" bench/bench_population.py --task "$task" --size "$size" \
    --members "$members" --platform "$PLATFORM" --limit "${ROW_LIMIT:-200}" --json "$OUT/$task.json" "${ARGS[@]}" \
    >"$OUT/$task.txt" 2>>"$LOG"
  rc=$?
  cat "$OUT/$task.txt" >>"$LOG"
  status=ok
  ((rc == 124 || rc == 137)) && status="timed out"
  ((rc != 0 && rc != 124 && rc != 137)) && status="failed (rc $rc)"
  { echo; echo "## $task ($status in $((SECONDS - start)) s)"; echo; cat "$OUT/$task.txt"; } >>"$SUMMARY"
  rm -f "$OUT/$task.txt"
done
cat "$SUMMARY"
