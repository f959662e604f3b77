"""The pre-registered shift study's analysis (studies/shift_cartpole/preregistered.py): Holm's adjustment
against hand-computed values, no comparison before every planned run is in and complete,
and the primary comparisons once they are."""

import pytest
from runfactory import write_run

from studies.shift_cartpole import preregistered


def test_holm_adjusts_by_rank_keeps_order_and_caps_at_one():
    assert preregistered.holm([0.01, 0.04]) == pytest.approx([0.02, 0.04])
    assert preregistered.holm([0.04, 0.01]) == pytest.approx([0.04, 0.02])
    assert preregistered.holm([0.03, 0.02]) == pytest.approx([0.04, 0.04])  # made non-decreasing
    assert preregistered.holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])
    assert preregistered.holm([0.001, 0.5, 0.02]) == pytest.approx([0.003, 0.5, 0.04])


def _study(root, seeds, short=None, adapt_level=300.0):
    for arm in preregistered.ARMS:
        for seed in seeds:
            frames = 12_000 if (arm, seed) == short else preregistered.STEPS
            write_run(
                root,
                task="shift_cartpole",
                method=arm,
                seed=seed,
                frames=frames,
                episodes=60,
                log_lines=20,
                score_level=adapt_level if arm == "adapt" else 100.0,
            )


def test_nothing_is_compared_until_every_planned_run_is_complete(tmp_path, monkeypatch):
    monkeypatch.setattr(preregistered, "SEEDS", (1000, 1001, 1002, 1003))
    _study(tmp_path, (1000, 1001, 1002))  # one seed of every arm still missing
    assert preregistered.primary(tmp_path) is None
    _study(tmp_path, (1003,), short=("fixed", 1003))  # all in, one stopped short
    state = preregistered.status(tmp_path)
    assert not state.ready and len(state.incomplete) == 1 and "shift_cartpole_fixed" in state.incomplete[0]
    assert preregistered.primary(tmp_path) is None
    for run in (tmp_path / "shift_cartpole_fixed").glob("seed1003_*"):
        for f in run.iterdir():
            f.unlink()
        run.rmdir()
    _study(tmp_path, (1003,))
    assert preregistered.status(tmp_path).ready
    rows = preregistered.primary(tmp_path)
    assert [(r["method"], r["reference"]) for r in rows] == list(preregistered.PRIMARY)
    for row in rows:  # adapt scores three times the others: detected, in the right direction
        assert row["point"] > 0 and row["low"] > 0 and row["p_holm"] >= row["p_value"]
        assert row["decision"] == "adapt better" and row["poi"][0] > 0.9
