"""Figures: every plot of a comparison and of the mask diagnostics is written, PNG and PDF, non-empty."""

import pytest

from analysis import compare, figures, mask
from runfactory import write_study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    write_study(root, tasks=("atari100k_alien", "atari100k_ms_pacman"), seeds=3, episodes=40, log_lines=20)
    return root


def test_compare_figures_are_written(study, tmp_path):
    result = compare.compare([[str(study / "*_baseline")], [str(study / "*_adapt")]], reps=300)
    rendered = {stem: figures.render(fig) for stem, fig in compare.figures_of(result).items()}
    written = compare.write_outputs(result, tmp_path, rendered)
    for stem in ("aggregates", "probability_of_improvement", "sample_efficiency", "performance_profile", "final_scores",
                 "score_curves"):
        for suffix in (".png", ".pdf"):
            path = written[stem + suffix]
            assert path.is_file() and path.stat().st_size > 2000, path
    assert written["per_run.csv"].read_text().count("\n") == 13  # header + 12 runs


def test_mask_figures_are_written(study, tmp_path):
    runs = [str(study / "atari100k_alien_baseline"), str(study / "atari100k_alien_adapt")]
    written = mask.write_outputs(mask.mask_diagnostics(runs), tmp_path)
    for stem in ("mask_over_training", "mask_vs_loss"):
        for suffix in (".png", ".pdf"):
            assert written[stem + suffix].stat().st_size > 2000


def test_importing_figures_changes_no_global_state():
    """No backend switch, no seaborn theme at import: a notebook's own settings survive."""
    import subprocess
    import sys

    code = ("import matplotlib; before = dict(matplotlib.rcParams); "
            "import analysis.figures; after = dict(matplotlib.rcParams); "
            "changed = [k for k in before if before[k] != after[k]]; print(changed)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).parent.parent)).stdout.strip()
    assert out == "[]", out
