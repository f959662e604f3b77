"""Compare N methods against a reference: the library call behind `dreamer-report compare`.

`compare` discovers and ingests every method's runs, computes per-run final scores, the rliable
aggregates of each method per task and over all shared tasks with 95% stratified bootstrap CIs,
the probability of improvement of each method over the reference (the first method), the
sample-efficiency curves, performance profiles and, per method, a seed-count power estimate.
It returns data and prints nothing; `table_rows` gives the one aggregate table that the terminal
and the report both show; `figures_of` draws every figure; `write_outputs` saves them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from analysis import (
    atari,
    confine,
    curves,
    defaults,
    figures,
    foreign,
    ingest,
    mask,
    published,
    remote,
    runscore,
    stats,
    tables,
)
from dreamerv3 import safefile

CURVE_REPS = 2000  # curves and profiles need less precision than the headline table
COMPARE_METRIC_KEYS = (
    "train/loss/dyn",
    "train/loss/rep",
    "train/loss/policy",
    "train/loss/value",
    "fps/policy",
    "fps/train",
    mask.UPDATES_KEY,
) + mask.ADAPT_KEYS
OVERALL = stats.OVERALL
DEFAULT_REPS = defaults.REPS
DEFAULT_WINDOW = defaults.WINDOW
DEFAULT_MAX_SEEDS = defaults.POWER_MAX_SEEDS


class CompareError(ValueError):
    """The runs cannot support the comparison asked for (e.g. one seed where CIs need two)."""


@dataclass
class CompareResult:
    methods: list[str]  # method labels, the reference first
    data: ingest.Ingested
    final: pl.DataFrame  # stats.final_scores, one row per run
    tasks: list[str]  # tasks every method ran (the aggregate is over these)
    aggregate: pl.DataFrame  # scope (task or OVERALL), method, metric, point, low, high, runs
    poi: pl.DataFrame  # scope, method, point, low, high: P(method > reference), one per other method
    power: dict[str, dict | None]  # per other method: stats.seeds_needed output, None if not computed
    differences: dict[str, dict]  # per other method: stats.iqm_difference_test of it minus the reference
    curves: dict  # marks (env frames) and, per method, IQM point/low/high arrays
    profiles: dict  # taus and, per method, point/low/high arrays
    seed: int
    reps: int
    window: float
    metrics: tuple[str, ...]
    unit: str  # stats.score_unit of the scored tasks: what every aggregate, axis and caption is in
    notes: list[str] = field(default_factory=list)
    frames: tuple[int, int] | None = None  # scored env-frame interval; None: the last `window`
    coverage: list[dict] = field(default_factory=list)  # coverage_of: each method's tasks, seeds, frames
    summary: str = "window"  # runscore: how each run became one score

    @property
    def definition(self) -> str:
        """The sentence saying how each run's score was made (printed beside every table)."""
        return runscore.definition(self.summary, self.window, self.frames)

    @property
    def reference(self) -> str:
        return self.methods[0]

    @property
    def others(self) -> list[str]:
        return self.methods[1:]

    @property
    def name(self) -> str:
        """Default output folder name: the task (or '<n>tasks') and the methods, reference first,
        as one plain path component (task and method labels can come from a run's config.yaml)."""
        scope = self.tasks[0] if len(self.tasks) == 1 else f"{len(self.tasks)}tasks"
        return confine.safe_component(f"{scope}_{self.reference}_vs_{'_'.join(self.others)}", "comparison")


