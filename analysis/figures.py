"""Figures for comparisons and mask diagnostics (matplotlib + seaborn), for any number of methods.

Every figure takes data already computed by `stats` / `compare` / `mask`; colours are fixed per
method by `method_colors` so a method looks the same in every figure of a report. Importing this
module changes no global state: each plot draws inside `_style()` (seaborn's whitegrid theme as
an rc context), and `render` turns a figure into PNG and PDF bytes in memory, which the report
embeds and `write_rendered` saves.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import polars as pl
import seaborn as sns

from analysis import atari
from analysis import curves as curves_lib
from analysis.stats import METRIC_TITLES, OVERALL
from dreamerv3 import safefile

FRAMES_LABEL = "env frames"
DPI = 150


LITERAL = {"text.parse_math": False}  # names from folders (`a$\foo$`) are drawn as written, never as mathtext


def _style(plot):
    """Draw `plot` under seaborn's whitegrid/notebook theme without changing the global rcParams."""

    @functools.wraps(plot)
    def themed(*args, **kwargs):
        with plt.rc_context({**sns.axes_style("whitegrid"), **sns.plotting_context("notebook"), **LITERAL}):
            return plot(*args, **kwargs)

    return themed


def method_colors(methods) -> dict[str, tuple]:
    """A fixed colour per method, in the order given (the reference first keeps it blue)."""
    palette = sns.color_palette("colorblind")
    return {m: palette[i % len(palette)] for i, m in enumerate(methods)}


@dataclass
class Rendered:
    """One figure drawn once: PNG bytes for the report, PDF bytes for print."""

    png: bytes
    pdf: bytes


def render(fig) -> Rendered:
    """PNG (DPI) and PDF bytes of a figure, in memory; closes the figure."""
    out = []
    for fmt in ("png", "pdf"):
        buffer = io.BytesIO()
        for text in fig.findobj(matplotlib.text.Text):  # figures made outside _style too (open-loop panels)
            text.set_parse_math(False)
        with plt.rc_context(LITERAL):  # tick labels are made at draw time
            fig.savefig(buffer, format=fmt, dpi=DPI, bbox_inches="tight")
        out.append(buffer.getvalue())
    plt.close(fig)
    return Rendered(*out)


def write_rendered(rendered: dict[str, Rendered], folder: Path, within: Path | None = None) -> dict[str, Path]:
    """Each rendered figure as `<stem>.png` and `<stem>.pdf` in `folder`; returns file name -> path.
    `within`: the command's output folder; no folder from there down to `folder` may be a link."""
    folder = Path(folder)
    if within is not None:
        safefile.refuse_linked(folder, "a figure", within)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for stem, fig in rendered.items():
        for suffix, data in ((".png", fig.png), (".pdf", fig.pdf)):
            path = folder / f"{stem}{suffix}"
            safefile.write(path, data, flag="a figure", within=within)  # never through a link, by replace
            written[path.name] = path
    return written


def save(fig, stem: Path) -> list[Path]:
    """Write `<stem>.png` and `<stem>.pdf`, close the figure, return both paths."""
    stem = Path(stem)
    written = write_rendered({stem.name: render(fig)}, stem.parent)
    return [written[stem.name + ".png"], written[stem.name + ".pdf"]]


def _frames(ax, x: tuple[float, str] = (1.0, FRAMES_LABEL)):
    """x ticks in thousands of env frames, or of another unit: x = (env frames per unit, label)."""
    per, label = x
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / per / 1e3:,.4g}k"))
    ax.set_xlabel(label)


