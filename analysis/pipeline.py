"""The one pipeline behind `dreamer-report compare` and `dreamer-report report`.

`run` compares the methods (`compare.compare`), draws every figure once in memory, writes
them and the tables under one layout, and (unless asked not to) builds and writes the report
from the same figures, so the statistics are computed once and both commands write the same
files with the same defaults:

    OUT/report.html, OUT/report.pdf        the report (self-contained HTML, and its PDF)
    OUT/summary.json, OUT/per_run.csv      the numbers behind it
    OUT/tables/<name>.tex, .md and .csv    the aggregate and per-task tables (analysis/tables.py)
    OUT/figures/<stem>.png and .pdf        every figure of the report
    OUT/openloop/<reference>_vs_<method>/  open-loop panels, mp4 and error-vs-horizon per method

OUT defaults to reports/<task>_<reference>_vs_<methods>/.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from analysis import compare, confine, curves, figures, foreign, report, stats

REPORTS = Path("reports")


@dataclass
class Outcome:
    result: compare.CompareResult
    folder: Path
    written: dict[str, Path]  # file name -> path of every figure and table written
    report: dict | None  # report.write's {'html', 'pdf', 'pages'}, None with make_report False
    labelled: bool  # whether any README labels the runs


def run(
    groups: Sequence[Sequence[str]],
    out: str | Path | None = None,
    names: Sequence[str] | None = None,
    reps: int = compare.DEFAULT_REPS,
    seed: int = 0,
    metrics: Sequence[str] = stats.METRICS,
    window: float = compare.DEFAULT_WINDOW,
    power_delta: float | None = None,
    make_report: bool = True,
    openloop_source: str = "auto",
    progress: bool = False,
    cache: bool | str | Path | None = True,
    frames: tuple[int, int] | None = None,
    power_max_seeds: int = compare.DEFAULT_MAX_SEEDS,
    keys: foreign.KeyMap = foreign.DEFAULT,
    summary: str = "window",
    smooth: str = curves.DEFAULT_SMOOTH,
    x: str = "frames",
) -> Outcome:
    """Compare, write figures and tables, and write the report; raises what `compare` raises."""

    groups = [[g] if isinstance(g, str) else list(g) for g in groups]
    curves.parse_smooth(smooth)  # a bad --smooth or --x fails before the work
    if x not in curves.X_AXES:
        raise ValueError(f"--x {x!r}: expected one of {', '.join(curves.X_AXES)}")
    result = compare.compare(
        groups,
        names=names,
        reps=reps,
        seed=seed,
        metrics=metrics,
        window=window,
        progress=progress,
        power_delta=power_delta,
        cache=cache,
        frames=frames,
        power_max_seeds=power_max_seeds,
        keys=keys,
        summary=summary,
    )
    folder = Path(out) if out else REPORTS / result.name
    confine.refuse_inside(folder, [run.path for run in result.data.runs], "--out" if out else "the report folder")
    rendered = {stem: figures.render(fig) for stem, fig in compare.figures_of(result, smooth, x).items()}
    written = compare.write_outputs(result, folder, rendered)
    if not make_report:
        return Outcome(result, folder, written, None, True)
    data, extra = report.build(result, rendered, folder, groups, openloop_source)
    written.update(figures.write_rendered(extra, folder / "figures", within=folder))
    labelled = any(block.kind == "label" for section in data.sections for block in section.blocks)
    return Outcome(result, folder, written, report.write(data, folder), labelled)