def compare(
    groups: Sequence[Sequence[str] | str],
    names: Sequence[str] | None = None,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
    metrics: Sequence[str] = stats.METRICS,
    window: float = DEFAULT_WINDOW,
    progress: bool = False,
    power_delta: float | None = None,
    cache: bool | str | Path | None = True,
    frames: tuple[int, int] | None = None,
    power_max_seeds: int = DEFAULT_MAX_SEEDS,
    keys: foreign.KeyMap = foreign.DEFAULT,
    summary: str = runscore.DEFAULT,
) -> CompareResult:
    """Compare the methods whose runs lie under each group of paths (the first group is the
    reference); raises IngestError / CompareError on input that cannot work.

    Each run's score is its mean episode score over the last `window` of its own frames, or,
    with `frames` (start, end), over the episodes ending in that env-frame interval, the same
    for every run (for example the frames after a dynamics shift). `keys` says where TensorBoard
    runs and CSV exports hold the score and the step (analysis/foreign.py). `summary` says how
    a run becomes one score (analysis/runscore.py: window, last or max)."""
    groups = [[g] if isinstance(g, str) else list(g) for g in groups]
    _check_options(groups, names, metrics, reps, window, power_delta)
    try:
        grid = stats.seed_grid(power_max_seeds)
    except ValueError as error:
        raise CompareError(str(error)) from None
    if frames is not None:
        try:
            frames = stats.check_frames(frames)
        except ValueError as error:
            raise CompareError(str(error)) from None
    labels, found = [], []
    for i, paths in enumerate(groups):
        found.append(ingest.discover(paths, None if names is None else [names[i]] * len(paths)))
        labels.append(_group_label(found[-1], i))
    repeated = sorted({m for m in labels if labels.count(m) > 1})
    if repeated:
        raise CompareError(f"method {repeated[0]!r} is given twice; pass distinct folders or --names a,b,...")
    ingest.one_method_per_run(dict(zip(labels, found)))
    runs = [run for group in found for run in group]
    runs, copy_notes = ingest.without_copies(ingest.with_unique_names(runs))
    data = ingest.ingest(runs, metric_keys=COMPARE_METRIC_KEYS, progress=progress, cache=cache, keys=keys)
    data, cut_notes = equal_frames(data)
    try:
        stats.check_magnitude(data.scores, {r.name: r.path for r in runs})
    except ValueError as error:
        raise CompareError(str(error)) from None
    try:
        final = runscore.run_scores(
            data.scores, summary, window, frames, runs, ingest.last_steps(data.scores, data.metrics)
        )
    except ValueError as error:
        raise CompareError(str(error)) from None
    tasks, notes = _shared_tasks(final, labels)
    notes = copy_notes + cut_notes + notes
    coverage = coverage_of(data, labels, tasks)
    normalizations = final.filter(pl.col("task").is_in(tasks))["normalization"].unique().to_list()
    unit = stats.score_unit(normalizations)
    metrics, dropped_og = _metrics_for(metrics, normalizations)
    notes += dropped_og
    notes += stats.fallback_notes(final, window) if frames is None else stats.interval_notes(final, frames)
    matrices = {}
    for method in labels:
        matrices[method], dropped = stats.score_matrix(final, method, tasks)
        notes += dropped
        _need_two_seeds(final, method, tasks, matrices[method].shape[0])
    aggregate = _aggregate_table(matrices, tasks, metrics, reps, seed, progress)
    reference = labels[0]
    poi = _poi_table(matrices, reference, tasks, reps, seed)
    power = {m: _power(matrices[reference], matrices[m], power_delta, seed, grid) for m in labels[1:]}
    differences = {m: stats.iqm_difference_test(matrices[m], matrices[reference], reps, seed) for m in labels[1:]}
    curves = _curves(data.scores, final, labels, tasks, min(reps, CURVE_REPS), seed)
    profiles = _profiles(matrices, min(reps, CURVE_REPS), seed)
    return CompareResult(
        labels,
        data,
        final,
        tasks,
        aggregate,
        poi,
        power,
        differences,
        curves,
        profiles,
        seed,
        reps,
        window,
        tuple(metrics),
        unit,
        notes,
        frames,
        coverage,
        summary,
    )


