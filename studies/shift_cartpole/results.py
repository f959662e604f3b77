"""Every number the shift study's write-up quotes, computed from its run files.

    python -m studies.shift_cartpole.results                  # writes studies/shift_cartpole/results.md
    python -m studies.shift_cartpole.results --root artifacts --out results.md

`make results` runs it after `dreamer-report results`. It reads the pilot's runs
(`artifacts/shift_cartpole/gym_CartPole-v1_<arm>/`) and the pre-registered study's
(`artifacts/shift_powered/`) through the toolkit (`analysis`), and returns the Markdown of
`results.md` beside this file: the pilot's facts, the plan's seeds per arm and power, and the
study's primary analysis once every planned run is in. The write-up (README.md) links to its
sections instead of retyping figures; a test regenerates the file and fails on any difference.
Deterministic: fixed bootstrap seed, the same reps as `make demo`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from analysis import compare, ingest, mask, stats
from analysis.results import REPS, SEED, Section, _num, _problems, _read, _steps, _values, slug, table, write
from studies.shift_cartpole import preregistered as plan

HERE = Path(__file__).parent
ARMS = plan.ARMS
WINDOWS = {"before the shift": (6_000, 9_500), "after the shift": plan.WINDOW, "late recovery": (11_000, 13_000)}
PILOT = "shift_cartpole"  # <root>/shift_cartpole/gym_CartPole-v1_<arm>/
STUDY = Path(plan.SWEEP.root).name  # <root>/shift_powered/shift_cartpole_<arm>/seed<k>/ (the sweep's root)
POWER_MAX_SEEDS = 1_000  # the plan's seeds-per-arm search goes this far


def pilot_folders(root: Path) -> dict[str, Path]:
    return {arm: Path(root) / PILOT / f"gym_CartPole-v1_{arm}" for arm in ARMS}


def _run_rows(datas: dict[str, ingest.Ingested], shift: int) -> list[list[str]]:
    rows = []
    for arm, data in datas.items():
        for run in data.runs:
            steps, dyn = _steps(data, run.name, "train/loss/dyn"), _values(data, run.name, "train/loss/dyn")
            before = dyn[(steps > shift - 1_500) & (steps <= shift)].mean()
            peak = dyn[steps > shift].max()
            s_steps = _steps(data, run.name, "episode/score", "scores")
            scores = _values(data, run.name, "episode/score", "scores")

            def window(lo, hi, scores=scores, s_steps=s_steps):
                inside = scores[(s_steps > lo) & (s_steps <= hi)]
                return _num(inside.mean()) if inside.size else "-"

            rows.append(
                [
                    arm,
                    run.seed,
                    f"{before:.3f}",
                    f"{peak:.3f}",
                    f"{peak / before - 1:+.0%}",
                    window(shift - 2_000, shift),
                    window(shift, shift + 1_500),
                    window(11_000, 13_000),
                ]
            )
    return rows


def _interval(row: dict) -> str:
    return f"{row['point']:.1f} [{row['low']:.1f}, {row['high']:.1f}]"


def _overall(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(pl.col("scope") == stats.OVERALL)


def _scores(folders: dict[str, Path]) -> tuple[list[list[str]], list[str], dict[str, float]]:
    groups = [[str(folders[arm])] for arm in ARMS]
    rows, lines, after = [], [], {}
    for name, frames in WINDOWS.items():
        result = compare.compare(groups, reps=REPS, seed=SEED, metrics=("iqm",), frames=frames, cache=False)
        iqm = {r["method"]: r for r in _overall(result.aggregate).iter_rows(named=True)}
        rows.append([f"{name} ({frames[0]:,}, {frames[1]:,}]", *(_interval(iqm[arm]) for arm in ARMS)])
        lines.append(
            f"- {name}: "
            + ", ".join(
                f"P({r['method']} > baseline) {r['point']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"
                for r in _overall(result.poi).iter_rows(named=True)
            )
        )
        if name != "after the shift":
            continue
        after = {arm: iqm[arm]["point"] for arm in ARMS}
        lines += [f"  - {sentence}" for sentence in compare.difference_sentences(result)]
        lines += [f"  - {sentence}" for sentence in compare.power_sentences(result)]
        pair = compare.compare(
            [groups[2], groups[1]], reps=REPS, seed=SEED, metrics=("iqm",), frames=frames, cache=False
        )
        lines.append(
            "  - "
            + "; ".join(
                f"P(adapt > placebo) {r['point']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"
                for r in _overall(pair.poi).iter_rows(named=True)
            )
        )
        lines += [f"  - {sentence}" for sentence in compare.difference_sentences(pair)]
        lines += [f"  - {sentence}" for sentence in compare.power_sentences(pair)]
    return rows, lines, after


def _range(values: pl.Series) -> str:
    return f"{values.min():.1%}-{values.max():.1%}"


def pilot(root: Path) -> Section:
    """The pilot: loss/dyn and scores per run, the mask, the arms' IQMs."""
    folders = pilot_folders(root)
    datas = {arm: _read(folder) for arm, folder in folders.items()}
    summaries = {arm: mask.summarize(data) for arm, data in datas.items()}
    adapt, placebo = summaries["adapt"], summaries["placebo"]
    shift_at = int(adapt["shift_step"][0])
    mask_rows = [
        [
            r["seed"],
            f"{r['active_before']:.1%}",
            f"{r['active_after']:.1%}",
            f"{r['first_active_after']:,}" if r["first_active_after"] is not None else "never",
        ]
        for r in adapt.sort("seed").iter_rows(named=True)
    ]
    never = [arm for arm in ("baseline", "fixed") if summaries[arm]["frac_active"].max() == 0.0]
    fired_after = int((adapt["active_after"] > 0).sum())
    fired_before = int((adapt["active_before"] > 0).sum())
    score_rows, poi_lines, _ = _scores(folders)
    return Section(
        "Pilot",
        [
            f"`artifacts/{PILOT}/gym_CartPole-v1_<arm>/`, shift at env step {shift_at:,}: "
            + ", ".join(f"{arm} {_problems(datas[arm])}" for arm in ARMS)
            + ".",
            "",
            f"Per run: `train/loss/dyn` mean over the 1,500 frames before the shift ({shift_at - 1_500:,}, "
            f"{shift_at:,}], its peak after it and the rise; mean episode score (raw) over the episodes ending in "
            f"({shift_at - 2_000:,}, {shift_at:,}], ({shift_at:,}, {shift_at + 1_500:,}] and (11,000, 13,000].",
            "",
            *table(
                [
                    "arm",
                    "seed",
                    "loss/dyn before",
                    "peak after",
                    "rise",
                    "score before",
                    "score just after",
                    "score late",
                ],
                _run_rows(datas, shift_at),
            ),
            "",
            "The mask in the adapt runs (`dreamer-report mask`; fractions of updates, weighted by each log "
            "line's updates):",
            "",
            *table(
                ["adapt seed", "on before the shift", "on after it", "first logged interval on after it ended at"],
                mask_rows,
            ),
            "",
            f"Adapt: the mask on after the shift in {fired_after} of {adapt.height} runs, at "
            f"{_range(adapt['active_after'])} of the updates after it; on before the shift in {fired_before} of "
            f"{adapt.height} runs. Placebo: on at {_range(placebo['active_before'])} of the updates before the shift "
            f"and {_range(placebo['active_after'])} after. Never applied the mask: {', '.join(never) or 'none'}.",
            "",
            f"Scores (`dreamer-report compare ... --frames START:END`): IQM over the runs of each arm of "
            f"the raw CartPole score, 95% stratified bootstrap CI ({REPS:,} reps, seed {SEED}, as `make demo`); "
            "a run's score is its mean episode score over the episodes ending in the window.",
            "",
            *table(["window (env frames)", *ARMS], score_rows),
            "",
            "Probability of improvement and seeds needed (same bootstrap):",
            "",
            *poi_lines,
        ],
    )


