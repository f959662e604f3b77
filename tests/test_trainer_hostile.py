"""The trainer against a logdir someone prepared and flags nobody should pass: links planted
in the logdir (never followed by a write or a cleanup), damaged or foreign checkpoints (one
line, or the checkpoint before), impossible numbers (one line, exit 2, nothing written).
Runs use the fake agent of tests/fakes.py: no compile."""

import errno
import gzip
import json
import pathlib

import elements
import numpy as np
import pytest
from fakes import FakeAgent

from dreamerv3 import checkpoint, logs, main, safefile, scopefile
from dreamerv3 import configs as configlib

EPISODE = 40


def args(logdir, steps, *extra):
    return [
        "--logdir",
        str(logdir),
        "--configs",
        "debug",
        "--task",
        "dummy_disc",
        "--run.steps",
        str(steps),
        "--env.dummy.length",
        str(EPISODE),
        *extra,
    ]


class _Saveable:
    def __init__(self):
        self.value = 0

    def save(self):
        return {"v": np.int64(self.value)}

    def load(self, data):
        self.value = int(data["v"])


def _outside(tmp_path):
    """A folder outside the logdir holding a file that must survive."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep me")
    (folder / "done").write_text("")
    return folder


# ---------------------------------------------------------------- links in the logdir


def test_cleanup_never_deletes_through_a_linked_ckpt_entry(tmp_path):
    outside = _outside(tmp_path)
    ckpt = checkpoint.Checkpoint(tmp_path / "run" / "ckpt")
    ckpt.register("x", _Saveable())
    (tmp_path / "run" / "ckpt").mkdir(parents=True)
    (tmp_path / "run" / "ckpt" / "00000000T000000F000000-000000000001").symlink_to(outside)
    ckpt.save(5)
    ckpt.save(6)  # the cleanup of old checkpoints runs after each save
    assert (outside / "keep.txt").read_text() == "keep me" and (outside / "done").exists()
    assert checkpoint.newest(tmp_path / "run" / "ckpt").name.endswith("000000000006")


def test_writes_never_go_through_a_planted_temporary_name(tmp_path):
    outside = _outside(tmp_path)
    run = tmp_path / "run"
    (run / "ckpt").mkdir(parents=True)
    (run / "ckpt" / "latest.tmp").symlink_to(outside / "keep.txt")
    ckpt = checkpoint.Checkpoint(run / "ckpt")
    ckpt.register("x", _Saveable())
    ckpt.save(5)
    (run / "metrics.jsonl").write_text('{"step": 1, "a": 1}\n{"step": 9, "a": 2}\n')
    (run / "metrics.jsonl.tmp").symlink_to(outside / "keep.txt")
    logs.trim(run, 5)
    assert (outside / "keep.txt").read_text() == "keep me"
    assert (run / "metrics.jsonl").read_text() == '{"step": 1, "a": 1}\n'
    assert not (run / "ckpt" / "latest").is_symlink() and not (run / "metrics.jsonl").is_symlink()


@pytest.mark.parametrize("name", ["metrics.jsonl", "scores.jsonl", "scope/train-loss-dyn.float", "ckpt"])
def test_a_run_refuses_a_linked_log_file_or_folder(tmp_path, capsys, name):
    outside = _outside(tmp_path)
    run = tmp_path / "run"
    (run / "scope").mkdir(parents=True)
    (run / name).symlink_to(outside if name == "ckpt" else outside / "keep.txt")
    assert main.main(args(run, 50), agent_cls=FakeAgent) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "a symbolic link" in err and "Traceback" not in err
    assert sorted(p.name for p in outside.iterdir()) == ["done", "keep.txt"]
    assert (outside / "keep.txt").read_text() == "keep me"


def test_a_packed_run_is_not_trained_into(tmp_path, capsys):
    """A run dir whose logs were gzipped for shipping: training would write plain logs beside
    them (a folder the toolkit refuses), so the trainer says so in one line, writes nothing."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl.gz").write_bytes(gzip.compress(b'{"step": 1, "a": 1}\n'))
    assert main.main(args(run, 50), agent_cls=FakeAgent) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "metrics.jsonl.gz, a packed run" in err
    assert sorted(p.name for p in run.iterdir()) == ["metrics.jsonl.gz"]


def test_scope_appends_never_follow_a_link(tmp_path):
    outside = _outside(tmp_path)
    (tmp_path / "x.float").symlink_to(outside / "keep.txt")
    with pytest.raises(OSError):
        scopefile.append_floats(tmp_path / "x.float", [1], [2.0])
    assert (outside / "keep.txt").read_text() == "keep me"
    with pytest.raises(safefile.LinkInLogdir):
        safefile.refuse_links([tmp_path / "x.float"])


# ---------------------------------------------------------------- resume


