"""The full report: one self-contained report.html and a report.pdf of the same content.

`collect` gathers everything from the run folders through the library (ingest, stats,
compare, openloop); `render_html` fills the jinja2 template with autoescape on, so names from
the file system always show as text; `write_pdf` turns that HTML into a PDF with weasyprint.
Figures are embedded as base64 PNG and the CSS is inlined: the HTML needs no network.
"""

from __future__ import annotations

import base64
import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path

from analysis import openloop, stats

TEMPLATES = Path(__file__).parent / "templates"
README_NAMES = ("README.md", "README_PRUEBA.md", "README.txt")
PER_RUN_KEYS = ("seed", "logdir")  # config keys that differ from run to run by design
SECTIONS = [("data-label", "Data label"), ("setup", "Setup"), ("aggregate", "Aggregate"),
            ("curves", "Curves"), ("mask", "Mask"), ("openloop", "Open loop"),
            ("per-run", "Per run"), ("problems", "Problems")]


@dataclass
class Table:
    columns: list[str]
    rows: list[list]
    caption: str = ""


@dataclass
class Figure:
    title: str
    png: bytes
    caption: str = ""

    @property
    def png_base64(self) -> str:
        return base64.b64encode(self.png).decode("ascii")


@dataclass
class DataLabel:
    path: str
    text: str


@dataclass
class ReportData:
    """Everything the template shows; each field is plain data, already computed."""

    title: str
    baseline_paths: list[str]
    adapt_paths: list[str]
    labels: list[DataLabel] = field(default_factory=list)
    setup: Table = field(default_factory=lambda: Table([], []))
    setup_note: str = ""
    aggregate: list[Table] = field(default_factory=list)
    aggregate_note: str = ""
    figures: list[Figure] = field(default_factory=list)
    mask_figures: list[Figure] = field(default_factory=list)
    mask_note: str = ""
    mask_table: Table = field(default_factory=lambda: Table([], []))
    openloop_figures: list[Figure] = field(default_factory=list)
    openloop_note: str = ""
    per_run: Table = field(default_factory=lambda: Table([], []))
    problems: Table = field(default_factory=lambda: Table([], []))
    generated: str = field(default_factory=lambda: datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))


# ---- data labels and configs -----------------------------------------------------------


def find_labels(run_paths: list[Path], levels: int = 3) -> list[DataLabel]:
    """READMEs in the run folders' parents (up to `levels` up, stopping at a repository root)."""
    seen, labels = set(), []
    for run in run_paths:
        folder = Path(run).resolve()
        for _ in range(levels):
            folder = folder.parent
            for name in README_NAMES:
                readme = folder / name
                if readme.is_file() and readme not in seen:
                    seen.add(readme)
                    labels.append(DataLabel(_short(readme), readme.read_text(errors="replace")))
            if (folder / "pyproject.toml").exists() or (folder / ".git").exists():
                break
    return labels


