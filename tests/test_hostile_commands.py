"""Each command of the README against the input a stranger could hand it: a link planted in an
output folder, an output aimed at another run of an input folder, a CSV export or event file
that is huge, a FIFO or garbage, a folder of thousands of empty folders, an unknown published
agent, an archive in its own root or named as a link. Every case is one line and exit code 2 (or a problem
line and exit code 0), within seconds, and nothing is written through a link or into an input.
docs/hostile.md lists which test covers each command and file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from openloop_factory import compose, known_sequences, write_video
from runfactory import write_study
from typer.testing import CliRunner

import cli
from sweep import launch
from sweep.cli import app as sweep_app

SECRET = "not for any report\n"


def _invoke(args: list[str], app=cli.app):
    result = CliRunner().invoke(app, args)
    output = result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    return result


def _error_line(result) -> str:
    assert result.exit_code == 2, result.stdout + result.stderr
    errors = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stdout + result.stderr
    return errors[0]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Two methods of two seeds, each run with an open-loop video in its scope folder."""
    root = tmp_path_factory.mktemp("study")
    write_study(root, seeds=2, frames=20_000, episodes=20, log_lines=5, methods=("baseline", "adapt"))
    truth, pred = known_sequences(2, 8)
    for run in root.glob("*/seed*"):
        write_video(run, compose(truth, pred, 4))
    return root / "atari100k_alien_baseline", root / "atari100k_alien_adapt"


def _private(tmp_path: Path) -> Path:
    folder = tmp_path / "private"
    folder.mkdir()
    (folder / "key").write_text(SECRET)
    return folder


def _planted(out: Path, name: str, target: Path) -> None:
    (out / name).parent.mkdir(parents=True, exist_ok=True)
    (out / name).symlink_to(target)


# ---------------------------------------------------------------- links planted in an output folder


PLANTED = {
    "compare: figures/ a link": (["compare", "{b}", "{a}", "--reps", "100", "--no-report"], "figures", "dir"),
    "compare: tables/aggregate.md a link": (
        ["compare", "{b}", "{a}", "--reps", "100", "--no-report"],
        "tables/aggregate.md",
        "file",
    ),
    "report: openloop/ a link": (["report", "{b}", "{a}", "--reps", "100"], "openloop", "dir"),
    "mask: mask_summary.csv a link": (["mask", "{a}"], "mask_summary.csv", "file"),
    "openloop: a panel a link": (["openloop", "{b}", "{a}"], "panel_seq1.png", "file"),
    "openloop: openloop.mp4 a link": (["openloop", "{b}", "{a}"], "openloop.mp4", "file"),
}


