"""ops/device_roadrunner.sh and ops/device_speed.sh --dry-run: the GPU calls of the Road
Runner runs, on CPU with the debug model, so a device call is known to work before it is made
(the shift study's call: test_device_image.py)."""

import json
import os
import pathlib
import subprocess
import sys
import tarfile

ROOT = pathlib.Path(__file__).parent.parent.parent


def dry_run(script, out, **env):
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable, **env)
    return subprocess.run(["bash", f"bench/{script}", "--dry-run"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_roadrunner_dry_run_trains_and_packs_the_run_without_its_checkpoint(tmp_path):
    result = dry_run("device_roadrunner.sh", tmp_path / "out")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert sorted(os.listdir(tmp_path / "out")) == [
        "device_roadrunner.log", "progress.log", "roadrunner_runs.tgz"]
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


def test_speed_dry_run_times_the_update_and_its_parts(tmp_path):
    result = dry_run("device_speed.sh", tmp_path / "out", SETS="notriton_noautotune")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = (tmp_path / "out" / "speed.md").read_text()
    assert "## notriton_noautotune (ok in" in summary, summary
    assert "| debug | cpu | float32 | auto |" in summary, summary
    assert "| whole update |" in summary and "| imagination |" in summary, summary
    bad = dry_run("device_speed.sh", tmp_path / "bad", SETS="fastest")
    assert bad.returncode != 0  # an unknown flag set stops the call before any timing

