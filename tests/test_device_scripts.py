"""bench/device_roadrunner.sh, bench/device_speed.sh and bench/device_shift.sh --dry-run: the
GPU calls of the Road Runner runs and of the pre-registered shift study, on CPU with the debug
model, so a device call is known to work before it is made."""

import json
import os
import pathlib
import subprocess
import sys
import tarfile

ROOT = pathlib.Path(__file__).parent.parent


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


def test_shift_study_dry_run_trains_a_seed_block_as_populations_and_packs_it_small(tmp_path):
    """One block of the pre-registered study's seeds (two here): two population processes,
    every run dir packed under shift_powered/ with gzipped logs, no checkpoint, and scope/
    for one seed per arm; the toolkit reads the unpacked runs."""
    result = dry_run("device_shift.sh", tmp_path / "out", SWEEP="sweeps/shift_powered.yaml")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    log = (tmp_path / "out" / "device_shift.log").read_text()
    assert "8 to make in 2 processes" in log and "8 runs: 8 ok" in log, log[-2000:]
    with tarfile.open(tmp_path / "out" / "shift_runs.tgz") as tar:
        tar.extractall(tmp_path / "runs", filter="data")
    study = tmp_path / "runs" / "shift_powered"
    runs = sorted(study.glob("shift_cartpole_*/seed*"))
    assert len(runs) == 8 and not any((r / "ckpt").exists() for r in runs)
    assert all((r / "metrics.jsonl.gz").is_file() and not (r / "metrics.jsonl").exists() for r in runs)
    assert len([r for r in runs if (r / "scope").is_dir()]) == 4  # the best seed of each arm
    from analysis import ingest
    found = ingest.discover([str(study / f"shift_cartpole_{arm}") for arm in ("baseline", "adapt")])
    data = ingest.ingest(found, cache=False)
    assert sorted(r.seed for r in data.runs) == [1000, 1000, 1001, 1001] and data.scores.height > 0
