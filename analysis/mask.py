"""Adaptive-horizon mask diagnostics (docs/design.md, "The adaptive rule"): the library call behind
`dreamer-report mask`.

Reads the `train/imag_adapt/*` keys and `train/loss/dyn` of each run, summarises how often the
mask was active and the mean effective horizon, and draws them over training. Runs without the
keys (baseline, mask disabled) are kept and shown with their loss alone, for contrast.

A run whose config.yaml sets a dynamics shift (`env.gym.shift.step` or
`env.atari100k.shift.step`; docs/design.md, "The dynamics shift") also gets the
fraction of its updates with the mask on before and after the shift, and the first logged
interval after the shift in which the mask was on: whether the rule fired at the shift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from analysis import confine, figures, ingest, runconfig
from dreamerv3 import safefile

ADAPT_FIELDS = ("active", "ratio", "ema", "severity", "gamma", "mask_mean", "horizon_eff")  # the rule's metrics
ADAPT_KEYS = tuple(f"train/imag_adapt/{k}" for k in ADAPT_FIELDS)  # as the trainer logs them
UPDATES_KEY = "train/opt/updates"  # cumulative gradient updates, the weight of each log line
MASK_KEYS = ("train/loss/dyn", UPDATES_KEY) + ADAPT_KEYS
SHIFT_KEYS = ("env.gym.shift.step", "env.atari100k.shift.step")  # env step of a dynamics shift (0: none)


@dataclass
class MaskResult:
    data: ingest.Ingested
    summary: pl.DataFrame  # run, method, task, seed, logged, frac_active, mean_horizon_eff, mean_severity,
    # mean_loss_dyn, shift_step, active_before, active_after, first_active_after (see `summarize`)


def mask_diagnostics(
    paths: Sequence[str],
    names: Sequence[str] | None = None,
    progress: bool = False,
    cache: bool | str | Path | None = True,
) -> MaskResult:
    runs = ingest.discover(paths, names)
    data = ingest.ingest(runs, metric_keys=MASK_KEYS, progress=progress, cache=cache)
    return MaskResult(data, summarize(data))


def summarize(data: ingest.Ingested) -> pl.DataFrame:
    """Per run: log lines with the mask keys, fraction of updates active, mean horizon_eff.

    Each metrics line holds the mean over the updates since the previous line, so the mean of
    `active` over lines is the fraction of updates with the mask active (equal-sized intervals).
    Around a dynamics shift (`shift_step`, from the run's config.yaml; null without one) the
    fractions are weighted by each line's updates (`around_shift`).
    """
    means = (
        data.metrics.group_by("run", "key")
        .agg(pl.col("value").mean(), pl.len().alias("n"))
        .pivot(on="key", index="run", values="value")
    )
    logged = data.metrics.filter(pl.col("key") == "train/imag_adapt/active").group_by("run").len()
    rows = []
    for run in data.runs:
        row = means.filter(pl.col("run") == run.name).to_dicts()
        row = row[0] if row else {}
        n = logged.filter(pl.col("run") == run.name)["len"]
        rows.append(
            {
                "run": run.name,
                "method": run.method,
                "task": run.task,
                "seed": run.seed,
                "logged": int(n[0]) if n.len() else 0,
                "frac_active": row.get("train/imag_adapt/active"),
                "mean_horizon_eff": row.get("train/imag_adapt/horizon_eff"),
                "mean_severity": row.get("train/imag_adapt/severity"),
                "mean_loss_dyn": row.get("train/loss/dyn"),
                **_around_run_shift(data.metrics, run),
            }
        )
    schema = {
        "run": pl.String,
        "method": pl.String,
        "task": pl.String,
        "seed": pl.Int64,
        "logged": pl.Int64,
        "frac_active": pl.Float64,
        "mean_horizon_eff": pl.Float64,
        "mean_severity": pl.Float64,
        "mean_loss_dyn": pl.Float64,
        "shift_step": pl.Int64,
        "active_before": pl.Float64,
        "active_after": pl.Float64,
        "first_active_after": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema)


def shift_step(run_dir: Path) -> int | None:
    """The env step of the run's dynamics shift from its config.yaml; None without one (no
    shift, no config, or a config that cannot be read: the other columns do not need it)."""
    try:
        config = runconfig.read_flat(Path(run_dir) / "config.yaml")
    except (runconfig.ConfigError, OSError):
        return None
    for key in SHIFT_KEYS:  # the trainer applies the one of the run's suite
        value = config.get(key)
        if not isinstance(value, bool) and isinstance(value, (int, float)) and np.isfinite(value) and value > 0:
            return int(value)
    return None


def shift_steps(summary: pl.DataFrame) -> dict[str, int]:
    """Run name -> shift step, for the runs of a `summarize` table that have a shift."""
    return {row["run"]: row["shift_step"] for row in summary.iter_rows(named=True) if row["shift_step"] is not None}


def around_shift(steps, active, updates, shift: int) -> dict:
    """Fraction of updates with the mask on before and after `shift`, and where it first fired after.

    Args:
      steps: env step of each log line (ascending); line i covers the updates made in
        (steps[i-1], steps[i]].
      active: each line's fraction of its updates with the mask on.
      updates: each line's cumulative update count, or None (then every line weighs the same).
      shift: env step of the dynamics shift.
    Returns:
      active_before: over lines ending at or before the shift; active_after: over the lines
      after it (a line that straddles the shift counts as after); first_active_after: the end
      step of the first line after the shift with the mask on (None: it never fired after).
      A side without lines (or without updates) is None.
    """
    steps, active = np.asarray(steps, float), np.asarray(active, float)
    if updates is None:
        weights = np.ones_like(active)
    else:
        weights = np.diff(np.asarray(updates, float), prepend=0.0)
    before, after = steps <= shift, steps > shift

    def share(side):
        total = weights[side].sum()
        return float((active[side] * weights[side]).sum() / total) if total > 0 else None

    fired = np.flatnonzero(after & (active > 0))
    return {
        "active_before": share(before),
        "active_after": share(after),
        "first_active_after": int(steps[fired[0]]) if fired.size else None,
    }


def _around_run_shift(metrics: pl.DataFrame, run) -> dict:
    shift = shift_step(run.path)
    empty = {"shift_step": shift, "active_before": None, "active_after": None, "first_active_after": None}
    if shift is None:
        return empty
    own = metrics.filter(pl.col("run") == run.name)
    active = own.filter(pl.col("key") == "train/imag_adapt/active").select("step", "value").sort("step")
    if active.height == 0:
        return empty
    updates = own.filter(pl.col("key") == UPDATES_KEY).select("step", pl.col("value").alias("updates"))
    joined = active.join(updates, on="step", how="left")
    counts = None if joined["updates"].null_count() else joined["updates"].to_numpy()
    return {"shift_step": shift, **around_shift(joined["step"].to_numpy(), joined["value"].to_numpy(), counts, shift)}


def write_outputs(result: MaskResult, out: Path) -> dict[str, Path]:
    """mask_over_training and mask_vs_loss figures (PNG + PDF) and mask_summary.csv."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder (nothing was written over it)")
    confine.refuse_inside(out, [run.path for run in result.data.runs], "--out")
    out.mkdir(parents=True, exist_ok=True)
    runs = result.data.runs
    colors = figures.method_colors(list(dict.fromkeys(r.method for r in runs)))
    written = {}
    shifts = shift_steps(result.summary)
    for stem, fig in (
        ("mask_over_training", figures.plot_mask(result.data.metrics, runs, colors, shifts)),
        ("mask_vs_loss", figures.plot_mask_scatter(result.data.metrics, runs, colors)),
    ):
        for path in figures.save(fig, out / stem):
            written[path.name] = path
    with safefile.replacing(out / "mask_summary.csv") as f:
        result.summary.write_csv(f)
    written["mask_summary.csv"] = out / "mask_summary.csv"
    return written