def coverage_of(data: ingest.Ingested, methods: list[str], tasks: list[str]) -> list[dict]:
    """Per method: how many tasks it has in all, and on the compared `tasks` its runs, seeds
    per task (fewest, most) and last env frame (lowest, highest), as scored (after `equal_frames`)."""
    ends = dict(
        ingest.last_steps(data.scores, data.metrics).select(pl.col("run").cast(pl.String), "last_step").iter_rows()
    )
    out = []
    for method in methods:
        mine = [r for r in data.runs if r.method == method]
        runs = [r for r in mine if r.task in tasks]
        per_task = {}
        for r in runs:
            per_task.setdefault(r.task, set()).add(r.seed)
        last = [ends[r.name] for r in runs if r.name in ends]
        out.append(
            {
                "method": method,
                "tasks_in_all": len({r.task for r in mine}),
                "tasks": len(per_task),
                "runs": len(runs),
                "seeds_per_task": [min(map(len, per_task.values())), max(map(len, per_task.values()))],
                "last_frame": [min(last), max(last)] if last else None,
            }
        )
    return out


def coverage_sentences(result: CompareResult) -> list[str]:
    """One line per method: which tasks, seeds and env frames it brings to the comparison."""
    out = []
    for c in result.coverage:
        seeds = (
            "{} to {}".format(*c["seeds_per_task"])
            if c["seeds_per_task"][0] != c["seeds_per_task"][1]
            else str(c["seeds_per_task"][0])
        )
        frames = (
            "no episodes" if c["last_frame"] is None else "runs end at {:,} to {:,} env frames".format(*c["last_frame"])
        )
        also = c["tasks_in_all"] - c["tasks"]
        more = f" (and {also} task(s) not compared)" if also else ""
        out.append(
            f"{c['method']}: {c['runs']} runs on {c['tasks']} compared task(s){more}, {seeds} seed(s) per "
            f"task, {frames}"
        )
    return out


def equal_frames(data: ingest.Ingested) -> tuple[ingest.Ingested, list[str]]:
    """Published runs cut, task by task, at the last env frame the other runs of that task
    reached, so both sides are scored at equal frames; one note per task cut. Unchanged when
    every run, or none, is published."""
    shipped = {r.name for r in data.runs if published.owns(r.path)}
    if not shipped or len(shipped) == len(data.runs):
        return data, []
    ends = ingest.last_steps(data.scores, data.metrics).with_columns(pl.col(pl.Categorical).cast(pl.String))
    own = ends.filter(~pl.col("run").is_in(list(shipped))).group_by("task").agg(pl.col("last_step").max())
    limits = dict(own.iter_rows())
    scores = data.scores.with_columns(
        pl.col("task").cast(pl.String).replace_strict(limits, default=None, return_dtype=pl.Int64).alias("_limit")
    )
    keep = (
        ~pl.col("run").cast(pl.String).is_in(list(shipped))
        | pl.col("_limit").is_null()
        | (pl.col("step") <= pl.col("_limit"))
    )
    cut = scores.filter(keep).drop("_limit")
    problems = data.problems.filter(~pl.col("problem").str.starts_with("shorter run"))  # again, on the cut runs
    problems = pl.concat(
        [problems, pl.DataFrame(ingest.short_runs(data.runs, cut, data.metrics), schema=ingest.PROBLEM_SCHEMA)]
    )
    notes = [
        f"published runs of {task} cut at {end:,} env frames, the last frame the compared runs of it "
        "reached (equal frames)"
        for task, end in sorted(limits.items())
        if task in set(data.scores.filter(pl.col("run").is_in(list(shipped)))["task"].cast(pl.String))
    ]
    return ingest.Ingested(data.runs, cut, data.metrics, problems), notes


def _metrics_for(metrics: Sequence[str], normalizations: list[str]) -> tuple[list[str], list[str]]:
    """The metrics that mean something on these scores: no optimality gap on raw scores."""
    if "og" not in metrics or set(normalizations) == {"human"}:
        return list(metrics), []
    kept = [m for m in metrics if m != "og"]
    if not kept:
        raise CompareError(f"--metric og: {stats.OG_NEEDS}; ask for iqm, mean or median")
    return kept, [f"optimality gap: {stats.OG_NEEDS}"]