def _two_checkpoints(logdir):
    """A finished run whose ckpt/ holds its two last complete checkpoints: every run keeps
    two, so that a damaged newest one has one before it."""
    assert main.main(args(logdir, 100), agent_cls=FakeAgent) == 0
    older, newest = checkpoint.complete_folders(logdir / "ckpt")
    assert checkpoint.step_of(older) < checkpoint.step_of(newest) == 100
    return older.name, newest


def test_truncated_agent_resumes_from_the_checkpoint_before(tmp_path, capsys):
    logdir = tmp_path / "run"
    older, newest = _two_checkpoints(logdir)
    data = (newest / "agent.pkl").read_bytes()
    (newest / "agent.pkl").write_bytes(data[: len(data) // 2])  # a disk that filled up
    capsys.readouterr()
    assert main.main(args(logdir, 140), agent_cls=FakeAgent) == 0
    out = capsys.readouterr()
    warnings = [line for line in out.err.splitlines() if "Warning" in line]
    assert len(warnings) == 1 and "agent.pkl" in warnings[0] and older in warnings[0], out.err
    step = checkpoint.step_of(logdir / "ckpt" / older)
    assert f"Resumed from {logdir / 'ckpt' / older} at agent step {step}" in out.out


class _SizedAgent(FakeAgent):
    """The fake agent with weights sized by agent.rssm.deter, loaded as the real agent does."""

    def __init__(self, obs_space, act_space, config):
        super().__init__(obs_space, act_space, config)
        self.weights = {"w": np.zeros(config.agent.rssm.deter, np.float32)}

    def load(self, state):
        if state["w"].shape != self.weights["w"].shape:
            raise ValueError(f"agent.load: ['w'] has shape {state['w'].shape}, expected {self.weights['w'].shape}")
        super().load(state)


def test_checkpoint_of_another_size_is_one_line(tmp_path, capsys):
    logdir = tmp_path / "run"
    assert main.main(args(logdir, 60), agent_cls=_SizedAgent) == 0
    capsys.readouterr()
    assert main.main(args(logdir, 100, "--agent.rssm.deter", "64"), agent_cls=_SizedAgent) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "has shape (32,), expected (64,)" in lines[0], err
    assert "no earlier complete checkpoint" in lines[0] and "Traceback" not in err
    source = tmp_path / "from"
    assert (
        main.main(
            args(source, 60, "--run.from_checkpoint", str(logdir), "--agent.rssm.deter", "64"), agent_cls=_SizedAgent
        )
        == 2
    )
    assert "has shape (32,), expected (64,)" in capsys.readouterr().err


# ---------------------------------------------------------------- flags


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--run.envs", "0"], "--run.envs 0: expected a whole number >= 1"),
        (["--batch_size", "-4"], "--batch_size -4: expected a whole number >= 1"),
        (["--batch_length", "0"], "--batch_length 0"),
        (["--run.train_ratio", "0"], "--run.train_ratio 0.0: expected a number > 0"),
        (["--run.steps", "-5"], "--run.steps -5.0"),
        (["--run.steps", "nan"], "--run.steps nan"),
        (["--run.steps", "100.5"], "--run.steps 100.5: expected a whole number"),
        (["--replay.size", "0"], "--replay.size 0.0"),
        (["--replay.chunksize", "0"], "--replay.chunksize 0"),
        (["--run.log_every", "-1"], "--run.log_every -1: expected a number >= 0"),
        (["--run.eval_eps", "0"], "--run.eval_eps 0"),
        (["--agent.rssm.deter", "0"], "--agent.rssm.deter 0"),
        (["--agent.imag_length", "0"], "--agent.imag_length 0"),
        (["--agent.horizon", "0"], "--agent.horizon 0"),
        (["--agent.opt.lr", "-1e-4"], "--agent.opt.lr -0.0001: expected a number >= 0"),
        (["--agent.return_lambda", "1.5"], "--agent.return_lambda 1.5: expected a number in [0, 1]"),
        (["--env.dummy.size", "0,64"], "--env.dummy.size 0,64"),
        (["--agent.retnorm.plo", "99"], "plo 99.0 / phi 95.0"),
        (["--run.from_checkpoint", "nowhere/at/all"], "--run.from_checkpoint nowhere/at/all: no complete checkpoint"),
    ],
)
def test_impossible_numbers_are_one_line_before_anything_is_written(tmp_path, capsys, flags, expected):
    assert main.main(args(tmp_path / "run", 50, *flags), agent_cls=FakeAgent) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and expected in lines[0], err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("presets", [["debug"], ["atari100k", "size12m"], ["cartpole", "size1m"], ["size400m"]])
def test_presets_and_legitimate_zeros_pass(tmp_path, presets):
    argv = [
        "--logdir",
        str(tmp_path),
        "--configs",
        *presets,
        "--run.duration",
        "0",
        "--run.train_fill",
        "0",
        "--replay_context",
        "0",
        "--run.save_every",
        "0",
        "--agent.opt.warmup",
        "0",
    ]
    assert configlib.check_numbers(configlib.parse(argv)) is None


