"""Damaged and hostile run folders, one row each: how the run is damaged, the command, and the
problem line (exit 0, the rest of the run kept) or the one error line (exit 2) expected.

Every row starts from a healthy run of tests/runfactory.py; a row fails if the command prints
a traceback, exits otherwise, or does not print the expected line.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from runfactory import write_run, write_scope, write_study
from typer.testing import CliRunner

import cli
from analysis import ingest

EPISODES = 12


def _run(root: Path, name: str = "atari100k_alien_adapt", seed: int = 0) -> Path:
    folder = write_run(root, "atari100k_alien", "adapt", seed, frames=40_000, episodes=EPISODES, log_lines=6)
    if folder.parent.name != name:
        target = root / name / folder.name
        target.parent.mkdir(parents=True, exist_ok=True)
        folder.rename(target)
        folder = target
    return folder


def _append(run: Path, text: str, file: str = "scores.jsonl") -> None:
    with open(run / file, "a") as f:
        f.write(text)


def _insert(run: Path, line: str, at: int = 3, file: str = "scores.jsonl") -> None:
    """Put `line` as line number `at` (1-based) of the file."""
    lines = (run / file).read_text().splitlines(keepends=True)
    lines.insert(at - 1, line + "\n")
    (run / file).write_text("".join(lines))


def _checkpoint(run: Path, agent: bytes) -> None:
    folder = run / "ckpt" / "20261123T101010F000000-000000001000"
    folder.mkdir(parents=True)
    (folder / "agent.pkl").write_bytes(agent)
    (folder / "done").write_bytes(b"")


class _RunsCode:
    """A pickle that runs code when loaded (it would create the file `marker`)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@dataclass
class Case:
    name: str
    damage: Callable[[Path, Path], list[str]]  # (run dir, tmp folder) -> command-line arguments
    expect: str  # a line of the output (problem) or of stderr (error) holding this text
    exit_code: int = 0


def runs(run: Path) -> list[str]:
    return ["runs", str(run)]