def _check_options(groups, names, metrics, reps, window, power_delta) -> None:
    """Options that cannot work, named as the command line spells them."""
    if len(groups) < 2:
        raise CompareError(f"got {len(groups)} method(s); expected a reference and at least one other")
    unknown = [m for m in metrics if m not in stats.METRICS]
    if unknown or not metrics:
        raise CompareError(
            f"--metric: unknown metric {(unknown or [''])[0]!r}; expected some of {','.join(stats.METRICS)}"
        )
    if names is not None and len(names) != len(groups):
        raise CompareError(f"--names has {len(names)} label(s) for {len(groups)} methods; expected one per method")
    if not 100 <= reps <= defaults.MAX_REPS:
        raise CompareError(f"--reps {reps}: expected 100 .. {defaults.MAX_REPS:,} bootstrap replications")
    if not 0 < window <= 1:
        raise CompareError(f"--window {window}: expected a fraction in (0, 1]")
    if power_delta is not None and not (np.isfinite(power_delta) and power_delta > 0):
        raise CompareError(f"--power-delta {power_delta}: expected a positive IQM difference")


def _group_label(runs: list[ingest.Run], index: int) -> str:
    methods = sorted({r.method for r in runs})
    if len(methods) != 1:
        raise CompareError(
            f"the runs of method argument {index + 1} have methods {', '.join(methods)}; expected one (use --names)"
        )
    return methods[0]


def _need_two_seeds(final: pl.DataFrame, method: str, tasks: list[str], usable: int) -> None:
    """CIs resample runs: one run per task gives none. Say which task is short and why."""
    if usable >= 2:
        return
    for task in tasks:
        rows = final.filter((pl.col("method") == method) & (pl.col("task") == task))
        scored = rows.filter(pl.col("normalized").is_not_null()).height
        if scored < 2:
            empty = rows.height - scored
            why = f" ({empty} more run(s) have no episode in the scored frames; see the notes)" if empty else ""
            raise CompareError(
                f"method {method!r} has {scored} run(s) with episode scores on {task}{why}; "
                "the bootstrap CIs need at least 2 seeds per method and task: add runs of "
                "more seeds"
            )


