"""Final scores, human normalisation and rliable statistics with bootstrap CIs.

Aggregates follow rliable (Agarwal et al. 2021): IQM, mean, median, optimality gap (threshold
1.0) and the average probability of improvement, each with a 95% percentile CI from the
stratified bootstrap over runs. rliable's bootstrap draws indices from the global NumPy RNG and
ignores `random_state`, so `engine="rliable"` seeds the global RNG right before each estimate.
The `fast` engine draws exactly the same indices in vectorised form from a
`np.random.RandomState(seed)` (the same stream, without touching global state; about 100x
faster; the tests check it against rliable number for number). `bootstrap_stat` is the one
bootstrap of the toolkit: the open-loop error CIs use it too (`mean_ci`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.stats

from analysis import atari
from analysis.defaults import METRICS  # noqa: E402 (iqm, mean, median, og)

METRIC_TITLES = {"iqm": "IQM", "mean": "Mean", "median": "Median", "og": "Optimality gap"}
OVERALL = "all tasks"  # the scope label of aggregates over every shared task
CI_SIZE = 0.95
CHUNK = 4096  # bootstrap reps per vectorised block (bounds memory)


# ---------------------------------------------------------------- final scores


MAX_ABS_SCORE = 1e100  # far beyond any game's score; sums and squares of such values stay finite


def check_magnitude(scores: pl.DataFrame, where: dict[str, object] | None = None) -> None:
    """ValueError naming the run, value and step of the largest episode score beyond
    ±MAX_ABS_SCORE: means, variances and bootstrap sums of it would be inf or NaN.
    `where`: run name -> the path to name in the message (default: the run name)."""
    episodes = scores.filter(pl.col("key") == "episode/score")
    values = episodes["value"].to_numpy()
    if not values.size or np.abs(values).max() <= MAX_ABS_SCORE:
        return
    worst = episodes.row(int(np.argmax(np.abs(values))), named=True)
    run = (where or {}).get(str(worst["run"]), worst["run"])
    raise ValueError(
        f"{run}: episode score {worst['value']:g} at step {worst['step']:,} is beyond "
        f"±{MAX_ABS_SCORE:g}; aggregates of it overflow to inf/NaN, so nothing was computed"
    )


def final_scores(
    scores: pl.DataFrame, window: float = 0.1, runs=None, run_ends: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Mean episode score over the last `window` of each run's own env frames.

    Columns: run, task, method, seed, final_score, n_episodes, last_step, fallback,
    normalized, normalization ('human' for Atari100k, 'raw' otherwise). A run with episodes
    but none in its window (short runs: episodes end rarely) takes its last episode's score
    instead, with `fallback` true and `n_episodes` 1, so short runs stay usable and are
    flagged rather than dropped. Runs without any episode keep a row with a null score.
    `runs` (ingest.Run list) adds runs with no rows at all. `run_ends` (run, last_step;
    `ingest.last_steps`) is where each run stopped logging; without it a run ends at its
    last episode, which always puts that episode in the window.
    """
    if not 0 < window <= 1:
        raise ValueError(f"window must be in (0, 1], got {window}")
    scores = as_strings(scores)
    episodes = scores.filter(pl.col("key") == "episode/score")
    every_run = _every_run(scores, runs)
    if run_ends is None:
        last = episodes.group_by("run").agg(pl.col("step").max().alias("last_step"))
    else:
        last = as_strings(run_ends).select("run", pl.col("last_step").cast(pl.Int64))
    window_rows = episodes.join(last, on="run").filter(pl.col("step") >= (1 - window) * pl.col("last_step"))
    per_run = window_rows.group_by("run").agg(
        pl.col("value").mean().alias("in_window"), pl.len().cast(pl.Int64).alias("n_window")
    )
    last_episode = episodes.sort("step").group_by("run").agg(pl.col("value").last().alias("last_episode"))
    table = (
        every_run.join(last, on="run", how="left")
        .join(per_run, on="run", how="left")
        .join(last_episode, on="run", how="left")
    )
    fallback = pl.col("in_window").is_null() & pl.col("last_episode").is_not_null()
    return _normalized(
        table.with_columns(
            final_score=pl.coalesce("in_window", "last_episode"),
            n_episodes=pl.when(fallback).then(1).otherwise(pl.col("n_window").fill_null(0)).cast(pl.Int64),
            fallback=fallback,
        )
    )


def interval_scores(scores: pl.DataFrame, frames: tuple[int, int], runs=None) -> pl.DataFrame:
    """Mean episode score over the episodes that end in env frames (start, end], the same
    interval for every run (the published Atari100k curves are binned this way).

    Same columns as `final_scores`; `fallback` is always false: a run with no episode in the
    interval keeps a row with a null score (and `n_episodes` 0), so the comparison leaves it
    out by name instead of scoring it on frames outside the interval. `last_step` is the
    run's last episode, wherever it ends.
    """
    start, end = check_frames(frames)
    scores = as_strings(scores)
    episodes = scores.filter(pl.col("key") == "episode/score")
    last = episodes.group_by("run").agg(pl.col("step").max().cast(pl.Int64).alias("last_step"))
    inside = (
        episodes.filter((pl.col("step") > start) & (pl.col("step") <= end))
        .group_by("run")
        .agg(pl.col("value").mean().alias("final_score"), pl.len().cast(pl.Int64).alias("n_episodes"))
    )
    table = _every_run(scores, runs).join(last, on="run", how="left").join(inside, on="run", how="left")
    return _normalized(table.with_columns(n_episodes=pl.col("n_episodes").fill_null(0), fallback=pl.lit(False)))


def _every_run(scores: pl.DataFrame, runs=None) -> pl.DataFrame:
    """run, task, method, seed of every run with rows in `scores`, plus the listed `runs`."""
    every_run = scores.select("run", "task", "method", "seed").unique()
    if runs:
        listed = pl.DataFrame([(r.name, r.task, r.method, r.seed) for r in runs], schema=every_run.schema, orient="row")
        every_run = pl.concat([every_run, listed]).unique()
    return every_run


def _normalized(table: pl.DataFrame) -> pl.DataFrame:
    """The score table's columns, with the normalised score of each run (human-normalised on
    Atari100k, raw elsewhere), sorted."""
    normalized = [_normalize(t, s) for t, s in table.select("task", "final_score").iter_rows()]
    return (
        table.with_columns(
            normalized=pl.Series(normalized, dtype=pl.Float64),
            normalization=pl.Series(["human" if atari.game_of(t) else "raw" for t in table["task"]], dtype=pl.String),
        )
        .select(
            "run",
            "task",
            "method",
            "seed",
            "final_score",
            "n_episodes",
            "last_step",
            "fallback",
            "normalized",
            "normalization",
        )
        .sort("method", "task", "seed", "run")
    )


MAX_FRAMES = 10**15  # env frames: far past any run, well inside the logs' 64-bit steps


def check_frames(frames) -> tuple[int, int]:
    """(start, end) env frames with 0 <= start < end, as ints; ValueError naming the problem."""
    try:
        start, end = frames
    except (TypeError, ValueError):
        raise ValueError(f"frames {frames!r}: expected two numbers, start and end") from None
    if not (np.isfinite(start) and np.isfinite(end) and 0 <= start < end <= MAX_FRAMES):
        raise ValueError(f"frames ({start:.6g}, {end:.6g}): expected 0 <= start < end <= {MAX_FRAMES:.0e} env frames")
    return int(start), int(end)


def parse_frames(text: str) -> tuple[int, int]:
    """'START:END' (env frames; 'k' multiplies by 1000, e.g. '40k:50k') -> (start, end)."""
    parts = text.split(":")
    if len(parts) != 2:
        raise ValueError(f"--frames {text!r}: expected START:END in env frames, e.g. 9500:13000 or 40k:50k")
    values = []
    for part in parts:
        part = part.strip().lower().replace("_", "").replace(",", "")
        scale = 1000 if part.endswith("k") else 1
        try:
            values.append(float(part.removesuffix("k")) * scale)
        except ValueError:
            raise ValueError(f"--frames {text!r}: {part!r} is not a number of env frames") from None
    try:
        return check_frames(values)
    except ValueError as error:
        raise ValueError(f"--frames {text!r}: expected 0 <= START < END <= {MAX_FRAMES:.0e}") from error


def score_unit(normalizations) -> str:
    """What the aggregated scores are, named for axes, captions and summary.json: 'human' and
    'raw' are the `normalization` values of the scored tasks."""
    kinds = set(normalizations)
    if kinds == {"human"}:
        return "human-normalized score"
    if kinds == {"raw"}:
        return "raw score"
    return "score (human-normalized on Atari100k, raw on the other tasks)"


