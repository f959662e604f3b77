"""Adaptive-horizon mask diagnostics (SPEC section 4): the library call behind `dreamer-report mask`.

Reads the `train/imag_adapt/*` keys and `train/loss/dyn` of each run, summarises how often the
mask was active and the mean effective horizon, and draws them over training. Runs without the
keys (baseline, mask disabled) are kept and shown with their loss alone, for contrast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import polars as pl

from analysis import figures, ingest

ADAPT_FIELDS = ("active", "ratio", "ema", "severity", "gamma", "mask_mean", "horizon_eff")  # SPEC s.4
ADAPT_KEYS = tuple(f"train/imag_adapt/{k}" for k in ADAPT_FIELDS)  # as the trainer logs them
MASK_KEYS = ("train/loss/dyn",) + ADAPT_KEYS


@dataclass
class MaskResult:
    data: ingest.Ingested
    summary: pl.DataFrame  # run, method, task, seed, logged, frac_active, mean_horizon_eff, mean_severity, mean_loss_dyn


def mask_diagnostics(paths: Sequence[str], names: Sequence[str] | None = None, progress: bool = False,
                     cache: bool | str | Path | None = True) -> MaskResult:
    runs = ingest.discover(paths, names)
    data = ingest.ingest(runs, metric_keys=MASK_KEYS, progress=progress, cache=cache)
    return MaskResult(data, summarize(data))


def summarize(data: ingest.Ingested) -> pl.DataFrame:
    """Per run: log lines with the mask keys, fraction of updates active, mean horizon_eff.

    Each metrics line holds the mean over the updates since the previous line, so the mean of
    `active` over lines is the fraction of updates with the mask active (equal-sized intervals).
    """
    means = (data.metrics.group_by("run", "key").agg(pl.col("value").mean(), pl.len().alias("n"))
             .pivot(on="key", index="run", values="value"))
    logged = data.metrics.filter(pl.col("key") == "train/imag_adapt/active").group_by("run").len()
    rows = []
    for run in data.runs:
        row = means.filter(pl.col("run") == run.name).to_dicts()
        row = row[0] if row else {}
        n = logged.filter(pl.col("run") == run.name)["len"]
        rows.append({"run": run.name, "method": run.method, "task": run.task, "seed": run.seed,
                     "logged": int(n[0]) if n.len() else 0,
                     "frac_active": row.get("train/imag_adapt/active"),
                     "mean_horizon_eff": row.get("train/imag_adapt/horizon_eff"),
                     "mean_severity": row.get("train/imag_adapt/severity"),
                     "mean_loss_dyn": row.get("train/loss/dyn")})
    schema = {"run": pl.String, "method": pl.String, "task": pl.String, "seed": pl.Int64, "logged": pl.Int64,
              "frac_active": pl.Float64, "mean_horizon_eff": pl.Float64, "mean_severity": pl.Float64,
              "mean_loss_dyn": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def write_outputs(result: MaskResult, out: Path) -> dict[str, Path]:
    """mask_over_training and mask_vs_loss figures (PNG + PDF) and mask_summary.csv."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder (nothing was written over it)")
    out.mkdir(parents=True, exist_ok=True)
    runs = result.data.runs
    colors = figures.method_colors(list(dict.fromkeys(r.method for r in runs)))
    written = {}
    for stem, fig in (("mask_over_training", figures.plot_mask(result.data.metrics, runs, colors)),
                      ("mask_vs_loss", figures.plot_mask_scatter(result.data.metrics, runs, colors))):
        for path in figures.save(fig, out / stem):
            written[path.name] = path
    result.summary.write_csv(out / "mask_summary.csv")
    written["mask_summary.csv"] = out / "mask_summary.csv"
    return written
