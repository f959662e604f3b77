"""The Road Runner runs against the published DreamerV3 curve (issue 12), through the toolkit.

    .venv/bin/python artifacts/atari100k_road_runner_dreamerv3/readout.py [RUN_OR_FOLDER ...]
        [--out PNG] [--label TEXT]

Prints, per 10k-env-frame bin, the mean episode score of each seed (episodes ending in the
bin) beside the published one, then the diagnostics that say whether the agent is healthy:
imagined against replayed reward per step, the imagined return target (train/tar) against
the replayed return (train/repval/ret), and the policy's entropy. Writes the curve to --out
(default: curve.png beside this file), each seed's line labelled "this trainer, LABEL, seed
N" (default label: size1m). Default input: the runs in this folder.

Published (the official repository's scores/atari100k-dreamerv3.json.gz, 5 seeds, the
paper's model): the mean over seeds of each seed's mean episode score, with the seeds'
range, in (40k, 50k] and (50k, 60k] env frames; Road Runner's random score is 11.5.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from analysis import ingest  # noqa: E402

HERE = Path(__file__).parent
BIN = 10_000  # env frames
PUBLISHED = {(40_000, 50_000): (798, 188, 1_400), (50_000, 60_000): (1_009, 840, 1_225)}  # mean, min, max
RANDOM = 11.5
DIAGNOSTICS = ("train/rew", "train/tar", "train/repval/ret", "train/ent/action", "train/rand/action",
               "train/loss/rew", "train/loss/dyn")


def bin_of(step):
    """(start, end] bin of an env-frame step, as the published curve bins."""
    start = (int(step) - 1) // BIN * BIN
    return start, start + BIN


def score_bins(scores: pl.DataFrame) -> pl.DataFrame:
    """Per run and bin: episodes, mean score, and replayed reward per agent step."""
    wide = scores.pivot(on="key", index=["run", "seed", "step"], values="value")
    wide = wide.with_columns(pl.col("step").map_elements(lambda s: bin_of(s)[0], return_dtype=pl.Int64).alias("bin"))
    return wide.group_by("run", "seed", "bin").agg(
        pl.len().alias("episodes"), pl.col("episode/score").mean().alias("score"),
        (pl.col("episode/score").sum() / pl.col("episode/length").sum()).alias("replay_rew")).sort("bin", "seed")


def metric_bins(metrics: pl.DataFrame) -> pl.DataFrame:
    rows = metrics.filter(pl.col("key").is_in(DIAGNOSTICS)).with_columns(
        pl.col("step").map_elements(lambda s: bin_of(s)[0], return_dtype=pl.Int64).alias("bin"))
    return rows.group_by("bin", "key").agg(pl.col("value").mean()).pivot(on="key", index="bin", values="value").sort("bin")


def main(paths, out=HERE / "curve.png", label="size1m"):
    runs = ingest.discover(paths or [str(HERE)], names=["dreamerv3"] * len(paths or [HERE]))
    data = ingest.ingest(runs, metric_keys=DIAGNOSTICS, cache=False)
    scores = data.scores.with_columns(pl.col(pl.Categorical).cast(pl.String))
    metrics = data.metrics.with_columns(pl.col(pl.Categorical).cast(pl.String))
    per_run = score_bins(scores)
    seeds = sorted(per_run["seed"].unique().to_list())
    print(f"runs: {len(runs)} (seeds {', '.join(map(str, seeds))}); random {RANDOM}")
    print("\n| env frames | " + " | ".join(f"seed {s}: episodes, mean" for s in seeds)
          + " | mean over seeds [min, max] | published mean [min, max] |")
    print("|---" * (len(seeds) + 3) + "|")
    for start in sorted(per_run["bin"].unique().to_list()):
        rows = per_run.filter(pl.col("bin") == start)
        cells = []
        for s in seeds:
            r = rows.filter(pl.col("seed") == s)
            cells.append(f"{r['episodes'][0]}, {r['score'][0]:.1f}" if r.height else "-")
        means = rows["score"].to_numpy()
        pub = PUBLISHED.get((start, start + BIN))
        print(f"| ({start // 1000}k, {(start + BIN) // 1000}k] | " + " | ".join(cells)
              + f" | {means.mean():.1f} [{means.min():.1f}, {means.max():.1f}] | "
              + (f"{pub[0]:,} [{pub[1]:,}, {pub[2]:,}]" if pub else "-") + " |")
    diag = metric_bins(metrics)
    replay = per_run.group_by("bin").agg(pl.col("replay_rew").mean()).sort("bin")
    diag = diag.join(replay, on="bin", how="left")
    print("\n| env frames | imagined rew/step | replayed rew/step | train/tar | train/repval/ret "
          "| entropy (train/ent/action) | normalised entropy (train/rand/action) | loss/rew | loss/dyn |")
    print("|---" * 9 + "|")
    for r in diag.iter_rows(named=True):
        f = lambda k: "-" if r.get(k) is None else f"{r[k]:.4g}"  # noqa: E731
        print(f"| ({r['bin'] // 1000}k, {(r['bin'] + BIN) // 1000}k] | {f('train/rew')} | {f('replay_rew')} | "
              f"{f('train/tar')} | {f('train/repval/ret')} | {f('train/ent/action')} | {f('train/rand/action')} "
              f"| {f('train/loss/rew')} | {f('train/loss/dyn')} |")
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for s in seeds:
        rows = per_run.filter(pl.col("seed") == s).sort("bin")
        ax.plot((rows["bin"] + BIN).to_numpy() / 1000, rows["score"].to_numpy(), "o-", lw=1.2, ms=3,
                label=f"this trainer, {label}, seed {s}")
    for (start, end), (mean, low, high) in PUBLISHED.items():
        ax.errorbar(end / 1000, mean, yerr=[[mean - low], [high - mean]], fmt="s", color="black", capsize=4,
                    label="published DreamerV3 (5 seeds: mean, range)" if start == 40_000 else None)
    ax.axhline(RANDOM, color="gray", ls="--", lw=0.8, label=f"random ({RANDOM})")
    ax.set_xlabel("env frames (thousands; each point: episodes ending in the 10k before it)")
    ax.set_ylabel("mean episode score")
    ax.set_title("Road Runner: this trainer against the published curve", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="run dirs or folders of runs (default: this folder)")
    parser.add_argument("--out", type=Path, default=HERE / "curve.png", help="where the figure goes")
    parser.add_argument("--label", default="size1m", help="what the seeds' lines are called")
    args = parser.parse_args()
    main(args.paths, args.out, args.label)
