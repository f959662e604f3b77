"""Every command's writes go through one writer (dreamerv3/safefile.py): never inside an input,
never through a link planted at the target, always by replace. Sweep logs, markers, records
and archives, the toolkit's results and figures; archives hold names relative to their root
and read back with tarfile's `data` filter."""

import json
import os
import pathlib
import tarfile
import time

import pytest
from typer.testing import CliRunner

from dreamerv3 import safefile
from sweep import execute, launch, plan, slurm
from sweep.cli import app
from sweep.spec import SweepError

runner = CliRunner()
SWEEP = """\
tasks: [dummy_disc]
configs: [debug]
arms:
  baseline: {agent.imag_adapt.enabled: false}
seeds: [0, 1]
"""


def prepared(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP)
    return path, launch.prepare(str(path), root=str(tmp_path / "artifacts"))


def logged(tmp_path):
    path, prep = prepared(tmp_path)
    for run in prep.runs:
        pathlib.Path(run.logdir).mkdir(parents=True)
        (pathlib.Path(run.logdir) / "metrics.jsonl").write_text("{}\n")
        pathlib.Path(run.log).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(run.log).write_text("commit abc: python dreamerv3/main.py\n")
    return path, prep


def test_the_writer_replaces_refuses_links_and_inputs(tmp_path):
    target, secret = tmp_path / "out.txt", tmp_path / "secret"
    secret.write_text("keep")
    safefile.write(target, "one")
    safefile.write(target, "two")
    assert target.read_text() == "two" and not (tmp_path / "out.txt.tmp").exists()
    target.unlink()
    target.symlink_to(secret)
    with pytest.raises(safefile.UnsafeTarget, match="symbolic link"):
        safefile.write(target, "x")
    (tmp_path / "run").mkdir()
    with pytest.raises(safefile.OutputInInput, match="inside the input"):
        safefile.write(tmp_path / "run" / "report.md", "x", inputs=[tmp_path / "run"])
    (tmp_path / "real").mkdir()
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "figs").symlink_to(tmp_path / "real")
    with pytest.raises(safefile.UnsafeTarget, match="figs is a symbolic link"):
        safefile.write(tmp_path / "root" / "figs" / "a.png", b"x", within=tmp_path / "root")
    with pytest.raises(RuntimeError):
        with safefile.replacing(tmp_path / "half.bin") as f:
            f.write(b"partial")
            raise RuntimeError("stop")
    assert secret.read_text() == "keep" and not os.listdir(tmp_path / "real")
    assert not (tmp_path / "half.bin").exists() and not (tmp_path / "half.bin.tmp").exists()


def test_the_sweep_never_writes_through_its_planted_log_or_marker(tmp_path):
    _, prep = prepared(tmp_path)
    run, secret = prep.runs[0], tmp_path / "secret"
    secret.write_text("keep")
    os.makedirs(os.path.dirname(run.marker))
    os.symlink(secret, run.marker)
    execute.mark_finished(run, "abc", 1.0)
    assert secret.read_text() == "keep" and not os.path.islink(run.marker)
    assert plan.is_finished(run)
    os.makedirs(os.path.dirname(run.log))
    os.symlink(secret, run.log)
    job = plan.solo_jobs([run], {}, 0, str(tmp_path), str(tmp_path), "abc")[0]
    with pytest.raises(SweepError, match="cannot append to the log"):
        execute.Process(job)
    assert secret.read_text() == "keep"


def test_a_fifo_marker_or_record_is_no_marker_and_never_blocks(tmp_path):
    _, prep = prepared(tmp_path)
    run = prep.runs[0]
    os.makedirs(os.path.dirname(run.marker))
    os.mkfifo(run.marker)
    folder = tmp_path / "slurm"
    folder.mkdir()
    os.mkfifo(folder / "submitted.json")
    started = time.time()
    assert not plan.is_finished(run) and slurm.busy(str(folder)) == set()
    assert time.time() - started < 1


def test_a_slurm_record_with_odd_ids_and_a_missing_squeue_are_one_line(tmp_path, monkeypatch):
    (tmp_path / "submitted.json").write_text(json.dumps({"a/seed0": 123, "b/seed0": "77_0", "c": None}))
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(SweepError, match="squeue .* failed"):
        slurm.busy(str(tmp_path))