def seeds_per_arm(root: Path) -> Section:
    """The plan's seeds-per-arm answer: the pilot's spread, the smallest difference of interest."""
    folders = pilot_folders(root)
    lines = [
        f"What the plan's choice of seeds rests on: `dreamer-report compare <reference> adapt --frames "
        f"{plan.WINDOW[0]}:{plan.WINDOW[1]} --metric iqm --power-delta {plan.DELTA:g} --power-max-seeds "
        f"{POWER_MAX_SEEDS}` on the pilot's runs:",
        "",
    ]
    for method, reference in plan.PRIMARY:
        result = compare.compare(
            [[str(folders[reference])], [str(folders[method])]],
            metrics=("iqm",),
            frames=plan.WINDOW,
            power_delta=plan.DELTA,
            power_max_seeds=POWER_MAX_SEEDS,
            seed=SEED,
            cache=False,
        )
        lines += [f"- {sentence}" for sentence in compare.power_sentences(result)]
        if reference == "baseline":  # the IQMs' point estimates, as in the pilot's table
            level = _overall(result.aggregate).filter(pl.col("method") == "baseline")["point"][0]
    lines += [
        "",
        f"The smallest difference of interest, {plan.DELTA:g}, is {plan.DELTA / level:.0%} of the "
        f"pilot baseline's IQM after the shift ({level:.1f}).",
    ]
    return Section("Seeds per arm", lines)


