"""The shift study's shipped pilot runs match their labels and the write-up, and results.md is
what `make results` computes from them."""

import json
from pathlib import Path

from analysis import ingest, mask, runconfig
from analysis.results import _log_text
from studies.shift_cartpole import preregistered, results

ROOT = Path(__file__).parents[3]
ARTIFACTS = ROOT / "artifacts"
STUDY = ROOT / "studies" / "shift_cartpole"


def _last_line(run: Path, name: str) -> dict:
    """The last line of a shipped run's log, stored plain or gzipped."""
    return json.loads(_log_text(run, name).splitlines()[-1])


def test_results_md_is_regenerated_identically(tmp_path):
    """A number typed into results.md, or a run file changed without `make results`, fails here."""
    out = tmp_path / "results.md"
    assert results.main(["--root", str(ARTIFACTS), "--out", str(out)]) == 0
    assert out.read_text() == (STUDY / "results.md").read_text(), "run `make results` and commit"


def test_results_names_a_missing_root_in_one_line(tmp_path, capsys):
    assert results.main(["--root", str(tmp_path / "nothing"), "--out", str(tmp_path / "r.md")]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not (tmp_path / "r.md").exists()


def test_the_plan_reads_its_runs_from_the_sweep_file():
    """The arms, seeds and length the analysis expects are the sweep file's, written once."""
    assert preregistered.ARMS == ("baseline", "adapt", "placebo", "fixed")
    assert preregistered.SEEDS == tuple(range(1000, 1064)) and preregistered.STEPS == 13_000
    assert preregistered.TASK_FOLDER == "shift_cartpole"
    assert {a for pair in preregistered.PRIMARY for a in pair} <= set(preregistered.ARMS)


def test_pilot_runs_match_their_label():
    """artifacts/shift_cartpole/gym_CartPole-v1_<arm>/: each arm labelled, its folder name alone
    gives its method, every run finished its 13,000 steps with the shift at 9,500 in its config,
    and the write-up's claims about the mask hold in the data: in every adapt run on at a tenth
    or more of the updates after the shift, first within 1,000 frames of it, and off before it
    but briefly in one run; baseline and fixed never on."""
    summaries = {}
    for arm in preregistered.ARMS:
        folder = ARTIFACTS / "shift_cartpole" / f"gym_CartPole-v1_{arm}"
        assert "**Label:" in (folder / "README.md").read_text()
        runs = ingest.discover([str(folder)])
        assert len(runs) == 5 and {run.seed for run in runs} == {0, 1, 2, 3, 4}
        assert {(run.task, run.method) for run in runs} == {("gym_CartPole-v1", arm)}
        for run in runs:
            config = runconfig.read_flat(Path(run.path) / "config.yaml")
            assert config["env.gym.shift.step"] == 9500 and config["run.steps"] == 13000
            assert config["agent.imag_length"] == (14 if arm == "fixed" else 15)
            assert config["agent.imag_adapt.mode"] == ("placebo" if arm == "placebo" else "rule")
            assert _last_line(Path(run.path), "metrics.jsonl")["step"] == 13000
        summaries[arm] = mask.mask_diagnostics([str(folder)], cache=False).summary
    for row in summaries["adapt"].iter_rows(named=True):
        assert row["active_before"] < 0.005 and row["active_after"] > 0.1, row
        assert 9500 < row["first_active_after"] <= 10500, row
    assert (summaries["adapt"]["active_before"] > 0).sum() == 1  # seed 3, one update at ~8,240
    for arm in ("baseline", "fixed"):
        assert summaries[arm]["frac_active"].max() == 0.0
    assert summaries["placebo"]["active_before"].min() > 0.0  # drawn regardless of the shift
    text = (STUDY / "README.md").read_text()
    assert "all 5 planned seeds per arm" in text
    assert "fired at the shift in every adapt run (and briefly before it, in one" in text.replace("\n", " ")


def test_the_population_demo_arms_are_the_studys():
    """artifacts/population_demo/arms.yaml (the demo's input, the README's example) holds the
    study's arms that share shapes, with the values of the study's sweep file."""
    import ruamel.yaml

    demo = ruamel.yaml.YAML(typ="safe", pure=True).load((ARTIFACTS / "population_demo" / "arms.yaml").read_text())
    study = {arm: spec["flags"] for arm, spec in preregistered.SWEEP.arms.items() if arm != "fixed"}
    assert demo == study
