"""Statistics: hand-computed aggregates, equality with rliable, CI coverage, final scores, power."""

import numpy as np
import polars as pl
import pytest

from analysis import atari, stats


def test_aggregates_by_hand():
    scores = np.arange(1.0, 9.0).reshape(8, 1)  # 8 runs of one task
    assert stats.iqm(scores) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    two_tasks = np.array([[0.2, 3.0], [0.4, 1.0]])
    assert stats.mean(two_tasks) == pytest.approx((0.3 + 2.0) / 2)
    assert stats.median(np.array([[1.0, 5.0, 2.0]])) == pytest.approx(2.0)
    assert stats.optimality_gap(two_tasks) == pytest.approx(1 - (0.2 + 1.0 + 0.4 + 1.0) / 4)


def test_probability_of_improvement_by_hand():
    x, y = np.array([[1.0], [3.0]]), np.array([[2.0], [3.0]])
    # pairs: 1>2 no, 1>3 no, 3>2 yes, 3=3 half -> 1.5 / 4
    assert stats.probability_of_improvement(x, y) == pytest.approx(0.375)
    assert stats.probability_of_improvement(x, x) == pytest.approx(0.5)


@pytest.mark.parametrize("metric", stats.METRICS)
def test_fast_bootstrap_equals_rliable(metric):
    scores = np.random.default_rng(1).normal(1.0, 0.5, size=(5, 3))
    fast = stats.interval_estimate(scores, metric, reps=300, seed=11)
    slow = stats.interval_estimate(scores, metric, reps=300, seed=11, engine="rliable")
    assert (fast.point, fast.low, fast.high) == pytest.approx((slow.point, slow.low, slow.high), rel=1e-12)


@pytest.mark.parametrize("runs_y", [4, 5])
def test_vectorised_poi_equals_rliable(runs_y):
    rng = np.random.default_rng(2)
    x, y = rng.normal(1.0, 0.5, (5, 4)).round(1), rng.normal(0.8, 0.5, (runs_y, 4)).round(1)  # ties included
    fast = stats.poi_estimate(x, y, reps=300, seed=5)
    slow = stats.poi_estimate(x, y, reps=300, seed=5, engine="rliable")
    assert (fast.point, fast.low, fast.high) == pytest.approx((slow.point, slow.low, slow.high), rel=1e-12)


def test_seed_makes_the_bootstrap_reproducible():
    scores = np.random.default_rng(3).random((4, 2))
    a = stats.interval_estimate(scores, "iqm", 500, seed=1)
    assert a == stats.interval_estimate(scores, "iqm", 500, seed=1)
    assert a != stats.interval_estimate(scores, "iqm", 500, seed=2)


def test_ci_covers_the_true_mean_at_about_the_nominal_rate():
    rng = np.random.default_rng(0)
    trials, covered = 200, 0
    for trial in range(trials):
        sample = rng.normal(0.5, 1.0, size=(20, 1))
        est = stats.interval_estimate(sample, "mean", reps=400, seed=trial)
        covered += est.low <= 0.5 <= est.high
    # the percentile bootstrap under-covers slightly at n=20; 95% nominal
    assert 0.86 <= covered / trials <= 0.99


def _scores_table(rows):
    return pl.DataFrame(
        rows,
        schema={
            "run": pl.String,
            "task": pl.String,
            "method": pl.String,
            "seed": pl.Int64,
            "step": pl.Int64,
            "key": pl.String,
            "value": pl.Float64,
        },
        orient="row",
    )


def test_final_scores_window_normalisation_and_runs_without_episodes():
    rows = [
        ("a/s0", "atari100k_pong", "a", 0, step, "episode/score", value)
        for step, value in ((100, -21.0), (850, 0.0), (950, 10.0), (1000, 20.0))
    ]
    rows += [("a/s1", "atari100k_pong", "a", 1, 500, "episode/length", 100.0)]
    rows += [("b/s0", "gym_cartpole", "b", 0, 10, "episode/score", 50.0)]
    final = stats.final_scores(_scores_table(rows), window=0.1)
    s0 = final.filter(pl.col("run") == "a/s0").row(0, named=True)
    assert s0["final_score"] == pytest.approx(15.0) and s0["n_episodes"] == 2 and s0["last_step"] == 1000
    assert s0["normalized"] == pytest.approx(atari.human_normalized("atari100k_pong", 15.0))
    assert s0["normalization"] == "human"
    s1 = final.filter(pl.col("run") == "a/s1").row(0, named=True)
    assert s1["final_score"] is None and s1["n_episodes"] == 0 and not s1["fallback"]
    b = final.filter(pl.col("run") == "b/s0").row(0, named=True)
    assert b["normalized"] == 50.0 and b["normalization"] == "raw"
    wide = stats.final_scores(_scores_table(rows), window=0.2).filter(pl.col("run") == "a/s0")
    assert wide["n_episodes"][0] == 3