def _short(path: Path) -> str:
    """A path relative to the working directory when possible (no machine paths in reports)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(Path(path).name if Path(path).is_absolute() else path)


def read_config(run: Path) -> dict[str, object]:
    """The run's config.yaml flattened to dotted keys ({} when the run has none).

    Read through analysis/runconfig.py (size cap, no YAML aliases); an unsafe or broken file
    becomes one '<unreadable>' entry that names it, so the report still shows the rest.
    """
    from analysis import runconfig

    path = Path(run) / "config.yaml"
    if not path.exists():
        return {}
    try:
        return runconfig.read_flat(path)
    except (runconfig.ConfigError, OSError) as error:
        return {"<unreadable>": str(error).replace(str(path), path.name).splitlines()[0]}


def config_differences(configs: dict[str, list[dict]]) -> Table:
    """Config keys whose values differ between the methods (or within one), per method.

    `configs` maps a method to the flattened configs of its runs. Keys in PER_RUN_KEYS are
    left out: they differ by design.
    """
    methods = list(configs)
    keys = sorted({k for cfgs in configs.values() for cfg in cfgs for k in cfg} - set(PER_RUN_KEYS))
    rows = []
    for key in keys:
        values = {m: sorted({_fmt(cfg.get(key, "(absent)")) for cfg in configs[m]}) for m in methods}
        if len({tuple(v) for v in values.values()}) > 1 or any(len(v) > 1 for v in values.values()):
            rows.append([key] + [" | ".join(values[m]) or "(no config)" for m in methods])
    return Table(["config key"] + methods, rows)


def _fmt(value) -> str:
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


# ---- figures ---------------------------------------------------------------------------


def figure_from_file(path: Path, title: str | None = None, caption: str = "") -> Figure:
    return Figure(title or Path(path).stem.replace("_", " "), Path(path).read_bytes(), caption)


def table_from_records(records: list[dict], caption: str = "", digits: int = 3) -> Table:
    """A list of flat dicts (e.g. from JSON or CSV) as a table; floats rounded for reading."""
    columns = list(dict.fromkeys(k for r in records for k in r))
    rows = [[_round(r.get(c, ""), digits) for c in columns] for r in records]
    return Table(columns, rows, caption)


def _round(value, digits: int):
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 or abs(value) >= 1e5 else f"{value:.{digits}f}"
    return value


# ---- rendering -------------------------------------------------------------------------


def render_html(data: ReportData) -> str:
    """The report as one HTML string: autoescaped, CSS inline, images as base64."""
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    css = Markup((TEMPLATES / "report.css").read_text())
    sections = [{"id": i, "title": t} for i, t in SECTIONS]
    return env.get_template("report.html.j2").render(r=data, css=css, sections=sections)


def write_pdf(html: str, path: Path) -> int:
    """report.pdf from the same HTML (weasyprint; no network: every resource is inline); page count."""
    import logging

    import weasyprint

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    document = weasyprint.HTML(string=html).render()
    document.write_pdf(str(path))
    return len(document.pages)


def write(data: ReportData, out: Path) -> dict:
    """Write report.html and report.pdf under `out`: {'html': path, 'pdf': path, 'pages': n}."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    html = render_html(data)
    (out / "report.html").write_text(html, encoding="utf-8")
    pages = write_pdf(html, out / "report.pdf")
    return {"html": out / "report.html", "pdf": out / "report.pdf", "pages": pages}


# ---- open-loop section -----------------------------------------------------------------


def openloop_section(baseline: Path, adapt: Path, out: Path, source: str = "auto",
                     reps: int = 2000, max_panels: int = 2) -> tuple[list[Figure], str]:
    """Panels and error-vs-horizon for the two runs, or a note saying why there are none."""
    try:
        b, a, same = openloop.load_pair(baseline, adapt, source)
        paths = openloop.export(b, a, same, out, reps=reps)
    except openloop.OpenLoopError as error:
        return [], f"No open-loop figures: {error}"
    figures = [figure_from_file(p, caption="") for p in paths["errors"] if p.suffix == ".png"]
    panels = [p for p in paths["panels"] if p.suffix == ".png"][:max_panels]
    figures += [figure_from_file(p) for p in panels]
    where = "checkpoints (same real frames for both)" if same else \
        "each run's scope video (own replay sequences; truths differ)"
    note = (f"Runs {_short(baseline)} (baseline) and {_short(adapt)} (adapt), from {where}: "
            f"{b.context} observed frames, {b.horizon} imagined. Sources: {b.source}; {a.source}. "
            f"Panels for every sequence and the mp4 are in {_short(out)}.")
    return figures, note


# ---- collecting everything -------------------------------------------------------------


def aggregate_tables(result) -> list[Table]:
    """The compare result as two readable tables: metrics with CIs, and P(improvement)."""
    rows = []
    for row in result.aggregate.sort("scope", "metric", "method").iter_rows(named=True):
        ci = f"[{_round(row['low'], 3)}, {_round(row['high'], 3)}]"
        rows.append([row["scope"], row["metric"], row["method"], _round(row["point"], 3), ci, row["runs"]])
    metrics = Table(["scope", "metric", "method", "point", "95% CI", "runs"], rows,
                    f"Stratified bootstrap, {result.reps:,} reps, seed {result.seed}; "
                    + stats.final_score_definition(result.window) + ".")
    poi_rows = [[r["scope"], _round(r["point"], 3), f"[{_round(r['low'], 3)}, {_round(r['high'], 3)}]"]
                for r in result.poi.iter_rows(named=True)]
    poi = Table(["scope", f"P({result.adapt} > {result.baseline})", "95% CI"], poi_rows,
                "Probability of improvement (rliable): the chance that a random adapt run beats a "
                "random baseline run on the same task.")
    return [metrics, poi]


