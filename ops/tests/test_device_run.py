"""ops/device_run.sh --dry-run: the GPU call's every step, on CPU at toy size,
so the one device call is known to work before it is made."""

import json
import os
import pathlib
import subprocess
import sys
import tarfile

ROOT = pathlib.Path(__file__).parent.parent.parent


def test_dry_run_runs_every_step_and_packs_both_runs(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path / "out"), PYTHON=sys.executable)
    result = subprocess.run(["bash", "ops/device_run.sh", "--dry-run"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    out = tmp_path / "out"
    log = (out / "device_run.log").read_text() if (out / "device_run.log").exists() else ""
    assert result.returncode == 0, result.stderr[-2000:] + log[-3000:]
    summary = (out / "summary.md").read_text()
    steps = [line.split("|")[1:3] for line in summary.splitlines()
             if line.startswith("| ") and line.count("|") == 4]
    names = sorted(name.strip() for name, _ in steps[1:])  # after the header row
    assert names[:3] == ["bench debug", "jax", "reference commands (debug, 40s each, concurrent)"]
    assert names[3:] == ["tests"], summary
    assert all(status.strip() == "ok" for _, status in steps[1:]), summary + log[-3000:]
    assert "| debug | cpu | float32 | auto |" in summary, summary
    assert set(sorted(os.listdir(out))) == {"device_run.log", "summary.md", "gpu_runs.tgz"}
    with tarfile.open(out / "gpu_runs.tgz") as tar:
        tar.extractall(tmp_path / "runs", filter="data")
    for method in ("baseline", "adapt"):
        (run,) = (tmp_path / "runs" / f"gpu_atari100k_alien_{method}").iterdir()
        assert not (run / "ckpt").exists()
        assert "train.log" in os.listdir(run)
        config = (run / "config.yaml").read_text()
        assert "atari100k_alien" in config
        assert f"logdir: artifacts/gpu_atari100k_alien_{method}/seed0\n" in config  # no machine path
        assert "/tmp/" not in (run / "train.log").read_text()
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert any(key.startswith("train/loss/") for row in rows for key in row), rows[-1:]