# ---------------------------------------------------------------- a full disk


class _FullDisk:
    """Makes the `nth` write of a file named `name` fail as on a full disk (OSError ENOSPC, no
    file name, as os.write gives), after half of its data went out."""

    def __init__(self, monkeypatch, name, nth):
        self.name, self.nth, self.calls = name, nth, 0
        open_, write_bytes = pathlib.Path.open, elements.path.Path.write_bytes  # logs; checkpoint files

        def opened(path, mode="r", *a, **kw):
            f = open_(path, mode, *a, **kw)
            return self.wrap(f) if path.name == name and "a" in mode and self.due() else f

        def written(path, data):
            if path.name == name and self.due():
                write_bytes(path, data[: len(data) // 2])
                raise OSError(errno.ENOSPC, "No space left on device")
            return write_bytes(path, data)

        monkeypatch.setattr(pathlib.Path, "open", opened)
        monkeypatch.setattr(elements.path.Path, "write_bytes", written)

    def due(self):
        self.calls += 1
        return self.calls == self.nth

    @staticmethod
    def wrap(f):
        class Full:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                f.close()

            def write(self, text):
                f.write(text[: len(text) // 2])
                raise OSError(errno.ENOSPC, "No space left on device")

        return Full()


@pytest.mark.parametrize("name", ["metrics.jsonl", "scores.jsonl", "agent.pkl"])
def test_a_full_disk_is_one_line_and_the_run_resumes(tmp_path, capsys, monkeypatch, name):
    """A log line or a checkpoint file that no longer fits: a traceback from the logger's thread
    or the checkpoint writer. Now one line naming the file, exit code 1, and the same command
    resumes from the last complete checkpoint."""
    logdir = tmp_path / "run"
    full = _FullDisk(monkeypatch, name, nth=3)
    capsys.readouterr()
    assert main.main(args(logdir, 300), agent_cls=FakeAgent) == 1
    err = capsys.readouterr().err
    assert full.calls >= 3 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    named = logdir / name if name.endswith(".jsonl") else logdir / "ckpt"  # the checkpoint: its folder
    assert len(errors) == 1 and f"cannot write {named}" in errors[0] and "No space left" in errors[0], err
    kept = checkpoint.complete_folders(logdir / "ckpt")
    assert kept and checkpoint.step_of(kept[-1]) < 300
    monkeypatch.undo()
    assert main.main(args(logdir, 300), agent_cls=FakeAgent) == 0
    out = capsys.readouterr().out
    assert f"Resumed from {kept[-1]} at agent step {checkpoint.step_of(kept[-1])}" in out
    steps = [json.loads(line)["step"] for line in (logdir / "scores.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] > checkpoint.step_of(kept[-1])


def test_a_full_disk_in_scopes_writer_thread_is_one_line(tmp_path, capsys, monkeypatch):
    """scope writes its columns in threads of its own; a failed append surfaces at a later write
    or at the save, named by the logdir (scope's error names no file)."""
    formats = pytest.importorskip("scope.formats")
    append, calls = formats.table_append, []

    def full(*a, **kw):
        calls.append(1)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return append(*a, **kw)

    monkeypatch.setattr(formats, "table_append", full)
    logdir = tmp_path / "run"
    assert main.main(args(logdir, 300), agent_cls=FakeAgent) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"cannot write {logdir}" in errors[0] and "Traceback" not in err, err
    monkeypatch.undo()
    assert main.main(args(logdir, 300), agent_cls=FakeAgent) == 0


@pytest.mark.parametrize("kind", ["link", "fifo"])
@pytest.mark.parametrize("name", ["config.yaml", "metrics.jsonl", "scores.jsonl", "scope/train-loss-dyn.float"])
def test_a_linked_or_fifo_config_or_log_is_one_line_not_a_write_or_a_hang(tmp_path, capsys, name, kind):
    """config.yaml was written through a planted link (the file outside replaced); a FIFO at
    config.yaml or a log blocked the trainer forever (an alarm turns a hang into a failure)."""
    import os
    import signal

    outside = _outside(tmp_path)
    run = tmp_path / "run"
    (run / "scope").mkdir(parents=True)
    if kind == "link":
        (run / name).symlink_to(outside / "keep.txt")
    else:
        os.mkfifo(run / name)

    def hung(*_):
        raise TimeoutError("the trainer still waits after 30 s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)
    try:
        assert main.main(args(run, 50), agent_cls=FakeAgent) == 2
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    err = capsys.readouterr().err
    expected = "a symbolic link" if kind == "link" else "not a regular file or folder"
    assert err.count("error:") == 1 and expected in err and name in err and "Traceback" not in err, err
    assert (outside / "keep.txt").read_text() == "keep me"