@pytest.mark.parametrize("target", ["log", "sweep", "logdir"])
def test_pack_refuses_an_output_onto_its_inputs(tmp_path, target):
    path, prep = logged(tmp_path)
    run = prep.runs[0]
    out = {"log": run.log, "sweep": str(path), "logdir": os.path.join(run.logdir, "x.tgz")}[target]
    before = pathlib.Path(out).read_bytes() if os.path.exists(out) else None
    result = runner.invoke(app, ["pack", str(path), "--root", prep.root, "--out", out])
    assert result.exit_code == 2 and "inside the input" in result.output, result.output
    assert (pathlib.Path(out).read_bytes() if os.path.exists(out) else None) == before


def test_pack_holds_only_real_files_under_its_root(tmp_path):
    path, prep = logged(tmp_path)
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "key").write_text("secret")
    logdir = pathlib.Path(prep.runs[0].logdir)
    (logdir / "leak").symlink_to(outside / "key")
    other = pathlib.Path(prep.runs[1].logdir)
    os.rename(other, tmp_path / "moved")
    other.symlink_to(tmp_path / "moved")  # a run folder that is a link out of the root
    out = tmp_path / "runs.tgz"
    result = runner.invoke(app, ["pack", str(path), "--root", prep.root, "--out", str(out)])
    assert result.exit_code == 0, result.output
    with tarfile.open(out) as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "unpacked", filter="data")
    assert names and all(n.startswith("artifacts/") and ".." not in n.split("/") for n in names)
    assert not [n for n in names if n.endswith("/leak") or "seed1/" in n], names
    (tmp_path / "elsewhere.tgz").symlink_to(outside / "key")
    result = runner.invoke(app, ["pack", str(path), "--root", prep.root, "--out", str(tmp_path / "elsewhere.tgz")])
    assert result.exit_code == 2 and "symbolic link" in result.output
    assert (outside / "key").read_text() == "secret"


def test_results_never_write_into_the_run_sets_or_through_a_link(tmp_path):
    from analysis import results

    root = tmp_path / "artifacts"
    (root / "set").mkdir(parents=True)
    with pytest.raises(safefile.OutputInInput):
        results.write("text", root / "set" / "results.md", inputs=[root])
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"keep")
    (root / "set" / "curve.png").symlink_to(secret)
    import matplotlib.pyplot as plt

    with pytest.raises(safefile.UnsafeTarget):
        results._save(plt.figure(), root / "set" / "curve.png")
    assert secret.read_bytes() == b"keep"


# Nothing found is executed: pinned code is checked against its commit before every use.


def test_pinned_code_found_in_the_root_runs_only_if_it_is_the_commits(tmp_path):
    path, _ = prepared(tmp_path)
    root = tmp_path / "runs"
    job = launch.prepare(str(path), root=str(root), commit="HEAD").jobs[0]
    exported = pathlib.Path(job.code)
    assert launch.prepare(str(path), root=str(root), commit="HEAD").jobs[0].code == job.code
    for tamper in ("edit", "extra", "cache"):
        main = exported / "dreamerv3" / "main.py"
        original = main.read_bytes()
        if tamper == "edit":
            main.write_bytes(original + b"\nimport os; os.system('echo owned')\n")
        elif tamper == "extra":
            (exported / "dreamerv3" / "sitecustomize.py").write_text("print('owned')\n")
        else:
            (exported / "dreamerv3" / "__pycache__").mkdir()
        result = runner.invoke(app, ["run", str(path), "--root", str(root), "--commit", "HEAD", "--jobs", "1"])
        assert result.exit_code == 2 and "differs from commit" in result.output, result.output
        main.write_bytes(original)
        for extra in ("sitecustomize.py", "__pycache__"):
            target = exported / "dreamerv3" / extra
            if target.is_dir():
                target.rmdir()
            elif target.exists():
                target.unlink()
    planted = root / ".sweep" / "code"
    import shutil

    shutil.rmtree(planted)
    (planted / job.commit / "dreamerv3").mkdir(parents=True)
    (planted / job.commit / "dreamerv3" / "evil.py").write_text("print('owned')\n")
    result = runner.invoke(app, ["run", str(path), "--root", str(root), "--commit", "HEAD", "--dry-run"])
    assert result.exit_code == 0  # a dry run exports nothing
    with pytest.raises(SweepError, match="differs from commit"):
        launch.prepare(str(path), root=str(root), commit="HEAD")


def test_a_gym_id_naming_a_module_is_never_imported():
    from dreamerv3.envs import gym

    with pytest.raises(ValueError, match="no registered gymnasium env"):
        gym.Gym("os.path:Env")
