#!/usr/bin/env bash
# Why a size12m update was slow on the GPU: the first Road Runner runs of
# ops/device_roadrunner.sh trained at 247 frames/s, about 4 s per update with two runs
# sharing an H200 (bench/LOG.md); this found the cause (2026-11-28: autotuning off,
# 2.683 s per update; on, 0.035 s). It times one update, and its parts
# (bench_train.py --breakdown: encoder, decoder, RSSM observe, heads, imagination,
# optimizer), under three XLA flag sets, one process at a time:
#   notriton_noautotune  --xla_gpu_enable_triton_gemm=false --xla_gpu_autotune_level=0
#                        (what the shift runs and the first Road Runner runs used)
#   notriton             --xla_gpu_enable_triton_gemm=false (cuDNN/cuBLAS autotuned; the
#                        device scripts' GPU_XLA_FLAGS since this measured it 77x faster)
#   defaults             XLA's defaults
#
#   On the device machine, from the repo root, with .whl carried (ops/gpu_wheels.sh):
#     bash ops/device_speed.sh
#   Here, on CPU, the same steps with the debug model (about a minute):
#     bash ops/device_speed.sh --dry-run          # OUT defaults to a fresh temp dir
#
# Settings (env): SIZE [size12m], LIMIT [150 s per flag set], SETS [all three, by name].
# What comes back: device_speed.log (all output), speed.md (each set's status, seconds
# and the bench's tables) and <set>.json (each set's bench, bench/record.py's format).
set -uo pipefail

source "$(dirname "$0")/device_common.sh"
device_start device_speed "${1:-}"
SUMMARY="$OUT/speed.md"
: >"$SUMMARY"
SETS=${SETS:-"notriton_noautotune notriton defaults"}

flags_of() {  # a set's name -> its XLA_FLAGS (the dry run: the tests' fast-compile CPU flags)
  local flags
  case "$1" in
    notriton_noautotune) flags="$GPU_XLA_FLAGS_NOAUTOTUNE" ;;
    notriton) flags="$GPU_XLA_FLAGS" ;;
    defaults) flags="" ;;
    *) echo "error: unknown flag set '$1' in SETS (known: notriton_noautotune notriton defaults)" >&2
       return 2 ;;
  esac
  ((DRY)) && flags="$DRY_XLA_FLAGS"
  echo "$flags"
}
for set in $SETS; do flags_of "$set" >/dev/null || exit 2; done  # before any install or timing

device_python
if ((DRY)); then
  dry_compile
  SIZE=debug LIMIT=${LIMIT:-120} ARGS=(--updates 1 --reps 1)
else
  SIZE=${SIZE:-size12m} LIMIT=${LIMIT:-150} ARGS=(--updates 5 --reps 2)
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

echo "# device_speed $( ((DRY)) && echo --dry-run) $(date -u +%FT%TZ), commit $(tree_commit), $SIZE on $PLATFORM" >>"$SUMMARY"
for set in $SETS; do
  flags=$(flags_of "$set") || exit 2
  start=$SECONDS
  echo "===== $set: XLA_FLAGS='$flags'" >>"$LOG"
  XLA_FLAGS="$flags" timeout --kill-after=10 "$LIMIT" "$PY" bench/bench_train.py --platform "$PLATFORM" \
    --size "$SIZE" --impls auto --breakdown "${ARGS[@]}" --json "$OUT/$set.json" >"$OUT/$set.txt" 2>&1
  rc=$?
  cat "$OUT/$set.txt" >>"$LOG"
  status=ok
  ((rc == 124 || rc == 137)) && status="timed out"
  ((rc != 0 && rc != 124 && rc != 137)) && status="failed (rc $rc)"
  { echo; echo "## $set ($status in $((SECONDS - start)) s): XLA_FLAGS='$flags'"; echo
    grep -E '^\||compile [0-9.]+ s' "$OUT/$set.txt"; } >>"$SUMMARY"
  rm -f "$OUT/$set.txt"
done
cat "$SUMMARY"