def test_interval_scores_take_the_same_frames_of_every_run():
    """--frames: episodes ending in (start, end], the same interval for each run; a run
    with none there has no score (no fallback) and is named in the notes."""
    rows = [
        ("a/s0", "gym_cartpole", "a", 0, step, "episode/score", value)
        for step, value in ((9000, 500.0), (9500, 400.0), (9600, 20.0), (12000, 40.0), (13500, 90.0))
    ]
    rows += [
        ("a/s1", "gym_cartpole", "a", 1, step, "episode/score", value) for step, value in ((4000, 30.0), (9400, 200.0))
    ]
    final = stats.interval_scores(_scores_table(rows), (9500, 13000))
    s0 = final.filter(pl.col("run") == "a/s0").row(0, named=True)
    # 9500 itself belongs to the interval before: (start, end] as the published bins.
    assert s0["final_score"] == pytest.approx(30.0) and s0["n_episodes"] == 2 and not s0["fallback"]
    assert s0["last_step"] == 13500 and s0["normalized"] == pytest.approx(30.0)
    s1 = final.filter(pl.col("run") == "a/s1").row(0, named=True)
    assert s1["final_score"] is None and s1["n_episodes"] == 0 and not s1["fallback"]
    assert final.columns == stats.final_scores(_scores_table(rows)).columns
    notes = stats.interval_notes(final, (9500, 13000))
    assert len(notes) == 1 and "a/s1" in notes[0] and "(9,500, 13,000]" in notes[0]
    assert "(9,500, 13,000]" in stats.final_score_definition(0.1, (9500, 13000))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("9500:13000", (9500, 13000)),
        ("40k:50k", (40000, 50000)),
        ("0:1.5k", (0, 1500)),
        (" 1_000 : 2,000 ", (1000, 2000)),
    ],
)
def test_parse_frames(text, expected):
    assert stats.parse_frames(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("9500", "expected START:END"),
        ("1:2:3", "expected START:END"),
        ("a:100", "'a' is not a number"),
        ("500:100", "START < END"),
        ("-5:100", "START < END"),
        ("nan:100", "START < END"),
    ],
)
def test_parse_frames_refuses_with_the_reason(text, message):
    with pytest.raises(ValueError, match=message):
        stats.parse_frames(text)


def test_final_scores_window_ends_where_the_run_stopped_logging():
    """A run that logged until frame 2000 has its window at 1800-2000: its last episode
    (frame 1000) is outside, so its final score falls back to that episode, flagged."""
    rows = [
        ("a/s0", "atari100k_pong", "a", 0, step, "episode/score", value)
        for step, value in ((100, -21.0), (950, 10.0), (1000, 20.0))
    ]
    ends = pl.DataFrame({"run": ["a/s0"], "last_step": [2000]})
    final = stats.final_scores(_scores_table(rows), 0.1, run_ends=ends)
    row = final.row(0, named=True)
    assert row["final_score"] == 20.0 and row["fallback"] and row["n_episodes"] == 1 and row["last_step"] == 2000
    assert row["normalized"] == pytest.approx(atari.human_normalized("atari100k_pong", 20.0))
    notes = stats.fallback_notes(final, 0.1)
    assert len(notes) == 1 and "a/s0" in notes[0] and "last 10%" in notes[0] and "--window" in notes[0]
    row = stats.final_scores(_scores_table(rows), 0.6, run_ends=ends).row(0, named=True)
    assert row["final_score"] == pytest.approx(15.0) and row["n_episodes"] == 2 and not row["fallback"]
    assert stats.fallback_notes(stats.final_scores(_scores_table(rows), 0.6, run_ends=ends), 0.6) == []


def test_atari_table_covers_the_26_games():
    assert len(atari.TASKS) == 26
    assert atari.human_normalized("atari100k_alien", 7127.7) == pytest.approx(1.0)
    assert atari.human_normalized("atari100k_alien", 227.8) == pytest.approx(0.0)
    assert atari.human_normalized("dummy_disc", 1.0) is None


