"""The pre-registered dynamics-shift study's analysis, exactly as its plan fixes it.

The plan is README.md beside this file, "Pre-registered study" (committed before any of
its runs): 64 seeds per arm of `sweep.yaml` (beside this file); per run, the mean episode score
over the episodes ending in env frames (9,500, 13,000]; per arm, the IQM. Two primary
comparisons, adapt against placebo and adapt against baseline: the IQM difference with its
95% stratified bootstrap CI, the test's two-sided p-value (`stats.iqm_difference_test`),
Holm-adjusted over the two, decided at 0.05; the probability of improvement with its CI.

`plan_power(pilot)` is the power of that design from the pilot's spread. `primary(study)`
refuses to compare anything until every planned run is in and complete (no interim look),
then returns the comparisons. Both are printed by `results.py` into results.md (this folder).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from analysis import compare, ingest, stats
from sweep import spec

SWEEP = spec.load(Path(__file__).parent / "sweep.yaml")  # the study's runs, as the sweep makes them
ARMS = tuple(SWEEP.arms)  # baseline, adapt, placebo, fixed
SEEDS = SWEEP.seeds  # 1000-1063
STEPS = SWEEP.steps  # agent steps of a complete run (CartPole: one env frame each)
WINDOW = (9_500, 13_000)
DELTA = 10.0  # the smallest IQM difference of interest (raw CartPole score)
ALPHA = 0.05  # familywise, over the two primary comparisons (Holm)
PRIMARY = (("adapt", "placebo"), ("adapt", "baseline"))  # (method, reference): method - reference
REPS = 50_000
SEED = 0
POWER_SIMS = 2_000
(TASK_FOLDER,) = SWEEP.tasks  # <study>/shift_cartpole_<arm>/seed<k>/


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: the k-th smallest (k from 0)
    times (m - k), made non-decreasing along that order and capped at 1."""
    order = np.argsort(p_values, kind="stable")
    m, running, adjusted = len(p_values), 0.0, [0.0] * len(p_values)
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p_values[i]))
        adjusted[i] = running
    return adjusted


def plan_power(pilot: dict[str, Path]) -> list[dict]:
    """Power of each primary comparison at the planned seeds, at alpha 0.05 and at Holm's
    first-step 0.025, simulated from the pilot's runs (`pilot`: arm -> its folder)."""
    rows = []
    for method, reference in PRIMARY:
        result = compare.compare(
            [[str(pilot[reference])], [str(pilot[method])]],
            metrics=("iqm",),
            frames=WINDOW,
            reps=1000,
            seed=SEED,
            cache=False,
        )
        base, other = (stats.score_matrix(result.final, arm, result.tasks)[0] for arm in (reference, method))
        for alpha in (ALPHA, ALPHA / 2):
            power = stats.seeds_needed(
                base, other, DELTA, power=1.01, alpha=alpha, sims=POWER_SIMS, grid=(len(SEEDS),), seed=SEED
            )["curve"][0][1]
            rows.append(
                {
                    "method": method,
                    "reference": reference,
                    "alpha": alpha,
                    "power": power,
                    "pilot_runs": int(min(base.shape[0], other.shape[0])),
                }
            )
    return rows


@dataclass
class Status:
    complete: dict[str, list[int]]  # arm -> seeds with a complete run
    incomplete: list[str]  # run dirs found that stopped short of STEPS

    @property
    def ready(self) -> bool:
        return not self.incomplete and all(sorted(self.complete.get(a, [])) == list(SEEDS) for a in ARMS)


def status(study: Path) -> Status:
    """Which planned runs are in and complete (every run dir found, by arm and seed)."""
    complete, incomplete = {arm: [] for arm in ARMS}, []
    folders = [study / f"{TASK_FOLDER}_{arm}" for arm in ARMS if (study / f"{TASK_FOLDER}_{arm}").is_dir()]
    if not folders:
        return Status(complete, incomplete)
    runs = ingest.discover([str(f) for f in folders])
    data = ingest.ingest(runs, cache=False)
    last = dict(ingest.last_steps(data.scores, data.metrics).select("run", "last_step").iter_rows())
    for run in runs:
        if run.method in complete and run.seed in SEEDS and last.get(run.name, 0) >= STEPS:
            complete[run.method].append(run.seed)
        else:
            incomplete.append(str(run.path))
    return Status(complete, sorted(incomplete))


def primary(study: Path, state: Status | None = None) -> list[dict] | None:
    """The two primary comparisons, or None while the study is not complete (`state`: its
    status, when the caller has it already)."""
    if not (state or status(study)).ready:
        return None
    folder = {arm: str(study / f"{TASK_FOLDER}_{arm}") for arm in ARMS}
    rows = []
    for method, reference in PRIMARY:
        result = compare.compare(
            [[folder[reference]], [folder[method]]], metrics=("iqm",), frames=WINDOW, reps=REPS, seed=SEED, cache=False
        )
        poi = result.poi.filter(pl.col("scope") == stats.OVERALL).row(0, named=True)
        rows.append(
            {
                "method": method,
                "reference": reference,
                **result.differences[method],
                "poi": (poi["point"], poi["low"], poi["high"]),
                "notes": result.notes,
            }
        )
    for row, adjusted in zip(rows, holm([r["p_value"] for r in rows])):
        row["p_holm"] = adjusted
        row["decision"] = decision(row["point"], adjusted)
    return rows


def decision(difference: float, p_holm: float) -> str:
    if p_holm >= ALPHA:
        return "no difference detected"
    return "adapt better" if difference > 0 else "adapt worse"