@pytest.mark.parametrize("case", list(PLANTED))
def test_a_link_planted_in_the_output_folder_is_never_written_through(study, tmp_path, case):
    """compare wrote its figures and tables through a linked `figures/` or `tables/aggregate.md`,
    report its open-loop panels through a linked `openloop/`."""
    args, name, kind = PLANTED[case]
    private = _private(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    _planted(out, name, private if kind == "dir" else private / "key")
    argv = [a.format(b=study[0], a=study[1]) for a in args] + ["--out", str(out)]
    line = _error_line(_invoke(argv + (["--no-cache"] if argv[0] in ("compare", "report", "mask") else [])))
    assert "symbolic link" in line and name.split("/")[0] in line, line
    assert sorted(p.name for p in private.iterdir()) == ["key"] and (private / "key").read_text() == SECRET


def test_best_seed_video_and_watch_page_named_as_links_leave_the_target(study, tmp_path):
    private = _private(tmp_path)
    (tmp_path / "best.mp4").symlink_to(private / "key")
    line = _error_line(_invoke(["best-seed", str(study[1]), "--video", str(tmp_path / "best.mp4"), "--no-cache"]))
    assert "symbolic link" in line
    (tmp_path / "w.html").symlink_to(private / "key")
    result = _invoke(["watch", str(study[1]), "--html", str(tmp_path / "w.html"), "--iterations", "1"])
    assert result.exit_code == 0 and (private / "key").read_text() == SECRET
    assert (tmp_path / "w.html").is_file() and not (tmp_path / "w.html").is_symlink()  # the link replaced


def test_openloop_out_inside_another_run_of_an_input_folder_is_refused(study, tmp_path):
    """openloop checked --out against the best seed it picked only: the folder's other runs
    took the panels."""
    runs = sorted(study[1].iterdir())
    before = {run: sorted(p.relative_to(run) for p in run.rglob("*")) for run in runs}
    for run in runs:
        line = _error_line(_invoke(["openloop", str(study[0]), str(study[1]), "--out", str(run / "scope" / "x")]))
        assert "inside the input run" in line
    assert before == {run: sorted(p.relative_to(run) for p in run.rglob("*")) for run in runs}


# ---------------------------------------------------------------- inputs: exports, event files, folders


def _huge_csv(tmp_path: Path) -> Path:
    path = tmp_path / "export.csv"
    with open(path, "wb") as f:
        f.write(b"step,episode/score\n")
        f.truncate(2 << 30)  # 2 GiB, sparse: it read 7 bytes of memory per byte
    return path


def _fifo_csv(tmp_path: Path) -> Path:
    os.mkfifo(tmp_path / "export.csv")
    return tmp_path / "export.csv"


def _garbage_csv(tmp_path: Path) -> Path:
    path = tmp_path / "export.csv"
    path.write_bytes(bytes(range(256)) * 40)
    return path


def _event_folder(tmp_path: Path, make) -> Path:
    run = tmp_path / "tb" / "seed0"
    run.mkdir(parents=True)
    make(run / "events.out.tfevents.1.host")
    return tmp_path / "tb"


def _sparse(path: Path) -> None:
    with open(path, "wb") as f:
        f.truncate(2 << 30)


INPUTS = {
    "a 2 GiB sparse CSV export": (_huge_csv, 2, "read of one log"),
    "a CSV export that is a FIFO": (_fifo_csv, 2, "no runs found"),
    "a CSV export of binary garbage": (_garbage_csv, 2, "not a readable CSV export"),
    "a 2 GiB sparse event file": (lambda t: _event_folder(t, _sparse), 0, "truncated or damaged"),
    "an event file that is a FIFO": (lambda t: _event_folder(t, os.mkfifo), 2, "no runs found"),
    "an event file of garbage": (
        lambda t: _event_folder(t, lambda p: p.write_bytes(bytes(range(256)) * 40)),
        0,
        "truncated or damaged",
    ),
}


@pytest.mark.parametrize("case", list(INPUTS))
def test_hostile_exports_and_event_files_are_one_line_in_bounded_time_and_memory(tmp_path, case):
    import resource

    make, code, expected = INPUTS[case]
    path = make(tmp_path)
    start, rss = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = _invoke(["runs", str(path), "--no-cache"])
    output = result.stdout + result.stderr
    assert result.exit_code == code and expected in output, output
    if code == 2:
        _error_line(result)
    assert time.monotonic() - start < 20
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 500 * 1024  # KiB: under 500 MiB more


def test_ten_thousand_empty_folders_are_one_line_in_seconds(tmp_path):
    for i in range(10_000):
        (tmp_path / f"d{i:05d}").mkdir()
    start = time.monotonic()
    line = _error_line(_invoke(["runs", str(tmp_path), "--no-cache"]))
    assert "no runs found" in line and time.monotonic() - start < 20


@pytest.mark.parametrize("command", ["compare", "report"])
def test_an_unknown_published_agent_is_one_line(study, tmp_path, command):
    argv = [command, "published:muzero", str(study[1]), "--no-cache", "--out", str(tmp_path / "out")]
    assert "published:dreamerv3, published:ppo" in _error_line(_invoke(argv))
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- the sweep's archive


def test_pack_into_its_root_never_packs_itself_and_a_linked_name_is_refused(tmp_path):
    """An archive may lie in the sweep's root (outside every run dir and log, which test_writes
    covers): a later pack holds run dirs and logs only, never an earlier archive."""
    import tarfile

    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("tasks: [dummy_disc]\nconfigs: [debug]\narms:\n  baseline: {}\nseeds: [0]\n")
    prep = launch.prepare(str(sweep), root=str(tmp_path / "artifacts"))
    for run in prep.runs:
        Path(run.logdir).mkdir(parents=True)
        (Path(run.logdir) / "metrics.jsonl").write_text('{"step": 1}\n')
    for name in ("first.tgz", "second.tgz"):
        assert (
            _invoke(["pack", str(sweep), "--root", prep.root, "--out", f"{prep.root}/{name}"], sweep_app).exit_code == 0
        )
    with tarfile.open(f"{prep.root}/second.tgz") as tar:
        names = tar.getnames()
    assert names and not any(n.endswith(".tgz") for n in names), names
    private = _private(tmp_path)
    (tmp_path / "all.tgz").symlink_to(private / "key")
    line = _error_line(
        _invoke(["pack", str(sweep), "--root", prep.root, "--out", str(tmp_path / "all.tgz")], sweep_app)
    )
    assert "symbolic link" in line and (private / "key").read_text() == SECRET


def test_best_seed_video_to_a_bucket_is_one_line(study, tmp_path, monkeypatch):
    """The other commands that write local files are in test_remote_paths."""
    monkeypatch.chdir(tmp_path)
    line = _error_line(_invoke(["best-seed", str(study[1]), "--video", "s3://bucket/best.mp4", "--no-cache"]))
    assert "not to s3://" in line and not os.path.exists(tmp_path / "s3:")


@pytest.mark.parametrize("what", ["index", "video"])
def test_an_open_loop_video_linked_out_of_its_run_is_never_read(study, tmp_path, what):
    """A run whose scope video index, or the video it names, links to another run's file."""
    import shutil

    elsewhere = sorted(study[0].iterdir())[0]
    run = tmp_path / "atari100k_alien_adapt" / "seed0"
    shutil.copytree(sorted(study[1].iterdir())[0], run)
    folder = run / "scope" / "report-openloop-image.mp4"
    target = next(p for p in folder.iterdir() if (p.name == "index") == (what == "index"))
    target.unlink()
    target.symlink_to(elsewhere / "scope" / folder.name / target.name)
    line = _error_line(_invoke(["openloop", str(run), str(elsewhere), "--out", str(tmp_path / "out")]))
    assert ("outside the run folder" if what == "index" else "no video") in line, line


def test_a_sweep_or_arms_file_that_is_a_fifo_or_a_device_is_one_line_not_a_hang(tmp_path, capsys):
    """Opening a FIFO waited for a writer forever (an alarm turns a hang into a failure)."""
    import signal

    from dreamerv3 import main as trainer

    def hung(*_):
        raise TimeoutError("still reading after 30 s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)
    try:
        _fifo_files_are_one_line(tmp_path, capsys, trainer)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _fifo_files_are_one_line(tmp_path, capsys, trainer):
    os.mkfifo(tmp_path / "sweep.yaml")
    for path in (tmp_path / "sweep.yaml", "/dev/zero"):
        line = _error_line(_invoke(["run", str(path)], sweep_app))
        assert "not a regular file" in line
    os.mkfifo(tmp_path / "arms.yaml")
    logdir = str(tmp_path / "runs" / "{arm}" / "seed{seed}")
    argv = ["--logdir", logdir, "--configs", "debug", "--task", "dummy_disc", "--population.seeds", "0-1"]
    assert trainer.main([*argv, "--population.arms", str(tmp_path / "arms.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "arms.yaml: cannot read it (not a regular file)" in err, err
    assert not (tmp_path / "runs").exists()