def test_score_matrix_keeps_runs_per_task_equal_and_says_so():
    final = pl.DataFrame(
        {
            "run": ["r0", "r1", "r2", "r3", "r4"],
            "task": ["t1", "t1", "t1", "t2", "t2"],
            "method": ["m"] * 5,
            "seed": [0, 1, 2, 0, 1],
            "normalized": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    matrix, notes = stats.score_matrix(final, "m", ["t1", "t2"])
    assert matrix.tolist() == [[1.0, 4.0], [2.0, 5.0]]
    assert notes and "1 of 3 runs left out" in notes[0]


def test_power_needs_fewer_seeds_for_bigger_differences():
    rng = np.random.default_rng(4)
    base, adapt = rng.normal(0.3, 0.1, (5, 3)), rng.normal(0.35, 0.1, (5, 3))
    big = stats.seeds_needed(base, adapt, delta=0.3, sims=400)
    small = stats.seeds_needed(base, adapt, delta=0.03, sims=400)
    assert big["seeds_needed"] is not None
    assert small["seeds_needed"] is None or small["seeds_needed"] > big["seeds_needed"]
    with pytest.raises(ValueError, match="at least 2 runs"):
        stats.seeds_needed(base[:1], adapt, delta=0.1)
    assert big["observed_runs"] == 5 and stats.seeds_needed(base[:2], adapt, 0.3, sims=50)["observed_runs"] == 2


def test_power_grid_goes_past_fifty_seeds_when_asked():
    assert stats.seed_grid(50)[-1] == 50 and stats.seed_grid(64)[-2:] == (60, 64)
    rng = np.random.default_rng(5)
    base, other = rng.normal(0.0, 1.0, (5, 1)), rng.normal(0.0, 1.0, (5, 1))
    small = stats.seeds_needed(base, other, delta=0.4, sims=300, grid=stats.seed_grid(400))
    assert small["seeds_needed"] is not None and 50 < small["seeds_needed"] <= 400, small["curve"]
    with pytest.raises(ValueError, match="expected 2 .. 1000"):
        stats.seed_grid(1001)


def _loop_iqm(x):
    """NumPy reference: the mean of the middle half of the sorted scores (25% cut at each end)."""
    flat = np.sort(x.ravel())
    cut = int(0.25 * flat.size)
    return flat[cut : flat.size - cut].mean()


def test_iqm_difference_test_point_ci_and_calibration():
    """The point is IQM(a) - IQM(b); the CI holds it; a big shift gives a tiny p-value; with
    no difference and 50 runs a side the test rejects at about its nominal 5%."""
    rng = np.random.default_rng(6)
    a, b = rng.normal(1.0, 1.0, (8, 2)), rng.normal(0.0, 1.0, (8, 2))
    test = stats.iqm_difference_test(a, b, reps=2000, seed=0)
    assert test["point"] == pytest.approx(_loop_iqm(a) - _loop_iqm(b))
    assert test["low"] < test["point"] < test["high"] and test["runs"] == (8, 8)
    assert stats.iqm_difference_test(a + 5.0, b, reps=2000, seed=0)["p_value"] < 0.01
    rejected = [
        stats.iqm_difference_test(rng.normal(0, 1, (50, 1)), rng.normal(0, 1, (50, 1)), reps=1000, seed=i)["p_value"]
        < 0.05
        for i in range(200)
    ]
    assert 0.0 < np.mean(rejected) < 0.1
    with pytest.raises(ValueError, match="at least 2 runs"):
        stats.iqm_difference_test(a[:1], b, reps=100, seed=0)


def test_mean_ci_brackets_the_mean():
    values = np.random.default_rng(1).normal(size=(8, 5))
    mean, lo, hi = stats.mean_ci(values, reps=500)
    np.testing.assert_allclose(mean, values.mean(axis=0))
    assert (lo <= mean).all() and (mean <= hi).all() and (lo < hi).all()
    mean, lo, hi = stats.mean_ci(np.ones((4, 3)), reps=50)
    np.testing.assert_allclose([mean, lo, hi], 1.0)


def test_mean_ci_draws_rows_within_each_column_as_bootstrap_stat():
    """Column j's resamples are bootstrap_stat's draw: a NumPy loop over the same stream agrees."""
    values = np.random.default_rng(2).normal(size=(6, 3))
    _, lo, hi = stats.mean_ci(values, reps=200, seed=9)
    rng = np.random.RandomState(9)
    index = rng.randint(0, 6, size=(200, 6, 3))
    boots = np.array([[values[index[r, :, j], j].mean() for j in range(3)] for r in range(200)])
    np.testing.assert_allclose(lo, np.percentile(boots, 2.5, axis=0))
    np.testing.assert_allclose(hi, np.percentile(boots, 97.5, axis=0))


def test_fast_bootstrap_leaves_the_global_rng_alone():
    """The fast engine draws from its own RandomState: a caller's np.random stream is untouched."""
    np.random.seed(123)
    expected = np.random.rand(3)
    np.random.seed(123)
    stats.interval_estimate(np.random.default_rng(0).normal(size=(4, 2)), "iqm", reps=200, seed=7)
    stats.poi_estimate(np.ones((3, 2)), np.zeros((3, 2)), reps=200, seed=7)
    np.testing.assert_array_equal(np.random.rand(3), expected)
