"""One process at a time on a logdir (the trainer) and on a sweep's root: a second one refuses
in one line naming the holder; a lock left by a killed process is taken over."""

import os
import signal
import subprocess
import sys
import time

from typer.testing import CliRunner

from dreamerv3 import main, runlock
from sweep.cli import app

runner = CliRunner()


def holder(folder):
    """A process that holds `folder` until killed; returns it once the lock is taken."""
    code = (
        "import sys, time; from dreamerv3 import runlock; "
        "assert runlock.claim(sys.argv[1]) is None; print('held', flush=True); time.sleep(600)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_trainer_on_a_logdir_refuses_naming_the_first(tmp_path, capsys):
    logdir = tmp_path / "run"
    proc = holder(logdir)
    try:
        code = main.main(["--configs", "debug", "--logdir", str(logdir), "--run.steps", "10"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and f"in use by process {proc.pid}" in err[0], err
        assert not (logdir / "config.yaml").exists()  # refused before anything was written
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # The killed holder's lock file is still there, its lock is gone: taken over.
    assert (logdir / runlock.NAME).exists()
    assert runlock.claim(logdir) is None and runlock.claim(logdir) is None  # ours, again
    assert f"process {os.getpid()}" in (logdir / runlock.NAME).read_text()
    runlock.release(logdir)


def test_a_second_sweep_on_a_root_refuses_naming_the_first(tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("tasks: [dummy_disc]\nconfigs: [debug]\narms: {a: {}}\nseeds: [0]\n")
    root = tmp_path / "runs"
    proc = holder(root)
    try:
        started = time.time()
        result = runner.invoke(app, ["run", str(sweep), "--root", str(root)])
        assert result.exit_code == 2 and f"root {root}: in use by process {proc.pid}" in result.output, result.output
        assert time.time() - started < 30 and not (root / "dummy_disc_a").exists()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_a_lock_that_cannot_be_written_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    assert "cannot write there" in runlock.claim(tmp_path / "file" / "run")
