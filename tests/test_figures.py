"""Figures: every plot of a comparison says what it plots (human-normalized or raw), and every
plot of a comparison and of the mask diagnostics is written as PNG and PDF."""

import json
import subprocess
import sys

import pytest
from runfactory import write_study

from analysis import compare, figures, mask


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    write_study(root, tasks=("atari100k_alien", "atari100k_ms_pacman"), seeds=3, episodes=40, log_lines=20)
    return root


def _texts(fig) -> list[str]:
    """Every axis label and title of a figure."""
    return [t for ax in fig.axes for t in (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) if t]


def test_compare_figures_are_written_and_say_human_normalized_on_atari(study, tmp_path):
    result = compare.compare([[str(study / "*_baseline")], [str(study / "*_adapt")]], reps=300)
    assert result.unit == "human-normalized score" and result.metrics == ("iqm", "mean", "median", "og")
    drawn = compare.figures_of(result)
    assert _texts(drawn["aggregates"]) == [
        "human-normalized score",
        "IQM",
        "human-normalized score",
        "Mean",
        "human-normalized score",
        "Median",
        "gap to 1.0 (lower is better)",
        "Optimality gap",
    ]
    assert "IQM human-normalized score" in _texts(drawn["sample_efficiency"])
    assert "human-normalized score τ" in _texts(drawn["performance_profile"])
    assert "final human-normalized score" in _texts(drawn["final_scores"])
    rendered = {stem: figures.render(fig) for stem, fig in drawn.items()}
    written = compare.write_outputs(result, tmp_path, rendered)
    assert {stem + suffix for stem in drawn for suffix in (".png", ".pdf")} <= set(written)
    assert json.loads(written["summary.json"].read_text())["score_unit"] == "human-normalized score"
    assert written["per_run.csv"].read_text().count("\n") == 13  # header + 12 runs


def test_raw_task_figures_say_raw_and_leave_out_the_optimality_gap(tmp_path):
    """CartPole has no random/human table: its scores are raw, and the gap to 1.0 of a raw score
    means nothing, so it is left out with a note (and refused when it is all that was asked)."""
    write_study(tmp_path, tasks=("gym_CartPole-v1",), seeds=3, episodes=30, log_lines=10)
    groups = [[str(tmp_path / "gym_CartPole-v1_baseline")], [str(tmp_path / "gym_CartPole-v1_adapt")]]
    result = compare.compare(groups, reps=300)
    assert result.unit == "raw score" and result.metrics == ("iqm", "mean", "median")
    assert any(note.startswith("optimality gap: ") and "raw scores" in note for note in result.notes)
    drawn = compare.figures_of(result)
    assert _texts(drawn["aggregates"]).count("raw score") == 3
    assert "IQM raw score" in _texts(drawn["sample_efficiency"])
    assert "final raw score" in _texts(drawn["final_scores"])
    assert not any("human" in text for fig in drawn.values() for text in _texts(fig))
    assert compare.summary(result)["score_unit"] == "raw score"
    with pytest.raises(compare.CompareError, match="--metric og: the optimality gap is the shortfall"):
        compare.compare(groups, reps=300, metrics=("og",))


def test_mask_figures_are_written_with_their_labels(study, tmp_path):
    runs = [str(study / "atari100k_alien_baseline"), str(study / "atari100k_alien_adapt")]
    result = mask.mask_diagnostics(runs)
    scatter = figures.plot_mask_scatter(result.data.metrics, result.data.runs, {"baseline": "C0", "adapt": "C1"})
    assert _texts(scatter) == [
        "train/loss/dyn (nats)",
        "train/imag_adapt/mask_mean",
        "Mask mean vs dynamics loss (one point per logged step)",
    ]
    over = figures.plot_mask(result.data.metrics, result.data.runs, {"baseline": "C0", "adapt": "C1"})
    assert {run.name for run in result.data.runs} <= set(_texts(over))
    written = mask.write_outputs(result, tmp_path)
    assert {f"{stem}{suffix}" for stem in ("mask_over_training", "mask_vs_loss") for suffix in (".png", ".pdf")} <= set(
        written
    )


def test_importing_figures_changes_no_global_state():
    """No backend switch, no seaborn theme at import: a notebook's own settings survive."""

    code = (
        "import matplotlib; before = dict(matplotlib.rcParams); "
        "import analysis.figures; after = dict(matplotlib.rcParams); "
        "changed = [k for k in before if before[k] != after[k]]; print(changed)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(__import__("pathlib").Path(__file__).parent.parent),
    ).stdout.strip()
    assert out == "[]", out