def study(root: Path) -> Section:
    """The pre-registered study: its design's power from the pilot, which runs are in, and, once
    all are, the primary analysis (preregistered.py)."""
    power_rows = [
        [f"{r['method']} vs {r['reference']}", f"{r['alpha']:g}", f"{r['power']:.3f}"]
        for r in plan.plan_power(pilot_folders(root))
    ]
    lines = [
        f'Plan: README.md, "Pre-registered study": {len(plan.SEEDS)} seeds per arm, score window '
        f"({plan.WINDOW[0]:,}, {plan.WINDOW[1]:,}], smallest difference of interest {plan.DELTA:g} (IQM, raw score).",
        "",
        f"Power of each primary comparison at {len(plan.SEEDS)} seeds per arm, simulated from the pilot's "
        f"runs ({plan.POWER_SIMS:,} studies, seed {plan.SEED}; Holm's first step tests at alpha "
        f"{plan.ALPHA / 2:g}):",
        "",
        *table(["comparison", "alpha", "power"], power_rows),
        "",
    ]
    folder = Path(root) / STUDY
    state = plan.status(folder)
    done = sum(len(v) for v in state.complete.values())
    lines.append(
        f"Runs in `artifacts/{STUDY}/`: {done} of {len(plan.SEEDS) * len(ARMS)} complete ("
        + ", ".join(f"{arm} {len(state.complete[arm])}" for arm in ARMS)
        + f"), {len(state.incomplete)} incomplete."
    )
    rows = plan.primary(folder, state)
    if rows is None:
        lines += [
            "",
            "The primary analysis runs when every planned run is in and complete (the plan "
            "allows no interim look); until then nothing is compared.",
        ]
        return Section("Pre-registered study", lines)
    lines += [
        "",
        *table(
            ["comparison", "IQM difference [95% CI]", "p", "p (Holm)", "P(improvement) [95% CI]", "decision"],
            [
                [
                    f"{r['method']} - {r['reference']}",
                    f"{r['point']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}]",
                    f"{r['p_value']:.4f}",
                    f"{r['p_holm']:.4f}",
                    f"{r['poi'][0]:.3f} [{r['poi'][1]:.3f}, {r['poi'][2]:.3f}]",
                    r["decision"],
                ]
                for r in rows
            ],
        ),
    ]
    lines += [f"- note ({r['method']} vs {r['reference']}): {note}" for r in rows for note in r["notes"]]
    return Section("Pre-registered study", lines)


HEADER = [
    "# The dynamics-shift study: every number",
    "",
    "Generated by `make results` (`python -m studies.shift_cartpole.results`) from the run files in "
    "`artifacts/`; do not edit by hand. A test regenerates it and fails on any difference. How the runs "
    "were made and how to read them: [README.md](README.md).",
]


def build(root: Path) -> str:
    """results.md's text from the runs under `root` (the repository's artifacts/)."""
    root = Path(root)
    parts = [pilot(root), seeds_per_arm(root), study(root)]
    lines = [*HEADER, "", *(f"- [{s.title}](#{slug(s.title)})" for s in parts)]
    for s in parts:
        lines += ["", f"## {s.title}", "", *s.lines]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m studies.shift_cartpole.results",
        description="Write the shift study's results.md from its run files.",
    )
    parser.add_argument("--root", default="artifacts", help="the folder of shipped run sets")
    parser.add_argument("--out", default=str(HERE / "results.md"), help="where the Markdown goes")
    args = parser.parse_args(argv)
    try:
        text = build(Path(args.root))
    except (ingest.IngestError, ValueError, OSError) as error:
        print(f"error: {str(error).splitlines()[0] if str(error) else type(error).__name__}", file=sys.stderr)
        return 2
    print(f"wrote {write(text, Path(args.out))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
