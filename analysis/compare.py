"""Compare a baseline and an adapt method: the library call behind `dreamer-report compare`.

`compare` discovers and ingests both sets of runs, computes per-run final scores, the rliable
aggregates per task and over all shared tasks with 95% stratified bootstrap CIs, the probability
of improvement, sample-efficiency curves, performance profiles and a seed-count power estimate.
It returns data and prints nothing; `write_outputs` saves figures, summary.json and per_run.csv.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import polars as pl

from analysis import figures, ingest, stats
from analysis.ingest import IngestError

CURVE_REPS = 2000  # curves and profiles need less precision than the headline table
COMPARE_METRIC_KEYS = ("train/loss/dyn", "train/loss/rep", "train/loss/policy", "train/loss/value",
                       "fps/policy", "fps/train") + tuple(f"train/imag_adapt/{k}" for k in
                       ("active", "ratio", "ema", "severity", "gamma", "mask_mean", "horizon_eff"))
OVERALL = "all tasks"


class CompareError(IngestError):
    """The runs cannot support the comparison asked for (e.g. one seed where CIs need two)."""


@dataclass
class CompareResult:
    baseline: str  # method label of the baseline runs
    adapt: str  # method label of the adapt runs
    data: ingest.Ingested
    final: pl.DataFrame  # stats.final_scores, one row per run
    tasks: list[str]  # tasks both methods ran (the aggregate is over these)
    aggregate: pl.DataFrame  # scope (task or 'all tasks'), method, metric, point, low, high, runs
    poi: pl.DataFrame  # scope, point, low, high: P(adapt > baseline)
    power: dict | None  # stats.seeds_needed output, None when it could not be computed
    curves: dict  # marks (env frames) and, per method, IQM point/low/high arrays
    profiles: dict  # taus and, per method, point/low/high arrays
    seed: int
    reps: int
    window: float
    metrics: tuple[str, ...]
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """Folder name for outputs: the task (or 'atari100k' for several) and the methods."""
        scope = self.tasks[0] if len(self.tasks) == 1 else f"{len(self.tasks)}tasks"
        return f"{scope}_{self.baseline}_vs_{self.adapt}"


def compare(
    baseline: Sequence[str],
    adapt: Sequence[str],
    names: Sequence[str] | None = None,
    reps: int = 50_000,
    seed: int = 0,
    metrics: Sequence[str] = stats.METRICS,
    window: float = 0.1,
    progress: bool = False,
    power_delta: float | None = None,
    cache: bool | str | Path | None = True,
) -> CompareResult:
    """Run the whole comparison; raises IngestError / CompareError on input that cannot work."""
    baseline, adapt = [baseline] if isinstance(baseline, str) else list(baseline), [adapt] if isinstance(adapt, str) else list(adapt)
    unknown = [m for m in metrics if m not in stats.METRICS]
    if unknown:
        raise CompareError(f"unknown metric {unknown[0]!r}; expected some of {','.join(stats.METRICS)}")
    if names is not None and len(names) != 2:
        raise CompareError(f"--names needs two labels (baseline,adapt), got {len(names)}")
    runs_b = ingest.discover(baseline, None if names is None else [names[0]] * len(baseline))
    runs_a = ingest.discover(adapt, None if names is None else [names[1]] * len(adapt))
    base_label, adapt_label = _side_label(runs_b, "baseline"), _side_label(runs_a, "adapt")
    if base_label == adapt_label:
        raise CompareError(f"both sides are method {base_label!r}; pass --names baseline,adapt")
    ingest.one_method_per_run({base_label: runs_b, adapt_label: runs_a})
    runs = ingest.with_unique_names(runs_b + runs_a)
    data = ingest.ingest(runs, metric_keys=COMPARE_METRIC_KEYS, progress=progress, cache=cache)
    final = stats.final_scores(data.scores, window, runs, ingest.last_steps(data.scores, data.metrics))
    tasks, notes = _shared_tasks(final, base_label, adapt_label)
    notes += stats.fallback_notes(final, window)
    matrices = {}
    for method in (base_label, adapt_label):
        matrices[method], dropped = stats.score_matrix(final, method, tasks)
        notes += dropped
        _need_two_seeds(final, method, tasks, matrices[method].shape[0])
    aggregate = _aggregate_table(matrices, tasks, metrics, reps, seed, progress)
    poi = _poi_table(matrices[adapt_label], matrices[base_label], tasks, reps, seed)
    power = _power(matrices[base_label], matrices[adapt_label], power_delta, seed, notes)
    curves = _curves(data.scores, final, (base_label, adapt_label), tasks, min(reps, CURVE_REPS), seed)
    profiles = _profiles(matrices, min(reps, CURVE_REPS), seed)
    return CompareResult(base_label, adapt_label, data, final, tasks, aggregate, poi, power, curves, profiles,
                         seed, reps, window, tuple(metrics), notes)


def _need_two_seeds(final: pl.DataFrame, method: str, tasks: list[str], usable: int) -> None:
    """CIs resample runs: one run per task gives none. Say which task is short and why."""
    if usable >= 2:
        return
    for task in tasks:
        rows = final.filter((pl.col("method") == method) & (pl.col("task") == task))
        scored = rows.filter(pl.col("normalized").is_not_null()).height
        if scored < 2:
            empty = rows.height - scored
            why = f" ({empty} more run(s) have no episode at all; see `dreamer-report runs`)" if empty else ""
            raise CompareError(f"method {method!r} has {scored} run(s) with episode scores on {task}{why}; "
                               "the bootstrap CIs need at least 2 seeds per method and task: add runs of "
                               "more seeds")


def _side_label(runs: list[ingest.Run], side: str) -> str:
    methods = sorted({r.method for r in runs})
    if len(methods) != 1:
        raise CompareError(f"the {side} runs have methods {', '.join(methods)}; expected one (use --names)")
    return methods[0]


def _shared_tasks(final: pl.DataFrame, base: str, adapt: str) -> tuple[list[str], list[str]]:
    scored = final.filter(pl.col("normalized").is_not_null())
    per_method = {m: set(scored.filter(pl.col("method") == m)["task"]) for m in (base, adapt)}
    tasks = sorted(per_method[base] & per_method[adapt])
    notes = [f"{task}: only {m} has scored runs; left out of the comparison"
             for m in (base, adapt) for task in sorted(per_method[m] - set(tasks))]
    if not tasks:
        raise CompareError(f"no task has scored runs of both {base!r} and {adapt!r}")
    if any(final.filter(pl.col("task").is_in(tasks))["normalization"] == "raw"):
        notes.append("tasks without a random/human table are aggregated on raw scores")
    return tasks, notes


def _aggregate_table(matrices, tasks, metrics, reps, seed, progress) -> pl.DataFrame:
    jobs = [(scope, method, metric) for scope in tasks + [OVERALL] for method in matrices for metric in metrics]
    rows = []
    for scope, method, metric in ingest._progress(jobs, progress, f"bootstrap ({reps:,} reps)"):
        matrix = matrices[method] if scope == OVERALL else matrices[method][:, [tasks.index(scope)]]
        est = stats.interval_estimate(matrix, metric, reps, seed)
        rows.append((scope, method, metric, est.point, est.low, est.high, matrix.shape[0]))
    schema = {"scope": pl.String, "method": pl.String, "metric": pl.String, "point": pl.Float64,
              "low": pl.Float64, "high": pl.Float64, "runs": pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row")


def _poi_table(adapt: np.ndarray, base: np.ndarray, tasks, reps, seed) -> pl.DataFrame:
    rows = []
    for scope in tasks + [OVERALL]:
        cols = slice(None) if scope == OVERALL else [tasks.index(scope)]
        est = stats.poi_estimate(adapt[:, cols], base[:, cols], reps, seed)
        rows.append((scope, est.point, est.low, est.high))
    return pl.DataFrame(rows, schema={"scope": pl.String, "point": pl.Float64, "low": pl.Float64,
                                      "high": pl.Float64}, orient="row")


def _power(base, adapt, delta, seed, notes) -> dict | None:
    if delta is None:
        delta = abs(float(stats.iqm(adapt) - stats.iqm(base)))
    if delta <= 1e-9:
        notes.append("power: the observed IQM difference is zero; give --power-delta to size a study")
        return None
    return stats.seeds_needed(base, adapt, delta, seed=seed)


def _curves(scores, final, methods, tasks, reps, seed) -> dict:
    marks, table = stats.score_curves(scores.filter(pl.col("task").is_in(tasks)), final)
    out = {"marks": marks}
    for method in methods:
        out[method] = stats.iqm_curve(stats.curve_matrix(table, method, tasks), reps, seed)
    return out


def _profiles(matrices, reps, seed) -> dict:
    top = max(float(np.max(m)) for m in matrices.values())
    taus = np.linspace(min(0.0, min(float(np.min(m)) for m in matrices.values())), max(top * 1.05, 1e-6), 61)
    return {"taus": taus, **{m: stats.performance_profile(x, taus, reps, seed) for m, x in matrices.items()}}


# ---------------------------------------------------------------- outputs


def summary(result: CompareResult) -> dict:
    """Everything a report needs, JSON-safe (NaN -> null)."""
    safe = ingest.finite_or_none
    return {
        "baseline": result.baseline, "adapt": result.adapt, "tasks": result.tasks,
        "seed": result.seed, "reps": result.reps, "window": result.window, "ci": stats.CI_SIZE,
        "metrics": list(result.metrics),
        "aggregate": [{k: safe(v) if isinstance(v, float) else v for k, v in row.items()}
                      for row in result.aggregate.to_dicts()],
        "probability_of_improvement": result.poi.to_dicts(),
        "power": result.power,
        "runs": [{"name": r.name, "task": r.task, "method": r.method, "seed": r.seed, "path": str(r.path)}
                 for r in result.data.runs],
        "problems": result.data.problems.to_dicts(),
        "notes": result.notes,
    }


def write_outputs(result: CompareResult, out: Path) -> dict[str, Path]:
    """Figures (PNG + PDF), summary.json and per_run.csv under `out`; returns name -> path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    colors = figures.method_colors([result.baseline, result.adapt])
    written = {}
    plots = {
        "aggregates": figures.plot_aggregates(result.aggregate.filter(pl.col("scope") == OVERALL), colors,
                                              result.reps, result.seed),
        "probability_of_improvement": figures.plot_poi(result.poi, result.adapt, result.baseline),
        "sample_efficiency": figures.plot_curves(result.curves, colors, len(result.tasks)),
        "performance_profile": figures.plot_profiles(result.profiles, colors),
        "score_curves": figures.plot_score_curves(result.data.scores.filter(pl.col("task").is_in(result.tasks)),
                                                  colors),
        "final_scores": figures.plot_final_scores(result.final.filter(pl.col("task").is_in(result.tasks)), colors),
    }
    for stem, fig in plots.items():
        for path in figures.save(fig, out / stem):
            written[path.name] = path
    (out / "summary.json").write_text(json.dumps(summary(result), indent=2, default=str))
    result.final.write_csv(out / "per_run.csv")
    written["summary.json"], written["per_run.csv"] = out / "summary.json", out / "per_run.csv"
    return written
