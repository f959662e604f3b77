"""dreamer-sweep for real: the shift experiment's sweep file (four arms) at a tiny budget on
the local backend and on a single-node SLURM brought up here; re-runs skip finished runs,
a killed run resumes from its checkpoint, a run over its time limit is stopped.

The runs are the trainer's own (debug model on CartPole: built, acting, logging and saving
checkpoints), stopped before their first update: each arm's update is a program of its own,
and compiling them takes minutes on 2 cores (the trainer's training and resume have their
own tests). The runs share the test run's JAX compile cache (conftest.py)."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
from slurm_cluster import SlurmCluster, missing

ROOT = pathlib.Path(__file__).parent.parent
SHIFT = "studies/shift_cartpole/sweep.yaml"  # as the pilot: solo runs (TINY)
ARMS = ("baseline", "adapt", "placebo", "fixed")
TINY = [
    "configs=[cartpole,debug]",
    "budget.steps=24",
    "seeds=[0]",
    "population=false",
    "flags.env.gym.shift.step=12",
    "flags.agent.imag_adapt.warmup=0",
    "flags.run.train_ratio=16",
    "flags.run.log_every=0",
    "flags.run.save_every=0",
    "backend.slurm.cpus_per_job=1",
    "backend.slurm.gpus_per_job=0",
]


def sweep(root, *options, sets=TINY, wait=True):
    argv = [sys.executable, "-m", "sweep.cli", "run", SHIFT, "--root", str(root)]
    for item in sets:
        argv += ["--set", item]
    argv += list(options)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if not wait:
        return subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def config_of(run):
    return (run / "config.yaml").read_text()


def check_finished_shift_sweep(root, result, run_logs=True):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for arm in ARMS:
        run = root / f"shift_cartpole_{arm}" / "seed0"
        config = config_of(run)
        assert "task: gym_CartPole-v1" in config and f"method: {arm}" in config
        assert (run / "ckpt" / "latest").read_text().strip().endswith("-000000000024")
        assert (run / "metrics.jsonl").stat().st_size > 0
        if run_logs:
            log = (root / "logs" / f"shift_cartpole_{arm}_seed0.log").read_text()
            assert log.startswith("commit ") and "Finished at agent step 24" in log
        done = json.loads((root / ".sweep" / "done" / f"shift_cartpole_{arm}" / "seed0.json").read_text())
        assert f"--method {arm}" in " ".join(done["flags"])
    assert "imag_length: 14" in config_of(root / "shift_cartpole_fixed" / "seed0")
    assert "mode: placebo" in config_of(root / "shift_cartpole_placebo" / "seed0")
    assert "placebo_rate: 0.11" in config_of(root / "shift_cartpole_placebo" / "seed0")
    folders = " ".join(str(root / f"shift_cartpole_{arm}") for arm in ARMS)
    assert f"dreamer-report compare {folders} --names baseline,adapt,placebo,fixed" in result.stdout


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("local") / "artifacts"
    return root, sweep(root, "--jobs", "2")


def test_local_backend_makes_the_four_arms(local_sweep):
    root, result = local_sweep
    check_finished_shift_sweep(root, result)
    assert "4 ok" in result.stdout


def test_rerun_skips_finished_runs(local_sweep):
    root, _ = local_sweep
    logs = {p: p.read_text() for p in (root / "logs").iterdir()}
    started = time.time()
    again = sweep(root)
    assert again.returncode == 0 and "4 skipped" in again.stdout, again.stdout + again.stderr
    assert time.time() - started < 20  # no trainer started
    assert {p: p.read_text() for p in (root / "logs").iterdir()} == logs


def test_killed_run_resumes_from_its_checkpoint(tmp_path):
    root = tmp_path / "runs"
    run = root / "shift_cartpole_baseline" / "seed0"
    sets = [s for s in TINY if not s.startswith("budget.")] + [
        "budget.steps=500",
        "flags.run.train_fill=1000",
    ]  # ~3 s of acting, no update
    proc = sweep(root, "--arms", "baseline", sets=sets, wait=False)
    try:
        deadline = time.time() + 120
        while not (run / "ckpt" / "latest").exists() and time.time() < deadline:
            time.sleep(0.1)
        assert (run / "ckpt" / "latest").exists(), "no checkpoint within 120 s"
    finally:
        os.kill(proc.pid, signal.SIGTERM)  # the sweep stops its trainer, as on Ctrl-C
        output = proc.communicate(timeout=60)[0]
    assert proc.returncode != 0, output
    killed_at = int((run / "ckpt" / "latest").read_text().strip().rsplit("-", 1)[1])
    assert killed_at < 500
    assert not (root / ".sweep" / "done" / "shift_cartpole_baseline" / "seed0.json").exists()
    result = sweep(root, "--arms", "baseline", sets=sets)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "ok (resumed)" in result.stdout
    log = (root / "logs" / "shift_cartpole_baseline_seed0.log").read_text()
    assert "Resumed from" in log and f"at agent step {killed_at}." in log
    assert "Finished at agent step 500" in log
    steps = [json.loads(line)["step"] for line in (run / "scores.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # resume wrote no episode twice


def test_time_limit_stops_a_run(tmp_path):
    root = tmp_path / "runs"
    result = sweep(root, "--arms", "adapt", sets=TINY + ["budget.time_limit=0.5"])
    assert result.returncode == 1, result.stdout
    assert "timed out" in result.stdout and "did not finish" in result.stdout
    log = (root / "logs" / "shift_cartpole_adapt_seed0.log").read_text()
    assert log.startswith("commit ") and "stopped after the time limit of 0.5 s" in log
    assert not (root / ".sweep" / "done").exists()


def test_population_processes_make_the_four_arms(tmp_path):
    """--population: baseline, adapt and placebo in one process, fixed (another imag_length,
    other shapes) in a second; every member an ordinary run dir with its marker."""
    root = tmp_path / "artifacts"
    result = sweep(root, "--population")
    check_finished_shift_sweep(root, result, run_logs=False)
    assert "4 to make in 2 processes" in result.stdout
    logs = sorted(p.name for p in (root / "logs").iterdir())
    assert len(logs) == 2 and all("_population_" in name for name in logs), logs
    texts = [(root / "logs" / name).read_text() for name in logs]
    assert sorted(t.count("Logdir: ") for t in texts) == [1, 3]
    assert all(t.startswith("commit ") and "Finished at agent step 24" in t for t in texts)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    reason = missing()
    if reason:
        pytest.skip(reason)
    with SlurmCluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster


def test_slurm_backend_makes_the_four_arms(slurm, tmp_path):
    root = tmp_path / "artifacts"
    result = sweep(root, "--backend", "slurm")
    check_finished_shift_sweep(root, result)
    assert list((root / ".sweep" / "slurm").glob("*_0_log.out")), "no submitit task logs"
    again = sweep(root, "--backend", "slurm")
    assert again.returncode == 0 and "4 skipped" in again.stdout, again.stdout


def test_slurm_does_not_submit_a_run_twice_while_its_task_is_queued(slurm, tmp_path):
    root = tmp_path / "artifacts"
    first = sweep(root, "--backend", "slurm", "--arms", "adapt", "--no-wait")
    assert first.returncode == 0 and "submitted SLURM job" in first.stdout, first.stdout + first.stderr
    record = json.loads((root / ".sweep" / "slurm" / "submitted.json").read_text())
    (job_id,) = set(record.values())
    try:
        again = sweep(root, "--backend", "slurm", "--arms", "adapt")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "in queue" in again.stdout and "still queued or running" in again.stdout
        assert json.loads((root / ".sweep" / "slurm" / "submitted.json").read_text()) == record
    finally:
        subprocess.run(["scancel", job_id.split("_")[0]], check=False)
