"""Runs read in 10k-env-frame bins beside the published DreamerV3 scores (Road Runner).

The published figures are computed from the official repository's Atari100k scores of DreamerV3
(`published:dreamerv3`, analysis/published.py; 5 seeds, the paper's model): per bin, the mean
over seeds of each seed's mean episode score, with the seeds' range.
`score_bins` and `metric_bins` reduce ingested tables to one row per run and bin (or per bin);
`score_table` and `diagnostic_table` format them as `docs/results.md` shows them;
`curve_figure` draws each seed against the published points. Bins are (start, end] as the
published curve bins them: an episode ending at frame 50,000 belongs to (40k, 50k].
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from analysis import atari, published

BIN = 10_000  # env frames
TASK = "atari100k_road_runner"
RANDOM = atari.RANDOM_HUMAN["road_runner"][0]
DIAGNOSTICS = (
    "train/rew",
    "train/tar",
    "train/repval/ret",
    "train/ent/action",
    "train/rand/action",
    "train/loss/rew",
    "train/loss/dyn",
)
DIAGNOSTIC_TITLES = (
    "imagined rew/step",
    "replayed rew/step",
    "train/tar",
    "train/repval/ret",
    "entropy (train/ent/action)",
    "normalised entropy (train/rand/action)",
    "loss/rew",
    "loss/dyn",
)


def bin_start(step: pl.Expr) -> pl.Expr:
    """Start of the (start, start + BIN] bin holding an env-frame step."""
    return ((step - 1) // BIN * BIN).cast(pl.Int64)


def score_bins(scores: pl.DataFrame) -> pl.DataFrame:
    """Per run and bin: episodes, mean score, and the episodes' score per agent step (replay_rew).

    scores: ingest's long table (run, seed, step, key, value). Columns out: run, seed, bin,
    episodes, score, replay_rew; sorted by bin, seed.
    """
    rows = scores.with_columns(pl.col(pl.Categorical).cast(pl.String))
    wide = rows.pivot(on="key", index=["run", "seed", "step"], values="value")
    wide = wide.with_columns(bin_start(pl.col("step")).alias("bin"))
    return (
        wide.group_by("run", "seed", "bin")
        .agg(
            pl.len().alias("episodes"),
            pl.col("episode/score").mean().alias("score"),
            (pl.col("episode/score").sum() / pl.col("episode/length").sum()).alias("replay_rew"),
        )
        .sort("bin", "seed")
    )


def published_bins(agent: str = "dreamerv3", task: str = TASK) -> pl.DataFrame:
    """Per bin of the published runs of `agent` on `task`: the mean over seeds of each seed's
    mean episode score in the bin, its min and max, and the seeds with an episode there.
    Columns: bin, mean, low, high, seeds; sorted by bin."""
    spec = published.PREFIX + agent
    tables = [
        published.scores_table(path).with_columns(seed=pl.lit(seed))
        for path, run_task, seed in published.entries(spec)
        if run_task == task
    ]
    rows = pl.concat(tables).with_columns(bin_start(pl.col("step")).alias("bin"))
    per_seed = rows.group_by("seed", "bin").agg(pl.col("value").mean())
    return (
        per_seed.group_by("bin")
        .agg(
            pl.col("value").mean().alias("mean"),
            pl.col("value").min().alias("low"),
            pl.col("value").max().alias("high"),
            pl.len().alias("seeds"),
        )
        .sort("bin")
    )


def metric_bins(metrics: pl.DataFrame, keys=DIAGNOSTICS) -> pl.DataFrame:
    """Per bin, the mean of each key's logged values over every run: columns bin, *keys."""
    rows = metrics.with_columns(pl.col(pl.Categorical).cast(pl.String)).filter(pl.col("key").is_in(keys))
    rows = rows.with_columns(bin_start(pl.col("step")).alias("bin"))
    wide = rows.group_by("bin", "key").agg(pl.col("value").mean()).pivot(on="key", index="bin", values="value")
    return wide.sort("bin")