OG_NEEDS = (
    "the optimality gap is the shortfall below 1.0 of a human-normalized score; on raw scores "
    "(no random/human table for the task) 1.0 is no target, so it is left out"
)


def final_score_definition(window: float, frames: tuple[int, int] | None = None) -> str:
    """The sentence every table of final scores prints beside it."""
    if frames is not None:
        return (
            f"score = mean episode score over the episodes ending in env frames ({frames[0]:,}, "
            f"{frames[1]:,}] of each run (a run with none there is left out, by name)"
        )
    return (
        f"final score = mean episode score over the last {window:.0%} of each run's env frames "
        "(a run with no episode there: its last episode, flagged 'fallback')"
    )


def interval_notes(final: pl.DataFrame, frames: tuple[int, int]) -> list[str]:
    """One sentence naming the runs with no episode in the scored interval."""
    runs = final.filter(pl.col("n_episodes") == 0)["run"].to_list()
    if not runs:
        return []
    return [
        f"{len(runs)} of {final.height} run(s) had no episode ending in env frames ({frames[0]:,}, "
        f"{frames[1]:,}], so they have no score there: {', '.join(runs)}"
    ]


def fallback_notes(final: pl.DataFrame, window: float) -> list[str]:
    """One sentence naming the runs whose final score is their last episode (none in the window)."""
    runs = final.filter(pl.col("fallback"))["run"].to_list()
    if not runs:
        return []
    return [
        f"{len(runs)} of {final.height} run(s) had no episode in the last {window:.0%} of their frames, so "
        f"their final score is their last episode's ({', '.join(runs)}); longer runs or a larger "
        f"--window avoid this"
    ]


def as_strings(table: pl.DataFrame) -> pl.DataFrame:
    """Label columns as plain strings (ingest stores them categorical to stay small and fast)."""
    return table.with_columns(pl.col(pl.Categorical).cast(pl.String))


def _normalize(task: str, score: float | None) -> float | None:
    if score is None:
        return None
    normalized = atari.human_normalized(task, score)
    return score if normalized is None else normalized


def score_matrix(final: pl.DataFrame, method: str, tasks: list[str]) -> tuple[np.ndarray, list[str]]:
    """(runs x tasks) normalised scores of one method, and notes on anything left out.

    rliable needs the same number of runs per task: extra seeds beyond the smallest count
    are left out (lowest seeds kept) and named in the notes, as are runs with no score.
    """
    notes, columns = [], []
    rows = final.filter(pl.col("method") == method)
    for run in rows.filter(pl.col("normalized").is_null())["run"]:
        notes.append(f"{run}: no episode in the scored frames; left out")
    rows = rows.filter(pl.col("normalized").is_not_null())
    for task in tasks:
        columns.append(rows.filter(pl.col("task") == task).sort("seed", "run")["normalized"].to_numpy())
    n = min(len(c) for c in columns) if columns else 0
    for task, column in zip(tasks, columns):
        if len(column) > n:
            notes.append(f"{method} {task}: {len(column) - n} of {len(column)} runs left out to keep {n} runs per task")
    return np.stack([c[:n] for c in columns], axis=1) if n else np.zeros((0, len(tasks))), notes


# ---------------------------------------------------------------- aggregates (vectorised)
# Each takes scores of shape (..., runs, tasks) and reduces the last two axes, as rliable's.