@_style
def plot_aggregates(rows: pl.DataFrame, colors: dict, reps: int, seed: int, unit: str):
    """rliable-style interval plot: one panel per metric, a 95% CI bar and point per method."""
    metrics = list(dict.fromkeys(rows["metric"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 0.6 * len(colors) + 1.6), squeeze=False)
    methods = list(colors)
    for ax, metric in zip(axes[0], metrics):
        for y, method in enumerate(methods):
            row = rows.filter((pl.col("metric") == metric) & (pl.col("method") == method))
            if row.height == 0:
                continue
            point, low, high = row["point"][0], row["low"][0], row["high"][0]
            ax.barh(y, high - low, left=low, height=0.6, color=colors[method], alpha=0.75)
            ax.plot([point, point], [y - 0.3, y + 0.3], color="black", lw=1.5)
        ax.set_yticks(range(len(methods)), methods if ax is axes[0][0] else [""] * len(methods))
        ax.set_title(METRIC_TITLES.get(metric, metric))
        ax.set_xlabel(unit if metric != "og" else "gap to 1.0 (lower is better)")
    fig.suptitle(f"Aggregate scores, 95% stratified bootstrap CIs ({reps:,} reps, seed {seed})", y=1.02)
    fig.tight_layout()
    return fig


@_style
def plot_poi(poi: pl.DataFrame, reference: str):
    """P(method > reference) per task and over all tasks for each other method, with 95% CIs;
    0.5 marks no difference."""
    rows = poi.to_dicts()
    several = len(set(r["method"] for r in rows)) > 1
    fig, ax = plt.subplots(figsize=(6.5, 0.4 * len(rows) + 1.4))
    for y, row in enumerate(rows):
        bold = row["scope"] == OVERALL
        ax.plot([row["low"], row["high"]], [y, y], color="black" if bold else "0.4", lw=4 if bold else 2.5)
        ax.plot(row["point"], y, "o", color="crimson" if bold else "0.2")
    ax.axvline(0.5, color="0.5", ls="--", lw=1)
    labels = [(f"{r['method']}: " if several else "") + r["scope"].removeprefix("atari100k_") for r in rows]
    ax.set_yticks(range(len(rows)), labels)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel(f"P(method > {reference})" if several else f"P({rows[0]['method']} > {reference})")
    ax.set_title("Probability of improvement, 95% CI")
    fig.tight_layout()
    return fig


@_style
def plot_curves(curves: dict, colors: dict, n_tasks: int, unit: str, x: tuple[float, str] = (1.0, FRAMES_LABEL)):
    """Sample efficiency: IQM of normalised score over env frames, 95% stratified bootstrap CI
    bands; below it, the runs per task each point rests on (it drops where runs end)."""
    counted = any("runs" in c for m, c in curves.items() if m != "marks")
    fig, axes = plt.subplots(
        2 if counted else 1,
        1,
        figsize=(6.5, 5 if counted else 4),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 1]} if counted else None,
    )
    ax = axes[0, 0]
    marks = curves["marks"]
    for method, color in colors.items():
        if method not in curves:
            continue
        c = curves[method]
        runs = c.get("runs")
        span = (
            ""
            if runs is None
            else (f", {runs.max()} runs/task" if runs.min() == runs.max() else f", {runs.min()}-{runs.max()} runs/task")
        )
        ax.plot(marks, c["point"], color=color, lw=2, label=f"{method}{span}")
        ax.fill_between(marks, c["low"], c["high"], color=color, alpha=0.25, lw=0)
        if runs is not None:
            axes[1, 0].step(marks, runs, where="mid", color=color, lw=1.5)
    ax.set_ylabel(f"IQM {unit}")
    ax.set_title(
        f"Sample efficiency ({n_tasks} task{'s' if n_tasks != 1 else ''}): IQM, band = 95% stratified bootstrap CI",
        fontsize=10,
    )
    ax.legend(loc="upper left", fontsize=8)
    if counted:
        axes[1, 0].set_ylabel("runs/task", fontsize=8)
        axes[1, 0].set_ylim(bottom=0)
        _frames(axes[1, 0], x)
    else:
        _frames(ax, x)
    fig.tight_layout()
    return fig


@_style
def plot_profiles(profiles: dict, colors: dict, unit: str):
    """Performance profile: fraction of runs with normalised score above tau, 95% CI bands."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    taus = profiles["taus"]
    for method, color in colors.items():
        p = profiles[method]
        ax.plot(taus, p["point"], color=color, lw=2, label=method)
        ax.fill_between(taus, p["low"], p["high"], color=color, alpha=0.25, lw=0)
    ax.set_xlabel(f"{unit} τ")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Performance profile, 95% CI")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


@_style
def plot_score_curves(
    scores: pl.DataFrame,
    colors: dict,
    smooth: int | str = 10,
    max_tasks: int = 8,
    x: tuple[float, str] = (1.0, FRAMES_LABEL),
):
    """Raw episode scores over env frames per task: each run thin (smoothed as `smooth` says:
    an int N is `window:N`, else a curves.smooth spec), each method's mean over runs thick, only
    where every run has episodes, and the task's random / human scores dashed.

    The aggregates say which method is ahead; this says whether either learned at all.
    """
    spec = f"window:{smooth}" if isinstance(smooth, int) else smooth
    rows = scores.filter(pl.col("key") == "episode/score")
    tasks = sorted(rows["task"].cast(pl.String).unique())[:max_tasks]
    cols = max(1, min(len(tasks), 4))
    lines = max(1, -(-len(tasks) // cols))
    fig, axes = plt.subplots(lines, cols, figsize=(4.2 * cols + 1, 3.4 * lines), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        for method, color in colors.items():
            runs = rows.filter((pl.col("task") == task) & (pl.col("method") == method)).sort("run", "step")
            curves = []
            for _, run in runs.group_by("run", maintain_order=True):
                step, score = run["step"].to_numpy(), run["value"].to_numpy()
                curves.append((step, curves_lib.smooth(score, spec)))
                ax.plot(*curves[-1], color=color, lw=0.8, alpha=0.45)
            if not curves:
                continue
            # The method's mean only where every run has episodes (no run entering or leaving it).
            start, end = max(c[0][0] for c in curves), min(c[0][-1] for c in curves)
            grid = np.linspace(start, end, 100) if end > start else np.array([])
            mean = np.mean([np.interp(grid, *c) for c in curves], 0) if grid.size else grid
            ax.plot(grid, mean, color=color, lw=2.2, label=f"{method} (mean of {len(curves)} runs)")
        game = atari.game_of(task)
        if game is not None:
            low, high = atari.RANDOM_HUMAN[game]
            ax.axhline(low, color="0.3", ls="--", lw=1, label=f"random {low:g}")
            if high < 3 * max(rows.filter(pl.col("task") == task)["value"].max() or 0, low + 1):
                ax.axhline(high, color="0.3", ls=":", lw=1, label=f"human {high:g}")
        _frames(ax, x)
        ax.set_ylabel(f"episode score ({curves_lib.smooth_label(spec)})", fontsize=9)
        ax.set_title(task, fontsize=11)
        ax.legend(fontsize=8, loc="best")
    for ax in list(axes.flat)[len(tasks) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


@_style
def plot_final_scores(final: pl.DataFrame, colors: dict, unit: str):
    """Every run's final normalised score per task: the raw data behind the aggregates."""
    rows = final.filter(pl.col("normalized").is_not_null()).with_columns(
        game=pl.col("task").str.replace("^atari100k_", "")
    )
    data = pd.DataFrame(rows.select("game", "method", "normalized").to_dict(as_series=False))
    tasks = sorted(data["game"].unique())
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(tasks) + 2), 4))
    sns.stripplot(
        data=data,
        x="game",
        y="normalized",
        hue="method",
        order=tasks,
        hue_order=list(colors),
        palette=colors,
        dodge=True,
        size=6,
        jitter=0.15,
        ax=ax,
    )
    ax.set_xlabel("task")
    ax.set_ylabel(f"final {unit}")
    ax.set_title("Final score per run (episodes in the last part of each run's own frames)", fontsize=11)
    ax.legend(title="method", bbox_to_anchor=(1.01, 1), loc="upper left")
    if len(tasks) > 6:
        ax.tick_params(axis="x", rotation=60)
    fig.tight_layout()
    return fig