def bin_label(start: int, last_step: int | None = None) -> str:
    """'(40k, 50k]'; with the runs' last step inside the bin, its end reads '~47k'."""
    end = start + BIN
    if last_step is not None and start < last_step < end:
        return f"({start // 1000}k, ~{round(last_step / 1000)}k]"
    return f"({start // 1000}k, {end // 1000}k]"


def _published(start: int, last_label: str, pub: dict) -> str:
    if start not in pub:
        return "-"
    mean, low, high, seeds = pub[start]
    text = f"{mean:,.0f} [{low:,.0f}, {high:,.0f}]" + ("" if seeds == 5 else f" ({seeds} seeds)")
    return text if last_label == bin_label(start) else f"{bin_label(start)}: {text}"


def score_table(per_run: pl.DataFrame, last_step: int | None = None) -> tuple[list[str], list[list[str]]]:
    """Rows per bin: each seed's 'episodes, mean', the mean over seeds [min, max], the published."""
    seeds = sorted(per_run["seed"].unique().to_list())
    columns = (
        ["env frames"]
        + [f"seed {s}: episodes, mean" for s in seeds]
        + ["mean over seeds [min, max]", "published mean [seeds' range]"]
    )
    pub = {r[0]: r[1:] for r in published_bins().iter_rows()}
    rows = []
    for start in sorted(per_run["bin"].unique().to_list()):
        here = per_run.filter(pl.col("bin") == start)
        cells = []
        for s in seeds:
            r = here.filter(pl.col("seed") == s)
            cells.append(f"{r['episodes'][0]}, {r['score'][0]:,.1f}" if r.height else "0, -")
        means = here["score"].to_numpy()
        spread = f"{means.mean():,.1f} [{means.min():,.1f}, {means.max():,.1f}]" if len(means) == len(seeds) else "-"
        label = bin_label(start, last_step)
        rows.append([label, *cells, spread, _published(start, label, pub)])
    return columns, rows


def diagnostic_table(
    per_run: pl.DataFrame, metrics: pl.DataFrame, last_step: int | None = None
) -> tuple[list[str], list[list[str]]]:
    """Rows per bin: the diagnostics' means over runs (4 significant digits), the replayed reward
    per agent step being the mean over runs of each run's episodes ending in the bin."""
    diag = metric_bins(metrics)
    replay = per_run.group_by("bin").agg(pl.col("replay_rew").mean()).sort("bin")
    diag = diag.join(replay, on="bin", how="left")
    keys = ("train/rew", "replay_rew") + DIAGNOSTICS[1:]
    rows = []
    for r in diag.iter_rows(named=True):
        cells = ["-" if r.get(k) is None else f"{r[k]:.4g}" for k in keys]
        rows.append([bin_label(r["bin"], last_step), *cells])
    return ["env frames", *DIAGNOSTIC_TITLES], rows


def curve_figure(per_run: pl.DataFrame, label: str):
    """Each seed's mean score per bin (plotted at the bin's end) against the published points."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for s in sorted(per_run["seed"].unique().to_list()):
        rows = per_run.filter(pl.col("seed") == s).sort("bin")
        ax.plot(
            (rows["bin"] + BIN).to_numpy() / 1000,
            rows["score"].to_numpy(),
            "o-",
            lw=1.2,
            ms=3,
            label=f"this trainer, {label}, seed {s}",
        )
    pub = published_bins().filter(pl.col("bin") <= per_run["bin"].max())
    ends, mid = (pub["bin"] + BIN).to_numpy() / 1000, pub["mean"].to_numpy()
    ax.errorbar(
        ends,
        mid,
        yerr=np.stack([mid - pub["low"].to_numpy(), pub["high"].to_numpy() - mid]),
        fmt="s-",
        color="black",
        lw=0.8,
        ms=4,
        capsize=3,
        label="published DreamerV3 (5 seeds: mean, range)",
    )
    ax.axhline(RANDOM, color="gray", ls="--", lw=0.8, label=f"random ({RANDOM})")
    ax.set_xlabel("env frames (thousands; each point: episodes ending in the 10k before it)")
    ax.set_ylabel("mean episode score (raw)")
    ax.set_title("Road Runner: this trainer against the published curve", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig
