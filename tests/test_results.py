"""docs/results.md is what `make results` computes from the shipped runs, and the documents'
links into it resolve. The readout and long-run figure modules behind it, on tiny inputs."""

import re
from pathlib import Path

import matplotlib.pyplot as plt
import polars as pl
import pytest
from typer.testing import CliRunner

from analysis import ingest, longrun, readout, results
from cli import app

ROOT = Path(__file__).parent.parent
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "artifacts").rglob("*.md")),
    *sorted((ROOT / "studies").rglob("*.md")),
]


def test_results_md_is_regenerated_identically(tmp_path):
    """A number typed into results.md, or a run file changed without `make results`, fails here."""
    out = tmp_path / "results.md"
    result = CliRunner().invoke(app, ["results", "--root", str(ROOT / "artifacts"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == (ROOT / "docs" / "results.md").read_text(), "run `make results` and commit"


def test_every_link_into_results_md_names_one_of_its_sections():
    """Links into docs/results.md and into a study's results.md (both generated) land on a heading."""
    links = [
        (doc, doc.parent / path, anchor)
        for doc in DOCS
        for path, anchor in re.findall(r"\]\(([^)#\s]*results\.md)#([\w-]+)\)", doc.read_text())
    ]
    linked = {target.resolve() for _, target, _ in links}
    assert linked >= {
        (ROOT / "docs" / "results.md").resolve(),
        (ROOT / "studies" / "shift_cartpole" / "results.md").resolve(),
    }
    anchors = {}
    for _, target, _ in links:
        if target not in anchors:
            text = target.read_text() if target.is_file() else ""
            anchors[target] = {results.slug(line[3:]) for line in text.splitlines() if line.startswith("## ")}
    assert [(doc.name, str(target), a) for doc, target, a in links if a not in anchors[target]] == []


def test_results_command_names_a_missing_root_in_one_line(tmp_path):
    result = CliRunner().invoke(app, ["results", "--root", str(tmp_path / "nothing"), "--out", str(tmp_path / "r.md")])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert not (tmp_path / "r.md").exists()


def _scores(rows):
    """ingest-style long score table from (seed, step, score, length) rows."""
    long = [
        (f"s{seed}", seed, step, key, value)
        for seed, step, score, length in rows
        for key, value in (("episode/score", score), ("episode/length", length))
    ]
    return pl.DataFrame(long, schema=["run", "seed", "step", "key", "value"], orient="row")


def test_readout_bins_are_half_open_at_the_end_as_the_published_curve():
    per_run = readout.score_bins(
        _scores(
            [
                (0, 10_000, 100.0, 50),
                (0, 10_001, 0.0, 50),
                (0, 50_000, 900.0, 90),
                (1, 45_000, 700.0, 70),
                (1, 52_000, 1000.0, 100),
            ]
        )
    )
    rows = {(r["seed"], r["bin"]): r for r in per_run.iter_rows(named=True)}
    assert rows[0, 0]["episodes"] == 1 and rows[0, 10_000]["score"] == 0.0
    assert rows[0, 40_000]["score"] == 900.0 and rows[0, 40_000]["replay_rew"] == 10.0
    columns, table = readout.score_table(per_run, last_step=52_000)
    assert columns[-1] == "published mean [seeds' range]"
    by_bin = {row[0]: row for row in table}
    assert by_bin["(40k, 50k]"][1:] == ["1, 900.0", "1, 700.0", "800.0 [700.0, 900.0]", "798 [188, 1,400]"]
    assert by_bin["(50k, ~52k]"][1:] == ["0, -", "1, 1,000.0", "-", "(50k, 60k]: 1,009 [840, 1,225]"]


def test_readout_curve_draws_each_seed_and_the_published_points():
    fig = readout.curve_figure(readout.score_bins(_scores([(0, 45_000, 700.0, 70), (1, 45_000, 500.0, 70)])), "size1m")
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert "this trainer, size1m, seed 0" in labels and "this trainer, size1m, seed 1" in labels
    assert fig.axes[0].get_ylabel() == "mean episode score (raw)"
    plt.close(fig)


def test_long_run_losses_plot_todays_names_from_a_run_that_logged_the_old_ones():
    """The long Alien run logged train/loss/rec and train/ent/policy; every panel has its data."""
    runs = ingest.discover([str(ROOT / "artifacts" / "atari100k_alien_long")])
    data = ingest.ingest(runs, cache=False)
    fig = longrun.loss_figure(data.metrics)
    assert [len(ax.get_lines()[0].get_xdata()) >= 10 for ax in fig.axes] == [True] * 3
    assert [ax.get_title() for ax in fig.axes] == list(longrun.LOSSES.values())
    plt.close(fig)
    with pytest.raises(ValueError, match="train/loss/image"):
        longrun.loss_figure(data.metrics.filter(pl.col("key") != "train/loss/image"))


def test_parameter_counts_read_each_log_set_and_say_when_none_was_printed(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "demo_seed0.log").write_text("start\nParameter count: total 1,234 (enc 34)\n")
    (tmp_path / "logs" / "demo_seed1.log").write_text("Parameter count: total 1,234 (enc 34)\n")
    (tmp_path / "logs" / "other_seed0.log").write_text("killed before the agent was built\n")
    run = tmp_path / "gpu_set" / "seed0"
    run.mkdir(parents=True)
    (run / "train.log").write_text("Parameter count: total 5,000,000\nParameter count: total 5,000,001\n")
    assert results.parameter_counts(tmp_path) == [
        ["`demo`", 2, "1,234"],
        ["`other`", 1, "not printed"],
        ["`gpu_set`", 1, "5,000,000, 5,000,001"],
    ]


@pytest.mark.parametrize(
    "csv_text, expected",
    [
        ("step,seconds\n1,2\n", "line 2: expected numbers in the columns step, seconds and score"),
        ("step,seconds,score\n1,2,x\n", "line 2: expected numbers"),
        ("step,seconds,score\n", "no rows"),
    ],
)
def test_a_wall_clock_missing_a_column_is_one_line(tmp_path, csv_text, expected):
    from analysis import ingest, results

    (tmp_path / "wall_clock.csv").write_text(csv_text)
    with pytest.raises(ingest.IngestError, match=expected):
        results._clock(tmp_path / "wall_clock.csv")


@pytest.mark.parametrize(
    "text",
    ['{"step": 1}\n{"other": 2}\n', '{"step": 1}\n[1]\n', '{"step": 1}\n{"step": NaN}\n', '{"step": 1}\nnot json\n'],
)
def test_a_log_missing_a_key_is_one_line_naming_file_and_line(tmp_path, text):
    from analysis import ingest, results

    (tmp_path / "metrics.jsonl").write_text(text)
    with pytest.raises(
        ingest.IngestError, match=r"metrics.jsonl, line 2: expected a JSON object with a number under 'step'"
    ):
        results._rows(tmp_path, "metrics.jsonl", "step")