def iqm(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(*x.shape[:-2], -1)
    return scipy.stats.trim_mean(flat, proportiontocut=0.25, axis=-1)


def mean(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=-2).mean(axis=-1)


def median(x: np.ndarray) -> np.ndarray:
    return np.median(x.mean(axis=-2), axis=-1)


def optimality_gap(x: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    return gamma - np.minimum(x, gamma).mean(axis=(-2, -1))


AGGREGATES = {"iqm": iqm, "mean": mean, "median": median, "og": optimality_gap}


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + 0.5 P(X = Y) over run pairs per task, averaged over tasks (rliable's).

    x: (..., runs_x, tasks), y: (..., runs_y, tasks).
    """
    a, b = x[..., :, None, :], y[..., None, :, :]
    per_task = ((a > b) + 0.5 * (a == b)).mean(axis=(-3, -2))
    return per_task.mean(axis=-1)


# ---------------------------------------------------------------- bootstrap


@dataclass
class Estimate:
    point: float
    low: float
    high: float


def _percentile_ci(values: np.ndarray) -> tuple[float, float]:
    tail = 100 * (1 - CI_SIZE) / 2
    low, high = np.percentile(values, [tail, 100 - tail], axis=0)
    return low, high


def bootstrap_stat(scores: np.ndarray, stat, reps: int, seed: int) -> np.ndarray:
    """stat over `reps` stratified resamples of runs (within each task), rliable's draw order."""
    n, tasks = scores.shape
    rng = np.random.RandomState(seed)
    out = []
    for start in range(0, reps, CHUNK):
        count = min(CHUNK, reps - start)
        index = rng.randint(0, n, size=(count, n, tasks))
        out.append(stat(np.take_along_axis(scores[None], index, axis=1)))
    return np.concatenate(out, axis=0)


def interval_estimate(scores: np.ndarray, metric: str, reps: int, seed: int, engine: str = "fast") -> Estimate:
    """Point estimate and 95% percentile CI of one aggregate for one (runs x tasks) matrix."""
    if metric not in AGGREGATES:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    stat = AGGREGATES[metric]
    if engine == "rliable":
        from rliable import library  # deferred: the reference engine only (tests compare against it)

        np.random.seed(seed)
        point, ci = library.get_interval_estimates({"m": scores}, lambda s: np.array([stat(s)]), reps=reps)
        return Estimate(float(point["m"][0]), float(ci["m"][0, 0]), float(ci["m"][1, 0]))
    low, high = _percentile_ci(bootstrap_stat(scores, stat, reps, seed))
    return Estimate(float(stat(scores)), float(low), float(high))


def bootstrap_poi(x: np.ndarray, y: np.ndarray, reps: int, seed: int) -> np.ndarray:
    """P(X > Y) over resamples drawn as rliable's StratifiedIndependentBootstrap draws them."""
    return bootstrap_pairs(x, y, probability_of_improvement, reps, seed)


def bootstrap_pairs(x: np.ndarray, y: np.ndarray, stat, reps: int, seed: int) -> np.ndarray:
    """stat(xs, ys) over `reps` resamples of both methods, each stratified over runs within a
    task and independent of the other, in the stream of rliable's StratifiedIndependentBootstrap.
    x: (runs_x, tasks), y: (runs_y, tasks); stat maps (reps, runs, tasks) pairs to (reps,)."""
    (nx, tasks), (ny, _) = x.shape, y.shape
    rng = np.random.RandomState(seed)
    values = np.empty(reps)
    for start in range(0, reps, CHUNK):
        count = min(CHUNK, reps - start)
        if nx == ny:  # one draw gives the same stream: rep 0 x, rep 0 y, rep 1 x, ...
            both = rng.randint(0, nx, size=(count, 2, nx, tasks))
            ix, iy = both[:, 0], both[:, 1]
        else:
            ix, iy = np.empty((count, nx, tasks), int), np.empty((count, ny, tasks), int)
            for r in range(count):  # x then y each rep: the same stream as rliable's loop
                ix[r] = rng.randint(0, nx, size=(nx, tasks))
                iy[r] = rng.randint(0, ny, size=(ny, tasks))
        xs = np.take_along_axis(x[None], ix, axis=1)
        ys = np.take_along_axis(y[None], iy, axis=1)
        values[start : start + count] = stat(xs, ys)
    return values


def mean_ci(values: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over rows of each column with a 95% percentile CI: (mean, low, high), each [columns].

    Rows are resampled within each column (`bootstrap_stat`'s stratified draw), which gives each
    column's CI the distribution of an ordinary bootstrap of its mean.
    """
    values = np.asarray(values, dtype=np.float64)
    low, high = _percentile_ci(bootstrap_stat(values, lambda x: x.mean(axis=-2), reps, seed))
    return values.mean(axis=0), low, high


def poi_estimate(x: np.ndarray, y: np.ndarray, reps: int, seed: int, engine: str = "fast") -> Estimate:
    """Probability that X improves on Y, with a 95% stratified bootstrap CI."""
    if engine == "rliable":
        from rliable import library, metrics  # deferred: the reference engine only

        np.random.seed(seed)
        point, ci = library.get_interval_estimates(
            {"xy": [x, y]}, lambda a, b: np.array([metrics.probability_of_improvement(a, b)]), reps=reps
        )
        return Estimate(float(point["xy"][0]), float(ci["xy"][0, 0]), float(ci["xy"][1, 0]))
    low, high = _percentile_ci(bootstrap_poi(x, y, reps, seed))
    return Estimate(float(probability_of_improvement(x, y)), float(low), float(high))


# ---------------------------------------------------------------- curves and profiles


def score_curves(scores: pl.DataFrame, final: pl.DataFrame, points: int = 25) -> tuple[np.ndarray, pl.DataFrame]:
    """Per-run normalised score at `points` env-frame marks up to the shortest run's end.

    The score at mark g is the mean of episodes ending in (g - spacing, g], else the last
    episode before g (NaN before the first episode). Returns (marks, long table run, step, value).
    """
    episodes = as_strings(scores).filter(pl.col("key") == "episode/score")
    end = episodes.group_by("run").agg(pl.col("step").max())["step"].min()
    marks = np.linspace(end / points, end, points)
    spacing = marks[0]
    rows = []
    for (run, task), group in episodes.sort("step").group_by("run", "task", maintain_order=True):
        steps, values = group["step"].to_numpy(), group["value"].to_numpy()
        for mark in marks:
            inside = values[(steps > mark - spacing) & (steps <= mark)]
            before = values[steps <= mark]
            raw = inside.mean() if inside.size else (before[-1] if before.size else np.nan)
            rows.append((run, float(mark), _normalize(task, float(raw)) if np.isfinite(raw) else np.nan))
    table = pl.DataFrame(rows, schema={"run": pl.String, "step": pl.Float64, "value": pl.Float64}, orient="row")
    return marks, table.join(final.select("run", "method", "task", "seed"), on="run")


def curve_matrix(curves: pl.DataFrame, method: str, tasks: list[str]) -> np.ndarray:
    """(runs, tasks, points) array of one method's curves, runs per task trimmed to the minimum."""
    per_task = []
    for task in tasks:
        rows = curves.filter((pl.col("method") == method) & (pl.col("task") == task))
        wide = rows.pivot(on="step", index=["seed", "run"], values="value").sort("seed", "run")
        per_task.append(wide.drop("seed", "run").to_numpy())
    n = min(a.shape[0] for a in per_task)
    return np.stack([a[:n] for a in per_task], axis=1)


def iqm_curve(matrix: np.ndarray, reps: int, seed: int) -> dict[str, np.ndarray]:
    """IQM at each mark with a 95% CI: matrix (runs, tasks, points) -> point/low/high per mark."""
    out = {"point": [], "low": [], "high": []}
    for p in range(matrix.shape[2]):
        est = interval_estimate(matrix[:, :, p], "iqm", reps, seed)
        for key, value in zip(out, (est.point, est.low, est.high)):
            out[key].append(value)
    return {k: np.array(v) for k, v in out.items()}


def performance_profile(scores: np.ndarray, taus: np.ndarray, reps: int, seed: int) -> dict[str, np.ndarray]:
    """Fraction of runs scoring above each tau (rliable's score distribution) with 95% CIs."""

    def profile(x):
        flat = x.reshape(*x.shape[:-2], -1)
        return (flat[..., None] > taus).mean(axis=-2)

    low, high = _percentile_ci(bootstrap_stat(scores, profile, reps, seed))
    return {"point": profile(scores), "low": low, "high": high}


# ---------------------------------------------------------------- power


SEED_GRID = (
    2,
    3,
    4,
    5,
    6,
    8,
    10,
    12,
    15,
    20,
    25,
    30,
    40,
    50,
    60,
    70,
    80,
    100,
    120,
    150,
    200,
    250,
    300,
    400,
    500,
    600,
    800,
    1000,
)
MAX_SEEDS = 1000  # the largest study the power simulation sizes


def seed_grid(max_seeds: int = 50) -> tuple[int, ...]:
    """The study sizes the power simulation tries, up to `max_seeds` (which is always tried)."""
    if not 2 <= max_seeds <= MAX_SEEDS:
        raise ValueError(f"--power-max-seeds {max_seeds}: expected 2 .. {MAX_SEEDS}")
    return tuple(n for n in SEED_GRID if n < max_seeds) + (max_seeds,)


def _pooled_residuals(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Both methods' runs (runs, tasks), each centred on its own method's per-task mean: the
    spread a study of either method draws from when the methods do not differ."""
    return np.concatenate([a - a.mean(axis=0), b - b.mean(axis=0)], axis=0)


def _simulated_differences(
    residuals: np.ndarray, centre: np.ndarray, n_a: int, n_b: int, shift: float, sims: int, rng: np.random.Generator
) -> np.ndarray:
    """IQM(a) - IQM(b) of `sims` simulated studies: n_a and n_b runs per task drawn from the
    pooled residuals around `centre` (tasks,), the a runs shifted by `shift`. Shape (sims,)."""
    cols = np.arange(residuals.shape[1])
    ia = rng.integers(0, residuals.shape[0], size=(sims, n_a, residuals.shape[1]))
    ib = rng.integers(0, residuals.shape[0], size=(sims, n_b, residuals.shape[1]))
    return iqm(centre + residuals[ia, cols] + shift) - iqm(centre + residuals[ib, cols])


def iqm_difference_test(a: np.ndarray, b: np.ndarray, reps: int, seed: int) -> dict:
    """IQM(a) - IQM(b) for two (runs, tasks) matrices: the point, a 95% stratified bootstrap CI
    (runs resampled within each task, each method on its own), and a two-sided p-value.

    The p-value is that of the test the power simulation (`seeds_needed`) sizes: under "no
    difference" both methods' runs come from their pooled, centred spread, so it is the share
    of `reps` such studies (same run counts) whose |IQM difference| reaches the observed one.
    """
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("a difference test needs at least 2 runs per task for each method")
    point = float(iqm(a) - iqm(b))
    low, high = _percentile_ci(bootstrap_pairs(a, b, lambda xs, ys: iqm(xs) - iqm(ys), reps, seed))
    residuals, gen = _pooled_residuals(a, b), np.random.default_rng(seed)
    null = np.concatenate(
        [
            _simulated_differences(
                residuals, b.mean(axis=0), a.shape[0], b.shape[0], 0.0, min(CHUNK, reps - start), gen
            )
            for start in range(0, reps, CHUNK)
        ]
    )
    p_value = float(np.mean(np.abs(null) >= abs(point) - 1e-12))
    return {
        "point": point,
        "low": float(low),
        "high": float(high),
        "p_value": p_value,
        "reps": reps,
        "runs": (int(a.shape[0]), int(b.shape[0])),
    }


def seeds_needed(
    base: np.ndarray,
    adapt: np.ndarray,
    delta: float,
    power: float = 0.8,
    alpha: float = 0.05,
    sims: int = 2000,
    grid=SEED_GRID[:14],
    seed: int = 0,
) -> dict:
    """Seeds per method needed to detect an IQM difference `delta` at `power` (simulation).

    Per task, the population is the observed per-run scores of both methods, each centred on its
    method's task mean, added to the baseline's task mean. For n seeds, `sims` studies draw n runs
    per task and method from it (adapt shifted by `delta`); the two-sided test at `alpha` uses the
    null distribution of the IQM difference simulated the same way with no shift (the test
    `iqm_difference_test` makes on a finished study).
    """
    if base.shape[0] < 2 or adapt.shape[0] < 2:
        raise ValueError("power needs at least 2 runs per task for each method")
    centre = base.mean(axis=0)
    residuals = _pooled_residuals(base, adapt)
    rng = np.random.default_rng(seed)
    curve = []
    for n in grid:
        null = _simulated_differences(residuals, centre, n, n, 0.0, sims, rng)
        critical = np.quantile(np.abs(null), 1 - alpha)
        shifted = _simulated_differences(residuals, centre, n, n, delta, sims, rng)
        curve.append((n, float(np.mean(np.abs(shifted) > critical))))
        if curve[-1][1] >= power:
            break
    needed = next((n for n, p in curve if p >= power), None)
    return {
        "delta": float(delta),
        "power": power,
        "alpha": alpha,
        "sims": sims,
        "seed": seed,
        "curve": curve,
        "seeds_needed": needed,
        "max_seeds": max(grid),
        "observed_runs": int(min(base.shape[0], adapt.shape[0])),
    }


FEW_RUNS_FOR_POWER = 5  # below this many runs per method, the spread the power simulation resamples is itself a guess
