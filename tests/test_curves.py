"""Learning curves: runs of different lengths are never extended, the run count per point is
returned and drawn, smoothing is TensorBoard's debiased EMA or a trailing mean, never in statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from analysis import curves, figures

TASK = "atari100k_pong"  # random -20.7, human 14.6


def _scores(runs: dict[str, tuple[list[int], list[float]]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows, final = [], []
    for seed, (run, (steps, values)) in enumerate(runs.items()):
        rows += [(run, TASK, "m", seed, s, "episode/score", v) for s, v in zip(steps, values)]
        final.append((run, TASK, "m", seed, max(steps)))
    scores = pl.DataFrame(rows, schema=["run", "task", "method", "seed", "step", "key", "value"], orient="row")
    return scores, pl.DataFrame(final, schema=["run", "task", "method", "seed", "last_step"], orient="row")


def test_a_run_that_ends_stops_counting_and_is_never_extended():
    short = (list(range(10_000, 50_001, 10_000)), [-20.7] * 5)  # ends at 50k, at the random score
    long = (list(range(10_000, 100_001, 10_000)), [14.6] * 10)  # runs to 100k, at the human score
    scores, final = _scores({"short": short, "long": long, "long2": long})
    out = curves.efficiency(scores, final, ["m"], [TASK], reps=200, seed=0, points=10)
    marks, m = out["marks"], out["m"]
    assert marks[-1] == 100_000 and list(m["runs"][:5]) == [3] * 5 and list(m["runs"][-4:]) == [2] * 4
    assert np.allclose(m["point"][-4:], 1.0)  # only the long runs (human level) where the short one ended
    assert np.isfinite(m["low"]).all()


def test_one_run_left_gives_a_point_but_no_band():
    scores, final = _scores({"a": ([10_000, 20_000], [0.0, 1.0]), "b": ([10_000, 40_000], [0.0, 14.6])})
    m = curves.efficiency(scores, final, ["m"], [TASK], reps=200, seed=0, points=4)["m"]
    assert list(m["runs"]) == [2, 2, 1, 1]
    assert np.isnan(m["low"][-1]) and np.isnan(m["high"][-1]) and m["point"][-1] == pytest.approx(1.0)


def test_smoothing_is_a_trailing_mean_or_tensorboards_debiased_ema():
    values = np.array([1.0, 2.0, 3.0, 10.0, -4.0])
    assert np.allclose(curves.smooth(values, "window:3"), pd.Series(values).rolling(3, min_periods=1).mean())
    assert np.allclose(curves.smooth(values[:3], "ema:0.5"), [1.0, 1.25 / 0.75, 2.125 / 0.875])
    assert np.array_equal(curves.smooth(values, "none"), values)
    for bad in ("ema:1", "window:0", "window:2.5", "gauss:3", "none:1"):
        with pytest.raises(ValueError, match="--smooth"):
            curves.parse_smooth(bad)


def test_the_figure_states_the_band_and_the_run_counts():
    scores, final = _scores({"a": ([10_000, 20_000], [0.0, 1.0]), "b": ([10_000, 40_000], [0.0, 14.6])})
    out = curves.efficiency(scores, final, ["m"], [TASK], reps=200, seed=0, points=4)
    fig = figures.plot_curves(out, {"m": "C0"}, 1, "human-normalized score")
    top, counts = fig.axes
    assert "95% stratified bootstrap CI" in top.get_title() and "1-2 runs/task" in top.get_legend().texts[0].get_text()
    assert counts.get_ylabel() == "runs/task"


def test_x_axis_in_agent_steps_needs_one_known_action_repeat(tmp_path):
    from analysis import ingest

    shipped = ingest.discover(["published:dreamerv3"])[:3]
    assert curves.x_axis(shipped, "steps") == (4.0, "agent steps (env frames / 4)")
    assert curves.x_axis(shipped, "frames") == (1.0, "env frames")
    run = tmp_path / "atari100k_pong_mine" / "seed0"
    run.mkdir(parents=True)
    (run / "scores.jsonl").write_text('{"step": 100, "episode/score": 1.0}\n')
    (run / "config.yaml").write_text("task: atari100k_pong\nseed: 0\nenv:\n  atari100k:\n    repeat: 2\n")
    mine = ingest.discover([str(run)])
    assert curves.x_axis(mine, "steps")[0] == 2.0
    with pytest.raises(ValueError, match="action repeats differ"):
        curves.x_axis(shipped + mine, "steps")
    (run / "config.yaml").write_text("task: atari100k_pong\nseed: 0\n")
    with pytest.raises(ValueError, match="no env.<suite>.repeat"):
        curves.x_axis(ingest.discover([str(run)]), "steps")
