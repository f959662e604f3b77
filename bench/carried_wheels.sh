# Sourced by bench/device_run.sh and bench/device_shift.sh on the GPU machine:
# install_carried_wheels PY LOG installs the wheels carried in .whl (bench/gpu_wheels.sh)
# into a fresh temporary folder and puts it on PYTHONPATH. Without .whl it does nothing.
install_carried_wheels() {
  local py="$1" log="$2" site
  [[ -d .whl ]] || return 0
  site="$(mktemp -d)"
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$site" .whl/*.whl >>"$log" 2>&1 || echo "wheel install failed" | tee -a "$log"
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
}
