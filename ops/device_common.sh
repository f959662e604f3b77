# Sourced by the device scripts (ops/device_*.sh), on the GPU machine and in their
# --dry-run on CPU. What each of them needs the same way:
#   device_start NAME [--dry-run]   DRY (1 with --dry-run), the repo root as the working
#                                   folder, OUT (absolute; a fresh temp folder by default)
#                                   and LOG=$OUT/NAME.log, emptied
#   install_carried_wheels PY LOG   the wheels carried in .whl (ops/gpu_wheels.sh) into a
#                                   fresh temp folder put on PYTHONPATH; nothing without .whl
#   device_python                   PY and PLATFORM of this call: in a dry run the venv's
#                                   Python (or PYTHON) on cpu; on the device the image's
#                                   python3 (or PYTHON) on cuda, with the carried wheels
#                                   installed and nvidia-smi's state in LOG
#   watch_runs FILE GLOB            in the background, every 30 s: the last logged step of
#                                   each run dir matching GLOB (its metrics.jsonl), and the
#                                   GPU's use unless DRY; WATCH_PID names the watcher
#   tree_commit                     the commit this tree is: GIT_COMMIT (the device copy's
#                                   .git can be stale), else git's HEAD, else "unknown"
#   dry_compile                     in a dry run: the fast-compile CPU flags as XLA_FLAGS, and
#                                   one persistent compile cache for every process (the one
#                                   given in JAX_COMPILATION_CACHE_DIR, e.g. the pytest
#                                   process's, so dry runs share their compiles; else a fresh one)
# and three flag sets:
#   GPU_XLA_FLAGS   no Triton GEMM fusions; XLA still autotunes (picks cuDNN's convolution
#                   algorithms). Measured on an H200: with XLA's defaults, 20 size1m runs
#                   compiling the update at once were still compiling Triton GEMM fusions
#                   after 480 s, GPU idle (2026-11-27). Also turning autotuning off
#                   (--xla_gpu_autotune_level=0, what the shift runs used) made a size12m
#                   update 2.683 s instead of 0.035 s: the image encoder and decoder ran
#                   ~200x slower without a chosen conv algorithm (device_speed.sh, 2026-11-28;
#                   bench/LOG.md)
#   GPU_XLA_FLAGS_NOAUTOTUNE  the same with autotuning off: what the shift runs used (MLPs
#                   only, no convolution to choose an algorithm for, 20 compiles at once)
#   DRY_XLA_FLAGS   the tests' fast-compile CPU flags (tests/conftest.py), for --dry-run

GPU_XLA_FLAGS="--xla_gpu_enable_triton_gemm=false"
GPU_XLA_FLAGS_NOAUTOTUNE="$GPU_XLA_FLAGS --xla_gpu_autotune_level=0"
DRY_XLA_FLAGS="--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"

device_start() {
  local name="$1"
  DRY=0
  [[ "${2:-}" == "--dry-run" ]] && DRY=1
  cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
  OUT="${OUT:-$(mktemp -d)}"
  mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
  LOG="$OUT/$name.log"
  : >"$LOG"
  export PYTHONUNBUFFERED=1
}

install_carried_wheels() {
  local py="$1" log="$2" site
  [[ -d .whl ]] || return 0
  site="$(mktemp -d)"
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" .whl/*.whl >>"$log" 2>&1 || echo "wheel install failed" | tee -a "$log"
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
}

device_python() {
  if ((DRY)); then
    PY="${PYTHON:-$PWD/.venv/bin/python}" PLATFORM=cpu
  else
    PY="${PYTHON:-python3}" PLATFORM=cuda
    install_carried_wheels "$PY" "$LOG"
    nvidia-smi >>"$LOG" 2>&1
  fi
}

watch_runs() {
  local file="$1" glob="$2"
  : >"$file"
  (
    t0=$SECONDS
    while sleep 30; do
      echo "--- $((SECONDS - t0)) s" >>"$file"
      for f in $glob/metrics.jsonl; do
        [[ -f "$f" ]] || continue
        last=$(tail -n 1 "$f" | grep -o '"step": *[0-9]*' | grep -o '[0-9]*$')
        echo "$(basename "$(dirname "$(dirname "$f")")")/$(basename "$(dirname "$f")") step ${last:-?}" >>"$file"
      done
      ((DRY)) || nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader >>"$file" 2>&1
    done
  ) </dev/null >/dev/null 2>&1 &  # holds no pipe of the caller: its sleep outlives a kill
  WATCH_PID=$!
}

dry_compile() {
  export XLA_FLAGS="$DRY_XLA_FLAGS"  # exactly these: the cache keys on the flags
  export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-$(mktemp -d)}"
  export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0
}

tree_commit() {
  echo "${GIT_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
}