def best_runs(result) -> dict[str, Path]:
    """The best-scoring run of each method (by final score), for the open-loop section."""
    from analysis import ranking

    paths = {r.name: r.path for r in result.data.runs}
    best = {}
    for method in (result.baseline, result.adapt):
        ranked = ranking.rank_runs(result.final.filter(result.final["method"] == method))
        if ranked:
            best[method] = Path(paths[ranked[0]["run"]])
    return best


def mask_section(result, best: dict[str, Path], out: Path) -> tuple[list[Figure], str, Table]:
    """Mask figures (best run per method over training; all runs in the scatter) and a summary."""
    import polars as pl

    from analysis import figures, mask

    data = result.data
    if not data.metrics.height or not (data.metrics["key"].cast(pl.String).str.starts_with("train/imag_adapt/")).any():
        return [], "No run logged train/imag_adapt/* metrics, so there is no mask to show.", Table([], [])
    summary = mask.summarize(data)
    chosen = [r for r in data.runs if Path(r.path) in set(best.values())] or data.runs[:2]
    names = [r.name for r in chosen]
    colors = figures.method_colors([result.baseline, result.adapt])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figs = []
    plots = (("mask_over_training", "Mask over training (best run of each method)",
              lambda: figures.plot_mask(data.metrics.filter(pl.col("run").is_in(names)), chosen, colors)),
             ("mask_vs_loss", "Mask mean against loss/dyn (all runs)",
              lambda: figures.plot_mask_scatter(data.metrics, data.runs, colors)))
    for stem, title, plot in plots:
        figs += [figure_from_file(p, title) for p in figures.save(plot(), out / stem) if p.suffix == ".png"]
    note = ("Adaptive-horizon mask (SPEC section 4): shaded intervals are the fraction of updates with "
            "the mask active; the table gives per-run means over all logged lines.")
    return figs, note, table_from_records(summary.to_dicts())


def collect(baseline: list[str], adapt: list[str], out: Path, names=None, reps: int = 10_000,
            seed: int = 0, openloop_source: str = "auto", progress: bool = False,
            cache: bool | str | Path | None = True) -> ReportData:
    """Run the comparison and gather every section of the report (writes its figures to `out`)."""
    from analysis import compare

    out = Path(out)
    result = compare.compare(baseline, adapt, names=names, reps=reps, seed=seed, progress=progress, cache=cache)
    written = compare.write_outputs(result, out / "figures")
    return from_comparison(result, written, out, baseline, adapt, openloop_source)


def from_comparison(result, written: dict, out: Path, baseline: list[str], adapt: list[str],
                    openloop_source: str = "auto") -> ReportData:
    """Gather every section of the report around a finished comparison and its written
    figures (so `compare` and `report` never compute the statistics twice)."""
    out = Path(out)
    data = ReportData(f"{', '.join(result.tasks)}: {result.adapt} vs {result.baseline}",
                      [_short(Path(p)) for p in baseline], [_short(Path(p)) for p in adapt])
    runs = result.data.runs
    data.labels = find_labels([r.path for r in runs])
    configs = {m: [read_config(r.path) for r in runs if r.method == m] for m in (result.baseline, result.adapt)}
    data.setup = config_differences(configs)
    counts = ", ".join(f"{m}: {len(c)} run(s), {sum(1 for x in c if x)} with config.yaml" for m, c in configs.items())
    data.setup_note = (f"Tasks: {', '.join(result.tasks)}. {counts}. The table lists every config key "
                       f"whose value differs between the methods or across a method's runs "
                       f"(seed and logdir left out).")
    data.aggregate = aggregate_tables(result)
    data.aggregate_note = " ".join(result.notes)
    titles = {"sample_efficiency": "IQM learning curves", "aggregates": "Aggregate metrics",
              "probability_of_improvement": "Probability of improvement",
              "performance_profile": "Performance profiles", "final_scores": "Final score per run",
              "score_curves": "Raw episode scores against the random and human scores"}
    data.figures = [figure_from_file(path, titles.get(path.stem)) for name, path in written.items()
                    if path.suffix == ".png"]
    best = best_runs(result)
    data.mask_figures, data.mask_note, data.mask_table = mask_section(result, best, out / "figures")
    if len(best) == 2:
        data.openloop_figures, data.openloop_note = openloop_section(
            best[result.baseline], best[result.adapt], out / "openloop", openloop_source,
            min(result.reps, 2000))
    else:
        data.openloop_note = "No open-loop figures: a method has no scored run."
    data.per_run = table_from_records(result.final.to_dicts())
    data.problems = table_from_records(result.data.problems.to_dicts())
    return data