def _shared_tasks(final: pl.DataFrame, methods: list[str]) -> tuple[list[str], list[str]]:
    scored = final.filter(pl.col("normalized").is_not_null())
    per_method = {m: set(scored.filter(pl.col("method") == m)["task"]) for m in methods}
    tasks = sorted(set.intersection(*per_method.values()))
    notes = [
        f"{m} has scored runs of {len(only)} task(s) not every method has, left out of the comparison: "
        + ", ".join(t.removeprefix(atari.PREFIX) for t in only)
        for m in methods
        if (only := sorted(per_method[m] - set(tasks)))
    ]
    if not tasks:
        raise CompareError(f"no task has scored runs of every method ({', '.join(map(repr, methods))})")
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
    schema = {
        "scope": pl.String,
        "method": pl.String,
        "metric": pl.String,
        "point": pl.Float64,
        "low": pl.Float64,
        "high": pl.Float64,
        "runs": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def _poi_table(matrices: dict[str, np.ndarray], reference: str, tasks, reps, seed) -> pl.DataFrame:
    rows = []
    for method in list(matrices)[1:]:
        for scope in tasks + [OVERALL]:
            cols = slice(None) if scope == OVERALL else [tasks.index(scope)]
            est = stats.poi_estimate(matrices[method][:, cols], matrices[reference][:, cols], reps, seed)
            rows.append((scope, method, est.point, est.low, est.high))
    return pl.DataFrame(
        rows,
        schema={"scope": pl.String, "method": pl.String, "point": pl.Float64, "low": pl.Float64, "high": pl.Float64},
        orient="row",
    )


def _power(base, other, delta, seed, grid) -> dict | None:
    """Seeds needed to detect `delta` (default: the observed IQM difference); None when that is zero."""
    if delta is None:
        delta = abs(float(stats.iqm(other) - stats.iqm(base)))
    if delta <= 1e-9:
        return None
    return stats.seeds_needed(base, other, delta, seed=seed, grid=grid)


def _curves(scores, final, methods, tasks, reps, seed) -> dict:
    """Sample-efficiency curves (analysis/curves.py): runs count only while they last."""
    return curves.efficiency(scores, final, methods, tasks, reps, seed)


def _profiles(matrices, reps, seed) -> dict:
    top = max(float(np.max(m)) for m in matrices.values())
    taus = np.linspace(min(0.0, min(float(np.min(m)) for m in matrices.values())), max(top * 1.05, 1e-6), 61)
    return {"taus": taus, **{m: stats.performance_profile(x, taus, reps, seed) for m, x in matrices.items()}}


# ---------------------------------------------------------------- what is shown


def table_rows(result: CompareResult) -> tuple[list[str], list[list[str]]]:
    """The aggregate table, as the terminal and the report both show it: one row per scope
    (each task, then all tasks) and method, every metric as 'point [low, high]', and
    P(method > reference) on the other methods' rows."""
    columns = ["task", "method"] + [stats.METRIC_TITLES[m] for m in result.metrics] + [f"P(> {result.reference})"]
    agg = {(r["scope"], r["method"], r["metric"]): r for r in result.aggregate.iter_rows(named=True)}
    poi = {(r["scope"], r["method"]): r for r in result.poi.iter_rows(named=True)}
    rows = []
    for scope in result.tasks + [OVERALL]:
        for method in result.methods:
            cells = [_interval(agg[scope, method, m]) for m in result.metrics]
            n = agg[scope, method, result.metrics[0]]["runs"]
            rows.append(
                [
                    scope.removeprefix("atari100k_"),
                    f"{method} (n={n})",
                    *cells,
                    _interval(poi[scope, method]) if method != result.reference else "",
                ]
            )
    return columns, rows


def _interval(row: dict) -> str:
    return f"{row['point']:.3f} [{row['low']:.3f}, {row['high']:.3f}]"


def power_sentences(result: CompareResult) -> list[str]:
    """One seeds-needed statement per method against the reference."""
    out = []
    for method, power in result.power.items():
        if power is None:
            out.append(
                f"power, {method} vs {result.reference}: not computed (the observed IQM difference is zero; "
                "give --power-delta to size a study)"
            )
            continue
        n = power["seeds_needed"]
        needed = f"{n} seeds per method" if n else f"more than {power['max_seeds']} seeds per method"
        few = power.get("observed_runs", stats.FEW_RUNS_FOR_POWER)
        caveat = (
            f"; the spread comes from only {few} runs per method, so this figure is a rough guide"
            if few < stats.FEW_RUNS_FOR_POWER
            else ""
        )
        out.append(
            f"power, {method} vs {result.reference}: to detect an IQM difference of {power['delta']:.3f} "
            f"at {power['power']:.0%} power (alpha {power['alpha']}, {power['sims']:,} simulated "
            f"studies from the observed spread): {needed}{caveat}"
        )
    return out


def difference_sentences(result: CompareResult) -> list[str]:
    """Per other method: its IQM minus the reference's, with the CI and the test's p-value."""
    out = []
    for method, test in result.differences.items():
        out.append(
            f"IQM difference, {method} - {result.reference}: {test['point']:+.3f} "
            f"[{test['low']:+.3f}, {test['high']:+.3f}] (95% stratified bootstrap CI), two-sided "
            f"p = {test['p_value']:.3f} against no difference ({test['reps']:,} studies from the pooled "
            f"spread, {test['runs'][0]} and {test['runs'][1]} runs)"
        )
    return out


def bootstrap_sentence(result: CompareResult) -> str:
    return (
        f"bootstrap: seed {result.seed}, {result.reps:,} reps (stratified over runs, percentile CIs); "
        + result.definition
    )


FIGURE_TITLES = {
    "aggregates": "Aggregate metrics",
    "probability_of_improvement": "Probability of improvement",
    "sample_efficiency": "IQM learning curves (band: 95% stratified bootstrap CI; below: runs per "
    "task at each point, fewer where runs end)",
    "performance_profile": "Performance profiles",
    "score_curves": "Raw episode scores (on Atari100k against the random and human scores)",
    "final_scores": "Final score per run",
}


def figures_of(result: CompareResult, smooth: str = curves.DEFAULT_SMOOTH, x: str = "frames") -> dict[str, object]:
    """Every figure of the comparison (matplotlib figures, not yet saved), by file stem; `smooth`
    is the score curves' display smoothing (curves.smooth), never the statistics'; `x` the
    curves' x axis (curves.x_axis: env frames, or agent steps)."""
    axis = curves.x_axis(result.data.runs, x)
    colors = figures.method_colors(result.methods)
    shared = pl.col("task").is_in(result.tasks)
    return {
        "aggregates": figures.plot_aggregates(
            result.aggregate.filter(pl.col("scope") == OVERALL), colors, result.reps, result.seed, result.unit
        ),
        "probability_of_improvement": figures.plot_poi(result.poi, result.reference),
        "sample_efficiency": figures.plot_curves(result.curves, colors, len(result.tasks), result.unit, axis),
        "performance_profile": figures.plot_profiles(result.profiles, colors, result.unit),
        "score_curves": figures.plot_score_curves(result.data.scores.filter(shared), colors, smooth, x=axis),
        "final_scores": figures.plot_final_scores(result.final.filter(shared), colors, result.unit),
    }


# ---------------------------------------------------------------- outputs


def summary(result: CompareResult) -> dict:
    """Everything a report needs, JSON-safe (NaN -> null)."""
    safe = ingest.finite_or_none
    return {
        "methods": result.methods,
        "reference": result.reference,
        "tasks": result.tasks,
        "seed": result.seed,
        "reps": result.reps,
        "window": result.window,
        "frames": None if result.frames is None else list(result.frames),
        "ci": stats.CI_SIZE,
        "metrics": list(result.metrics),
        "score_unit": result.unit,
        "summary": result.summary,
        "score_definition": result.definition,
        "aggregate": [
            {k: safe(v) if isinstance(v, float) else v for k, v in row.items()} for row in result.aggregate.to_dicts()
        ],
        "probability_of_improvement": result.poi.to_dicts(),
        "power": result.power,
        "iqm_difference": {m: {**t, "runs": list(t["runs"])} for m, t in result.differences.items()},
        "runs": [
            {"name": r.name, "task": r.task, "method": r.method, "seed": r.seed, "path": remote.shown(r.path)}
            for r in result.data.runs
        ],
        "problems": result.data.problems.to_dicts(),
        "coverage": result.coverage,
        "notes": result.notes,
    }


def write_outputs(result: CompareResult, out: Path, rendered: dict[str, figures.Rendered]) -> dict[str, Path]:
    """summary.json and per_run.csv under `out`, each rendered figure as figures/<stem>.png and .pdf."""
    out = Path(out)
    written = figures.write_rendered(rendered, out / "figures", within=out)
    safefile.write(out / "summary.json", json.dumps(summary(result), indent=2, default=str))
    with safefile.replacing(out / "per_run.csv") as f:
        result.final.write_csv(f)
    written["summary.json"], written["per_run.csv"] = out / "summary.json", out / "per_run.csv"
    written.update(tables.write(result, out, result.definition))
    return written