CASES = [
    # -- values of the wrong type: reported, the other episodes kept
    Case(
        "score as a string",
        lambda r, t: (_insert(r, '{"step": 5, "episode/score": "30"}'), runs(r))[1],
        "scores.jsonl:3: episode/score: a string ('30'), expected a number; value skipped",
    ),
    Case(
        "score true",
        lambda r, t: (_insert(r, '{"step": 5, "episode/score": true}'), runs(r))[1],
        "scores.jsonl:3: episode/score: a boolean, expected a number",
    ),
    Case(
        "score null",
        lambda r, t: (_insert(r, '{"step": 5, "episode/score": null}'), runs(r))[1],
        "scores.jsonl:3: episode/score: null, expected a number",
    ),
    Case(
        "nested value",
        lambda r, t: (_insert(r, '{"step": 5, "episode/score": {"a": [1]}}'), runs(r))[1],
        "scores.jsonl:3: episode/score: an object, expected a number",
    ),
    Case(
        "Infinity score",
        lambda r, t: (_insert(r, '{"step": 5, "episode/score": Infinity}'), runs(r))[1],
        "episode/score: its 1 NaN/inf values are left out of the scores",
    ),
    Case(
        "1e400 score",
        lambda r, t: (_insert(r, '{"step": 5, "episode/score": 1e400}'), runs(r))[1],
        "episode/score: its 1 NaN/inf values are left out of the scores",
    ),
    Case(
        "key twice in one object",
        lambda r, t: (_insert(r, '{"step": 5, "episode/score": 1, "episode/score": 2}'), runs(r))[1],
        "scores.jsonl:3: key 'episode/score' twice in one object; the last value kept",
    ),
    # -- damage of a killed writer: that line reported, the rest kept
    Case(
        "crash fragment glued to the next line",
        lambda r, t: (_insert(r, '{"step": 200, "epi{"step": 201, "episode/score": 3.0}'), runs(r))[1],
        "scores.jsonl:3: a record cut short (18 bytes) glued to the next one; the cut part skipped",
    ),
    Case(
        "line that is not JSON",
        lambda r, t: (_insert(r, '{"step": 5, oops'), runs(r))[1],
        "scores.jsonl:3: not a JSON object (a write cut short?); line skipped",
    ),
    Case(
        "torn last line",
        lambda r, t: (_append(r, '{"step": 39999, "episode/sc'), runs(r))[1],
        f"scores.jsonl:{EPISODES + 1}: torn last line (27 bytes) skipped",
    ),
    Case(
        "a JSON list line",
        lambda r, t: (_insert(r, "[1, 2]"), runs(r))[1],
        "scores.jsonl:3: a list where a JSON object was expected; line skipped",
    ),
    Case(
        "7 MB line of 500k keys",
        lambda r, t: (
            _insert(r, json.dumps({"step": 5, **{f"k{i}": 1 for i in range(500_000)}}), 2, "metrics.jsonl"),
            runs(r),
        )[1],
        "metrics.jsonl:2: line of 6,888,902 bytes, longer than 1,048,576; skipped",
    ),
    # -- bad steps: the line skipped and reported
    Case(
        "step as a string",
        lambda r, t: (_insert(r, '{"step": "5", "episode/score": 1}'), runs(r))[1],
        "scores.jsonl:3: 'step' is a string ('5'), expected a whole number; line skipped",
    ),
    Case(
        "step as a fraction",
        lambda r, t: (_insert(r, '{"step": 5.5, "episode/score": 1}'), runs(r))[1],
        "scores.jsonl:3: 'step' is a number (5.5), expected a whole number; line skipped",
    ),
    Case(
        "step beyond int64",
        lambda r, t: (_insert(r, '{"step": 99999999999999999999, "episode/score": 1}'), runs(r))[1],
        "scores.jsonl:3: 'step' 99999999999999999999 is outside 0 .. 2**63-1; line skipped",
    ),
    Case(
        "no step",
        lambda r, t: (_insert(r, '{"episode/score": 1}'), runs(r))[1],
        "scores.jsonl:3: no 'step' field; line skipped",
    ),
    # -- config.yaml
    Case(
        "seed beyond int64 in config.yaml",
        lambda r, t: ((r / "config.yaml").write_text("seed: 99999999999999999999\ntask: atari100k_alien\n"), runs(r))[
            1
        ],
        "config.yaml: config.yaml: seed '99999999999999999999' is not a whole number in int64 range",
    ),
    Case(
        "oversized config.yaml",
        lambda r, t: ((r / "config.yaml").write_text("seed: 0\n" + "#" * 2_000_000), runs(r))[1],
        "config.yaml: 2,000,008 bytes, larger than the 1,048,576 a config can be",
    ),
    Case(
        "YAML alias bomb before a checkpoint load",
        lambda r, t: (
            (r / "config.yaml").write_text("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"),
            _checkpoint(r, pickle.dumps({})),
            shutil.copytree(r, t / "twin" / r.name),
            ["openloop", str(r), str(t / "twin" / r.name), "--source", "ckpt", "--out", str(t / "ol")],
        )[-1],
        "YAML anchors and aliases are not accepted in a run config",
        2,
    ),
    Case(
        "recursive YAML alias",
        lambda r, t: (
            (r / "config.yaml").write_text("a: &a [*a]\n"),
            _checkpoint(r, pickle.dumps({})),
            ["best-seed", str(r), "--video", str(t / "v.mp4"), "--source", "ckpt"],
        )[-1],
        "YAML anchors and aliases are not accepted",
        2,
    ),
    Case(
        "config.yaml that is a folder",
        lambda r, t: ((r / "config.yaml").unlink(), (r / "config.yaml").mkdir(), runs(r))[-1],
        "config.yaml: not a regular file; task and seed taken from the folder names",
    ),
    # -- files that are not files: never read (a FIFO would block forever)
    Case(
        "metrics.jsonl that is a FIFO",
        lambda r, t: ((r / "metrics.jsonl").unlink(), os.mkfifo(r / "metrics.jsonl"), runs(r))[-1],
        "metrics.jsonl: not a regular file; skipped",
    ),
    Case(
        "agent.pkl that is a FIFO",
        lambda r, t: (
            _checkpoint(r, b""),
            (r / "ckpt").joinpath("20261123T101010F000000-000000001000", "agent.pkl").unlink(),
            os.mkfifo(r / "ckpt" / "20261123T101010F000000-000000001000" / "agent.pkl"),
            ["best-seed", str(r), "--video", str(t / "v.mp4"), "--source", "ckpt"],
        )[-1],
        "agent.pkl: not a regular file",
        2,
    ),
    # -- checkpoints: never executed
    Case(
        "garbage agent.pkl",
        lambda r, t: (
            _checkpoint(r, os.urandom(4096)),
            ["best-seed", str(r), "--video", str(t / "v.mp4"), "--source", "ckpt"],
        )[-1],
        "agent.pkl: not a checkpoint this trainer wrote",
        2,
    ),
    Case(
        "agent.pkl that runs code",
        lambda r, t: (
            _checkpoint(r, pickle.dumps({"w": _RunsCode(t / "ran")})),
            ["best-seed", str(r), "--video", str(t / "v.mp4"), "--source", "ckpt"],
        )[-1],
        "refused to load: it references pathlib.Path.touch",
        2,
    ),
    # -- scope files
    Case(
        "scope .float that is a folder",
        lambda r, t: ((r / "scope" / "train-loss-dyn.float").mkdir(parents=True), runs(r))[1],
        "scope/train-loss-dyn.float: not a regular file; skipped",
    ),
    Case(
        "scope record torn",
        lambda r, t: (
            write_scope(r, "train/x", [1], [1.0]),
            open(r / "scope" / "train-x.float", "ab").write(b"\0" * 5),
            runs(r),
        )[-1],
        "scope/train-x.float: torn last record (5 bytes) skipped",
    ),
    Case(
        "video index of random bytes",
        lambda r, t: (
            (r / "scope" / "report-openloop-image.mp4").mkdir(parents=True),
            (r / "scope" / "report-openloop-image.mp4" / "index").write_bytes(os.urandom(1000)),
            ["best-seed", str(r), "--video", str(t / "v.mp4"), "--source", "scope"],
        )[-1],
        "index: not a scope video index (expected 16-byte rows of step and id)",
        2,
    ),
    # -- outputs never written over
    Case(
        "mask --out on an existing file",
        lambda r, t: ((t / "taken").write_text("keep me"), ["mask", str(r), "--out", str(t / "taken")])[-1],
        "taken: exists and is not a folder",
        2,
    ),
    Case(
        "--cache-dir on an existing file",
        lambda r, t: ((t / "taken").write_text("keep me"), ["runs", str(r), "--cache-dir", str(t / "taken")])[-1],
        "--cache-dir",
        2,
    ),
    Case(
        "watch --html on a folder",
        lambda r, t: ["watch", str(r), "--html", str(t), "--iterations", "1"],
        "is a folder; expected a file name for the page",
        2,
    ),
    Case(
        "watch --interval inf",
        lambda r, t: ["watch", str(r), "--interval", "inf", "--iterations", "1"],
        "--interval",
        2,
    ),
    Case(
        "watch on hostile lines",
        lambda r, t: (
            _insert(r, '{"step": 5, "x": 1' + "0" * 400 + "}", 2, "metrics.jsonl"),
            _insert(r, "[" * 100_000, 3, "metrics.jsonl"),
            ["watch", str(r), "--iterations", "1"],
        )[-1],
        "metrics.jsonl:2: x: an integer too large",
    ),
    # -- paths
    Case("literal path with '?'", lambda r, t: runs(_run(t / "exp?1", seed=3)), "adapt/alien/s3"),
    Case("literal path with brackets", lambda r, t: runs(_run(t / "new [v2]", seed=4)), "adapt/alien/s4"),
    Case(
        "glob over self-referencing symlinks",
        lambda r, t: (
            (r.parent / "self").symlink_to("."),
            (r.parent / "up").symlink_to(".."),
            ["runs", str(r.parent.parent) + "/**"],
        )[-1],
        "1 run(s)",
    ),
    # -- names are printed literally
    Case(
        "rich markup in a folder name",
        lambda r, t: runs(_run(t, "atari100k_alien_[bold red]x")),
        "[bold red]x/alien/s0",
    ),
    Case(
        "closing markup in the task of config.yaml",
        lambda r, t: ((r / "config.yaml").write_text("seed: 0\ntask: '[/]gym_[/bold]x'\n"), runs(r))[1],
        "[/]gym_[/bold]x",
    ),
    Case(
        "ANSI escape in a folder name",
        lambda r, t: runs(_run(t, "atari100k_alien_\x1b[31mred")),
        "\\x1b[31mred/alien/s0",
    ),
    # -- flags
    Case(
        "--power-delta nan",
        lambda r, t: ["compare", str(r), str(r), "--power-delta", "nan"],
        "--power-delta nan: expected a positive IQM difference",
        2,
    ),
    Case(
        "--power-delta -1",
        lambda r, t: ["compare", str(r), str(r), "--power-delta", "-1"],
        "--power-delta -1.0: expected a positive IQM difference",
        2,
    ),
    Case(
        "same folder on both sides with --names",
        lambda r, t: ["compare", str(r), str(r), "--names", "x,y", "--out", str(t / "out")],
        "found under both 'x' and 'y'; a run belongs to one method",
        2,
    ),
    Case(
        "--seed out of range",
        lambda r, t: ["compare", str(r), str(r), "--seed", "-1"],
        "--seed -1: expected a whole number in 0 .. 4294967295",
        2,
    ),
    Case(
        "--seed out of range (report)",
        lambda r, t: ["report", str(r), str(r), "--seed", str(2**40)],
        f"--seed {2**40}: expected a whole number",
        2,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_damaged_run(case: Case, tmp_path):
    run = _run(tmp_path / "runs")
    args = case.damage(run, tmp_path)
    uses_cache = args[0] != "watch" and "--cache-dir" not in args  # watch reads appended bytes, uncached
    result = CliRunner().invoke(cli.app, args + (["--no-cache"] if uses_cache else []))
    output = result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    assert result.exit_code == case.exit_code, output
    if case.exit_code == 2:
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        errors = errors or [line for line in result.stderr.splitlines() if "Invalid value for" in line]  # typer's
        assert len(errors) == 1 and case.expect in errors[0], result.stderr
    else:
        assert case.expect in result.stdout, result.stdout
    assert "\x1b" not in result.stdout  # no raw escape from a name reaches the terminal
    assert not (tmp_path / "ran").exists()  # no checkpoint ran code
    if (tmp_path / "taken").exists():
        assert (tmp_path / "taken").read_text() == "keep me"


def test_value_damage_keeps_the_other_episodes(tmp_path):
    """One bad score must not drop the run's other scores (it dropped all 40 before)."""

    run = _run(tmp_path)
    _insert(run, '{"step": 5, "episode/score": "30"}')
    _insert(run, '{"step": 200, "epi{"step": 201, "episode/score": 3.0}', at=6)
    data = ingest.ingest(ingest.discover([str(run)]), cache=False)
    scores = data.scores.filter(data.scores["key"] == "episode/score")
    assert scores.height == EPISODES + 1 and 201 in scores["step"].to_list()


def test_mathtext_in_a_method_name_is_drawn_literally(tmp_path):
    """`a$\\foo$` as a folder name made matplotlib parse mathtext and the comparison fail."""

    write_study(tmp_path, seeds=2, frames=20_000, episodes=20, log_lines=5)
    weird = tmp_path / "atari100k_alien_$\\foo$"
    (tmp_path / "atari100k_alien_adapt").rename(weird)
    result = CliRunner().invoke(
        cli.app,
        [
            "compare",
            str(tmp_path / "atari100k_alien_baseline"),
            str(weird),
            "--reps",
            "200",
            "--no-report",
            "--out",
            str(tmp_path / "out"),
            "--no-cache",
        ],
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "$\\foo$" in result.stdout and (tmp_path / "out" / "figures" / "aggregates.png").is_file()