@_style
def plot_mask(metrics: pl.DataFrame, runs, colors: dict, shifts: dict | None = None):
    """Per run: loss/dyn with mask activation shaded, severity, effective horizon (shared x);
    `shifts` (run name -> env step) marks a dynamics shift with a dashed line."""
    fig, axes = plt.subplots(3, len(runs), figsize=(4.2 * len(runs) + 0.6, 7.5), sharex="col", squeeze=False)
    for col, run in enumerate(runs):
        own = metrics.filter(pl.col("run") == run.name)
        series = {
            k: own.filter(pl.col("key") == f"train/{k}").sort("step")
            for k in ("loss/dyn", "imag_adapt/active", "imag_adapt/severity", "imag_adapt/horizon_eff")
        }
        color = colors.get(run.method, "C0")
        dyn, active = series["loss/dyn"], series["imag_adapt/active"]
        axes[0, col].plot(dyn["step"], dyn["value"], color=color, lw=1.2)
        axes[0, col].set_title(run.name, fontsize=10)
        shift = (shifts or {}).get(run.name)
        for ax in axes[:, col]:
            _shade_active(ax, active)
            if shift is not None:
                ax.axvline(shift, color="0.25", ls="--", lw=1.0)
        if shift is not None:
            axes[0, col].text(
                shift,
                0.97,
                " shift",
                transform=axes[0, col].get_xaxis_transform(),
                ha="left",
                va="top",
                fontsize=8,
                color="0.25",
            )
        for row, key, _label in ((1, "imag_adapt/severity", "severity"), (2, "imag_adapt/horizon_eff", "horizon_eff")):
            s = series[key]
            if s.height:
                axes[row, col].plot(s["step"], s["value"], color=color, lw=1.2)
            else:
                axes[row, col].text(
                    0.5,
                    0.5,
                    "not logged (mask off)",
                    ha="center",
                    va="center",
                    transform=axes[row, col].transAxes,
                    color="0.4",
                )
        heff = series["imag_adapt/horizon_eff"]  # the run's imag_length when the mask is off
        axes[2, col].set_ylim(0, (float(heff["value"].max()) if heff.height else 15.0) * 1.07 + 0.5)
        _frames(axes[2, col])
    for row, label in enumerate(("train/loss/dyn", "mask severity", "effective horizon (steps)")):
        axes[row, 0].set_ylabel(label)
    fig.suptitle("Adaptive horizon vs dynamics loss (shaded: fraction of updates with the mask active)", y=1.0)
    fig.tight_layout()
    return fig


def _shade_active(ax, active: pl.DataFrame):
    """Shade each logging interval in proportion to the fraction of its updates that were active."""
    steps, values = active["step"].to_numpy(), active["value"].to_numpy()
    starts = np.concatenate([[0], steps[:-1]]) if steps.size else steps
    for start, end, value in zip(starts, steps, values):
        if value > 0:
            ax.axvspan(start, end, color="orange", alpha=0.35 * float(min(value, 1.0)), lw=0)


@_style
def plot_mask_scatter(metrics: pl.DataFrame, runs, colors: dict):
    """mask_mean against loss/dyn over all logged steps, one colour per method."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for method in dict.fromkeys(r.method for r in runs):
        names = [r.name for r in runs if r.method == method]
        own = metrics.filter(
            pl.col("run").is_in(names) & pl.col("key").is_in(["train/loss/dyn", "train/imag_adapt/mask_mean"])
        )
        wide = own.pivot(on="key", index=["run", "step"], values="value").drop_nulls()
        if wide.height == 0 or "train/imag_adapt/mask_mean" not in wide.columns:
            continue
        ax.scatter(
            wide["train/loss/dyn"],
            wide["train/imag_adapt/mask_mean"],
            s=12,
            alpha=0.6,
            color=colors.get(method, "C0"),
            label=method,
        )
    ax.set_xlabel("train/loss/dyn (nats)")
    ax.set_ylabel("train/imag_adapt/mask_mean")
    ax.set_ylim(0, 1.05)
    ax.set_title("Mask mean vs dynamics loss (one point per logged step)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    return fig
