"""ops/device_population.sh --dry-run: the GPU population benchmark's one call, on CPU
with the debug model (N = 1, a 2-member mixed-arm population and the solo agent), so the
device call is known to work.
CartPole only here (the Atari rows take the same path with an image model)."""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).parent.parent.parent


def test_population_dry_run_prints_a_row_per_size_with_the_solo_row(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path / "out"), PYTHON=sys.executable, TASKS="cartpole")
    result = subprocess.run(
        ["bash", "ops/device_population.sh", "--dry-run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = (tmp_path / "out" / "population.md").read_text()
    assert "## cartpole (ok in" in summary, summary
    rows = [
        line.split("|")[1].strip()
        for line in summary.splitlines()
        if line.startswith("| ") and not line.startswith("| members")
    ]
    assert rows == ["solo", "1", "2:mixed"], summary
    assert "| solo |" in summary and " 1.00 |" in summary  # the solo row is the reference
    bad = subprocess.run(
        ["bash", "ops/device_population.sh", "--dry-run"],
        cwd=ROOT,
        env=dict(env, TASKS="pong"),
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "unknown task 'pong'" in bad.stderr
