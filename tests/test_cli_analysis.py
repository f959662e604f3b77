"""`dreamer-report compare / mask / runs` through typer's CliRunner: output, files, exit codes."""

import json

import pytest
from runfactory import write_run, write_study
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    write_study(root, tasks=("atari100k_alien",), seeds=3, episodes=40, log_lines=20)
    return root


def test_compare_prints_the_table_and_writes_files(study, tmp_path):
    out = tmp_path / "report"
    result = runner.invoke(
        app,
        [
            "compare",
            str(study / "atari100k_alien_baseline"),
            str(study / "atari100k_alien_adapt"),
            "--out",
            str(out),
            "--reps",
            "300",
            "--seed",
            "3",
            "--metric",
            "iqm,og",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "IQM" in result.output and "Optimality gap" in result.output and "Median" not in result.output
    assert "seed 3, 300 reps" in result.output and "power, adapt vs baseline:" in result.output
    assert "rough guide" in " ".join(result.output.split())  # 3 runs per method: the spread is a guess
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 3 and summary["reps"] == 300 and summary["methods"] == ["baseline", "adapt"]
    assert (out / "per_run.csv").is_file() and (out / "figures" / "aggregates.png").is_file()
    html = (out / "report.html").read_text()  # compare also writes the report
    assert "Probability of improvement" in html and (out / "report.pdf").stat().st_size > 0


def test_compare_with_names(study, tmp_path):
    result = runner.invoke(
        app,
        [
            "compare",
            str(study / "atari100k_alien_baseline"),
            str(study / "atari100k_alien_adapt"),
            "--out",
            str(tmp_path),
            "--reps",
            "200",
            "--names",
            "dreamer,masked",
            "--no-report",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "P(> dreamer)" in result.output and "masked (n=3)" in result.output
    assert not (tmp_path / "report.html").exists()


def test_compare_over_a_frame_interval(study, tmp_path):
    """--frames scores every run on the same env frames and says so in the output and summary."""
    result = runner.invoke(
        app,
        [
            "compare",
            str(study / "atari100k_alien_baseline"),
            str(study / "atari100k_alien_adapt"),
            "--out",
            str(tmp_path),
            "--reps",
            "200",
            "--frames",
            "0:1e9",
            "--no-report",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "episodes ending in env frames (0, 1,000,000,000]" in " ".join(result.output.split())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["frames"] == [0, 1_000_000_000]
    # An interval no episode ends in leaves nothing to compare: one line, exit 2.
    empty = runner.invoke(
        app,
        [
            "compare",
            str(study / "atari100k_alien_baseline"),
            str(study / "atari100k_alien_adapt"),
            "--out",
            str(tmp_path / "e"),
            "--reps",
            "200",
            "--frames",
            "1e12:2e12",
            "--no-report",
        ],
    )
    assert empty.exit_code == 2 and len(empty.output.strip().splitlines()) == 1, empty.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--metric", "iqm,sharpe"], "unknown metric 'sharpe'"),
        (["--reps", "5"], "--reps 5"),
        (["--window", "0"], "--window 0"),
        (["--frames", "9000"], "expected START:END"),
        (["--frames", "50k:40k"], "START < END"),
        (["--power-delta", "nan"], "--power-delta nan"),
        (["--power-delta", "-1"], "--power-delta -1"),
        (["--power-max-seeds", "1"], "--power-max-seeds 1: expected 2 .. 1000"),
        (["--power-max-seeds", "5000"], "--power-max-seeds 5000"),
        (["--names", "a,b,c"], "--names has 3 label(s) for 2 methods"),
        (["--names", "x,x"], "method 'x' is given twice"),
    ],
)
def test_compare_bad_options_exit_2_with_one_line(study, tmp_path, args, message):
    result = runner.invoke(
        app,
        [
            "compare",
            str(study / "atari100k_alien_baseline"),
            str(study / "atari100k_alien_adapt"),
            "--out",
            str(tmp_path),
        ]
        + args,
    )
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_compare_one_seed_exits_2(tmp_path):
    write_run(tmp_path, "atari100k_pong", "baseline", 0, episodes=10, log_lines=5)
    write_run(tmp_path, "atari100k_pong", "adapt", 0, episodes=10, log_lines=5)
    result = runner.invoke(
        app,
        [
            "compare",
            str(tmp_path / "atari100k_pong_baseline"),
            str(tmp_path / "atari100k_pong_adapt"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 2 and "at least 2 seeds" in result.output


@pytest.mark.parametrize("command", [["compare", "nope_a", "nope_b"], ["mask", "nope_a"], ["runs", "nope_a"]])
def test_missing_path_exits_2_with_one_line(tmp_path, command):
    result = runner.invoke(app, [command[0]] + [str(tmp_path / p) for p in command[1:]])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "nope_a: path does not exist" in lines[0]
    assert "Traceback" not in result.output


def test_mask_prints_summary_and_writes_figures(study, tmp_path):
    result = runner.invoke(
        app,
        [
            "mask",
            str(study / "atari100k_alien_baseline" / "seed0_20261123T101010"),
            str(study / "atari100k_alien_adapt" / "seed0_20261123T101010"),
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "adapt/alien/s0" in result.output and "baseline/alien/s0" in result.output
    assert (tmp_path / "mask_over_training.png").is_file() and (tmp_path / "mask_vs_loss.pdf").is_file()


def test_runs_lists_runs_and_problems(study, tmp_path):
    run = write_run(tmp_path, "atari100k_bank_heist", "ppo_fixhp", 2, episodes=10, log_lines=5)
    with open(run / "scores.jsonl", "a") as f:
        f.write('{"step": 12')
    result = runner.invoke(app, ["runs", str(tmp_path), str(study / "atari100k_alien_adapt")])
    assert result.exit_code == 0, result.output
    assert "atari100k_bank_heist" in result.output and "ppo_fixhp" in result.output
    assert "torn last line" in result.output and "4 run(s)" in result.output
