"""How each run is summarised into the one score the aggregates use (`--summary`).

- `window` (the default): the mean episode score over the last `window` of the run's own env
  frames, or with `frames` over the episodes ending in that interval (stats.final_scores,
  stats.interval_scores);
- `last`: the score of the run's last episode (with `frames`: the last one in the interval);
- `max`: the best episode score of the run (with `frames`: the best in the interval).

Every choice returns stats.final_scores' columns (run, task, method, seed, final_score,
n_episodes, last_step, fallback, normalized, normalization), so later stages do not care which
was made, and `definition` is the sentence printed beside every table of them.
"""

from __future__ import annotations

import polars as pl

from analysis import stats

SUMMARIES = ("window", "last", "max")
DEFAULT = "window"


def check(how: str) -> str:
    if how not in SUMMARIES:
        raise ValueError(f"--summary {how!r}: expected one of {', '.join(SUMMARIES)}")
    return how


def run_scores(
    scores: pl.DataFrame,
    how: str = DEFAULT,
    window: float = 0.1,
    frames: tuple[int, int] | None = None,
    runs=None,
    run_ends: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per run: its summary score `how` (see the module's docstring), normalised."""
    check(how)
    if frames is None:
        base = stats.final_scores(scores, window, runs, run_ends)
    else:
        base = stats.interval_scores(scores, frames, runs)
    if how == "window":
        return base
    episodes = stats.as_strings(scores).filter(pl.col("key") == "episode/score")
    if frames is not None:
        episodes = episodes.filter((pl.col("step") > frames[0]) & (pl.col("step") <= frames[1]))
    pick = pl.col("value").last() if how == "last" else pl.col("value").max()
    per_run = (
        episodes.sort("step", maintain_order=True)
        .group_by("run")
        .agg(pick.alias("picked"), pl.len().cast(pl.Int64).alias("picked_from"))
    )
    counted = pl.lit(1, pl.Int64) if how == "last" else pl.col("picked_from")
    table = base.join(per_run, on="run", how="left").with_columns(
        final_score=pl.col("picked"),
        fallback=pl.lit(False),
        n_episodes=pl.when(pl.col("picked").is_null()).then(0).otherwise(counted).cast(pl.Int64),
    )
    return stats._normalized(table.drop("picked", "picked_from", "normalized", "normalization"))


def definition(how: str, window: float, frames: tuple[int, int] | None = None) -> str:
    """The sentence every table of these scores prints beside it."""
    if how == "window":
        return stats.final_score_definition(window, frames)
    where = "of each run" if frames is None else f"ending in env frames ({frames[0]:,}, {frames[1]:,}] of each run"
    what = "the score of the last episode" if how == "last" else "the best episode score"
    return f"score = {what} {where} (--summary {how})"
