"""The GPU machine's calls, each by its --dry-run on CPU with the debug model, so a call is
known to work before it is made: ops/device_run.sh (every step of the measurement call),
ops/device_speed.sh (the update and its parts timed under XLA flag sets) and
ops/device_roadrunner.sh (Road Runner runs, packed without checkpoints). The shift study's
call is tested in test_device_image.py, the population bench's in test_device_population.py.

One file, in this order, so that the calls share one compile cache (dry_compile in
ops/device_common.sh keeps the pytest process's, set below when tests/conftest.py has not): the
speed call's whole update is the measurement call's bench update, and the Road Runner run the
same debug Atari agent as its runs."""

import atexit
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile

ROOT = pathlib.Path(__file__).parent.parent.parent
if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):  # tests/conftest.py sets it for the whole suite
    _CACHE = tempfile.mkdtemp(prefix="dreamer-ops-xla-cache-")
    atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE


def dry_run(script, out, **env):
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable, **env)
    return subprocess.run(
        ["bash", f"ops/{script}", "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_dry_run_runs_every_step_and_packs_both_runs(tmp_path):
    result = dry_run("device_run.sh", tmp_path / "out")
    out = tmp_path / "out"
    log = (out / "device_run.log").read_text() if (out / "device_run.log").exists() else ""
    assert result.returncode == 0, result.stderr[-2000:] + log[-3000:]
    summary = (out / "summary.md").read_text()
    steps = [line.split("|")[1:3] for line in summary.splitlines() if line.startswith("| ") and line.count("|") == 4]
    names = sorted(name.strip() for name, _ in steps[1:])  # after the header row
    assert names[:3] == ["bench debug", "jax", "reference commands (debug, 40s each, concurrent)"]
    assert names[3:] == ["tests"], summary
    assert all(status.strip() == "ok" for _, status in steps[1:]), summary + log[-3000:]
    assert "| debug | cpu | float32 | auto |" in summary, summary
    assert set(sorted(os.listdir(out))) == {"device_run.log", "summary.md", "gpu_runs.tgz", "bench_debug.json"}
    bench = json.loads((out / "bench_debug.json").read_text())  # the bench's table, as JSON
    assert bench["bench"] == "bench_train" and bench["tables"][-1]["rows"][0][:3] == ["debug", "cpu", "float32"]
    with tarfile.open(out / "gpu_runs.tgz") as tar:
        tar.extractall(tmp_path / "runs", filter="data")
    for method in ("baseline", "adapt"):
        (run,) = (tmp_path / "runs" / f"gpu_atari100k_alien_{method}").iterdir()
        assert not (run / "ckpt").exists()
        assert "train.log" in os.listdir(run)
        config = (run / "config.yaml").read_text()
        assert "atari100k_alien" in config
        assert f"logdir: artifacts/gpu_atari100k_alien_{method}/seed0\n" in config  # no machine path
        assert tempfile.gettempdir() not in (run / "train.log").read_text()  # the call's work folder: no machine path
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert any(key.startswith("train/loss/") for row in rows for key in row), rows[-1:]


def test_speed_dry_run_times_the_update_and_its_parts(tmp_path):
    result = dry_run("device_speed.sh", tmp_path / "out", SETS="notriton_noautotune")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = (tmp_path / "out" / "speed.md").read_text()
    assert "## notriton_noautotune (ok in" in summary, summary
    assert "| debug | cpu | float32 | auto |" in summary, summary
    assert "| whole update |" in summary and "| imagination |" in summary, summary
    bad = dry_run("device_speed.sh", tmp_path / "bad", SETS="fastest")
    assert bad.returncode != 0  # an unknown flag set stops the call before any timing


def test_roadrunner_dry_run_trains_and_packs_the_run_without_its_checkpoint(tmp_path):
    result = dry_run("device_roadrunner.sh", tmp_path / "out")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert sorted(os.listdir(tmp_path / "out")) == ["device_roadrunner.log", "progress.log", "roadrunner_runs.tgz"]
    with tarfile.open(tmp_path / "out" / "roadrunner_runs.tgz") as tar:
        tar.extractall(tmp_path / "runs", filter="data")
    (run,) = (tmp_path / "runs" / "artifacts" / "gpu_road_runner_debug").iterdir()
    assert not (run / "ckpt").exists()
    config = (run / "config.yaml").read_text()
    assert "task: atari100k_road_runner" in config
    assert "artifacts/gpu_road_runner_debug/seed0\n" in config  # (relative on the device)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("train/loss/image" in row for row in rows), rows[-1:]
    log = (tmp_path / "runs" / "artifacts" / "logs" / "gpu_road_runner_debug_seed0.log").read_text()
    assert log.startswith("commit ") and "Finished at agent step 120" in log
