"""The full report: one self-contained report.html and a report.pdf of the same content.

A report is data: a title, the methods' paths and one list of `Section`s, each a list of
blocks (`Paragraph`, `Table`, `Figure`, `Label`). `build` makes them from a finished comparison
and its figures (rendered in memory, never read back from disk); the template has one loop over
sections and one over blocks. jinja2 autoescape is on, so names from the file system always
show as text; the data labels are the runs' nearest READMEs rendered as Markdown with raw HTML,
links and images off. `write_pdf` turns the same HTML into a PDF with weasyprint. Figures are
embedded as base64 PNG and the CSS is inlined: the HTML needs no network.
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import polars as pl
from markdown_it import MarkdownIt
from markupsafe import Markup

from analysis import compare, confine, figures, mask, openloop, published, ranking, remote, runconfig, stats, tables
from dreamerv3 import safefile

TEMPLATES = Path(__file__).parent / "templates"
README_NAMES = ("README.md", "README_PRUEBA.md", "README.txt")
LABEL_CHARS = 900  # a data label shows the README's opening, about this long
README_BYTES = 64 * 1024  # read of a README: its opening is all a label needs, however large the file
PER_RUN_KEYS = ("seed", "logdir")  # config keys that differ from run to run by design
OPENLOOP_PANELS = 2  # panels per method pair embedded in the report (all are written to disk)


@dataclass
class Paragraph:
    text: str
    style: str = ""  # '' or 'warning' or 'missing'
    kind: str = "paragraph"


@dataclass
class Table:
    columns: list[str]
    rows: list[list]
    caption: str = ""
    kind: str = "table"


@dataclass
class Figure:
    title: str
    png: bytes
    caption: str = ""
    kind: str = "figure"

    @property
    def png_base64(self) -> str:
        return base64.b64encode(self.png).decode("ascii")


@dataclass
class Label:
    """A run set's data label: its nearest README's opening, as Markdown rendered to safe HTML."""

    path: str
    html: str
    kind: str = "label"


@dataclass
class Section:
    id: str
    title: str
    blocks: list = field(default_factory=list)


@dataclass
class ReportData:
    """Everything the template shows; each field is plain data, already computed."""

    title: str
    methods: list[tuple[str, list[str]]]  # (method, its command-line paths), the reference first
    sections: list[Section] = field(default_factory=list)
    generated: str = field(default_factory=lambda: datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))


# ---- data labels and configs -----------------------------------------------------------


def nearest_readme(run: Path) -> Path | None:
    """The README closest above a run (its own folder first), never the repository's own."""
    folder = Path(run).resolve()
    while folder != folder.parent:
        if any((folder / mark).exists() for mark in ("pyproject.toml", ".git", remote.STAGE_MARK)):
            return None
        for name in README_NAMES:
            if confine.run_file(folder, folder / name):  # a link out of the folder is never shown
                return folder / name
        folder = folder.parent
    return None


def find_labels(run_paths: list[Path]) -> list[Label]:
    """One label per distinct nearest README of the runs, in the runs' order."""
    seen, labels = set(), []
    for run in run_paths:
        readme = nearest_readme(run)
        if readme is not None and readme not in seen:
            seen.add(readme)
            with open(readme, "rb") as f:
                text = f.read(README_BYTES).decode("utf-8", errors="replace")
            labels.append(Label(_short(readme), markdown_html(opening(text))))
    return labels


def opening(text: str, limit: int = LABEL_CHARS) -> str:
    """The README's first paragraphs up to about `limit` characters, cut at a paragraph break
    and before any code block; '[...]' marks a cut."""
    kept, size = [], 0
    for block in text.strip().split("\n\n"):
        if block.lstrip().startswith("```") or (kept and size + len(block) > limit):
            return "\n\n".join(kept + ["[...]"])
        kept.append(block)
        size += len(block)
    return "\n\n".join(kept)


def markdown_html(text: str) -> str:
    """Markdown as HTML with raw HTML escaped and links, autolinks and images left as text
    (a report shows what a README says; it never fetches or links out)."""

    md = MarkdownIt("commonmark", {"html": False}).disable(["image", "link", "autolink"])
    return md.render(text)


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

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters["trusted"] = Markup  # only for Label.html, which markdown_html escaped itself
    css = Markup((TEMPLATES / "report.css").read_text())
    return env.get_template("report.html.j2").render(r=data, css=css)


def write_pdf(html: str, path: Path) -> int:
    """report.pdf from the same HTML (weasyprint; no network: every resource is inline); page count."""
    import weasyprint  # deferred: its import loads Pango and takes about a second; only the PDF needs it

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
    safefile.write(out / "report.html", html, flag="the report")
    safefile.refuse_linked(out / "report.pdf", "the report")
    pages = write_pdf(html, out / "report.pdf")
    return {"html": out / "report.html", "pdf": out / "report.pdf", "pages": pages}


# ---- sections --------------------------------------------------------------------------


def label_section(result) -> Section:
    labels = find_labels([r.path for r in result.data.runs])
    if not labels:
        return Section(
            "data-label",
            "Data label",
            [
                Paragraph(
                    "WARNING: no README was found beside these runs. Nothing says how they were made (command, "
                    "model size, steps, machine) or what they are not. Treat every number below as unlabelled data.",
                    "warning",
                )
            ],
        )
    return Section("data-label", "Data label", labels)


def setup_section(result) -> Section:
    runs = result.data.runs
    configs = {
        m: [read_config(r.path) for r in runs if r.method == m]
        for m in result.methods
        if not all(published.owns(r.path) for r in runs if r.method == m)
    }  # published: no config
    counts = ", ".join(f"{m}: {len(c)} run(s), {sum(1 for x in c if x)} with config.yaml" for m, c in configs.items())
    table = config_differences(configs)
    blocks = [
        Paragraph(
            f"Tasks: {', '.join(result.tasks)}. {counts}. The table lists every config key whose "
            "value differs between the methods or across a method's runs (seed and logdir left out)."
        )
    ]
    blocks.append(
        table
        if table.rows
        else Paragraph("No config key differs between the methods or across runs (or the runs have no config.yaml).")
    )
    return Section("setup", "Setup", blocks)


def aggregate_section(result) -> Section:

    text = tables.caption(result, result.definition)
    blocks = [Paragraph(line) for line in compare.coverage_sentences(result)]
    blocks += [
        Table(*tables.shown(result, [stats.OVERALL]), f"Over {stats.OVERALL} ({len(result.tasks)}): {text}"),
        Table(*tables.shown(result, list(result.tasks)), f"Per task: {text}"),
        Paragraph(
            "The same tables are in tables/aggregate.{tex,md,csv} and tables/per_task.{tex,md,csv} "
            "beside summary.json (LaTeX: booktabs)."
        ),
    ]
    blocks += [Paragraph(line) for line in compare.difference_sentences(result) + compare.power_sentences(result)]
    blocks += [Paragraph(f"Note: {note}") for note in result.notes]
    return Section("aggregate", "Aggregate scores", blocks)


def figures_section(result, rendered: dict) -> Section:

    blocks = [
        Figure(compare.FIGURE_TITLES.get(stem, stem.replace("_", " ")), fig.png) for stem, fig in rendered.items()
    ]
    return Section(
        "curves", "Learning curves and score figures", blocks or [Paragraph("No figures were produced.", "missing")]
    )


def best_runs(result) -> dict[str, Path]:
    """The best-scoring run of each method (by final score), for the mask and open-loop sections."""

    paths = {r.name: r.path for r in result.data.runs}
    best = {}
    for method in result.methods:
        ranked = ranking.rank_runs(result.final.filter(result.final["method"] == method))
        if ranked and ranked[0]["final_score"] is not None:
            best[method] = Path(paths[ranked[0]["run"]])
    return best


def mask_section(result, best: dict[str, Path]) -> tuple[Section, dict]:
    """Mask figures (best run per method over training; all runs in the scatter), a summary
    table, and the rendered figures (to be written beside the others)."""

    data = result.data
    logged = data.metrics.height and data.metrics["key"].cast(pl.String).str.starts_with("train/imag_adapt/").any()
    if not logged:
        return Section(
            "mask",
            "Mask diagnostics",
            [Paragraph("No run logged train/imag_adapt/* metrics, so there is no mask to show.")],
        ), {}
    chosen = [r for r in data.runs if Path(r.path) in set(best.values())] or data.runs[:2]
    names = [r.name for r in chosen]
    colors = figures.method_colors(result.methods)
    summary = mask.summarize(data)
    shifts = mask.shift_steps(summary)
    rendered = {
        "mask_over_training": figures.render(
            figures.plot_mask(data.metrics.filter(pl.col("run").is_in(names)), chosen, colors, shifts)
        ),
        "mask_vs_loss": figures.render(figures.plot_mask_scatter(data.metrics, data.runs, colors)),
    }
    around = (
        " Runs with a dynamics shift (dashed line; env.*.shift.step in their config.yaml) also get "
        "the fraction of updates with the mask on before and after it, and the end step of the first "
        "logged interval after it with the mask on (first_active_after)."
        if shifts
        else ""
    )
    blocks = [
        Paragraph(
            "Adaptive-horizon mask: shaded intervals are the fraction of updates "
            "with the mask active; the table gives per-run means over all logged lines." + around
        ),
        Figure("Mask over training (best run of each method)", rendered["mask_over_training"].png),
        Figure("Mask mean against loss/dyn (all runs)", rendered["mask_vs_loss"].png),
        table_from_records(summary.filter(pl.col("logged") > 0).to_dicts(), "Runs that logged the mask's metrics."),
    ]
    return Section("mask", "Mask diagnostics", blocks), rendered


def openloop_section(result, best: dict[str, Path], out: Path, source: str = "auto") -> Section:
    """For each other method: its best run against the reference's, panels and error vs horizon."""
    reference = result.reference
    if reference not in best:
        return Section(
            "openloop", "Open-loop predictions", [Paragraph(f"No open-loop figures: {reference} has no scored run.")]
        )
    blocks = []
    for method in result.others:
        if method not in best:
            blocks.append(Paragraph(f"No open-loop figures for {method}: it has no scored run."))
            continue
        folder = openloop_folder(out, reference, method)
        try:
            b, a, same = openloop.load_pair(best[reference], best[method], source)
            written = openloop.export(
                b, a, same, folder, names=(reference, method), reps=min(result.reps, 2000), within=out
            )
        except openloop.OpenLoopError as error:
            blocks.append(Paragraph(f"No open-loop figures for {method}: {error}"))
            continue
        where = (
            "checkpoints (same real frames for both)"
            if same
            else "each run's scope video (own replay sequences; truths differ)"
        )
        blocks.append(
            Paragraph(
                f"{method} ({_short(best[method])}) against {reference} ({_short(best[reference])}), from {where}: "
                f"{b.context} observed frames, {b.horizon} imagined. Sources: {b.source}; {a.source}. "
                f"Panels for every sequence and the mp4 are in {_short(folder)}."
            )
        )
        rendered = dict(written["rendered"])
        blocks.append(Figure(f"{method} vs {reference}: error vs horizon", rendered.pop("error_vs_horizon").png))
        blocks += [
            Figure(f"{method} vs {reference}: {stem.replace('_', ' ')}", fig.png)
            for stem, fig in list(rendered.items())[:OPENLOOP_PANELS]
        ]
    return Section("openloop", "Open-loop predictions", blocks)


def openloop_folder(out: Path, reference: str, method: str) -> Path:
    """`out`/openloop/<reference>_vs_<method>: one folder whatever the labels hold (they can come
    from a run's config.yaml)."""
    return Path(out) / "openloop" / confine.safe_component(f"{reference}_vs_{method}", "openloop")


def build(
    result, rendered: dict, out: Path, paths: list[list[str]], openloop_source: str = "auto"
) -> tuple[ReportData, dict]:
    """The report of a finished comparison and its rendered figures; returns it and the extra
    figures it drew (mask), for the caller to write beside the others. Open-loop files go to
    `out`/openloop/<reference>_vs_<method>/."""
    best = best_runs(result)
    mask, mask_rendered = mask_section(result, best)
    data = ReportData(
        f"{', '.join(result.tasks)}: {' vs '.join(result.methods)}",
        [(m, [_short(Path(p)) for p in group]) for m, group in zip(result.methods, paths)],
    )
    data.sections = [
        label_section(result),
        setup_section(result),
        aggregate_section(result),
        figures_section(result, rendered),
        mask,
        openloop_section(result, best, out, openloop_source),
        Section(
            "per-run",
            "Per-run table",
            [
                table_from_records(
                    result.final.filter(pl.col("task").is_in(result.tasks)).to_dicts(),
                    result.definition + "; compared tasks only (per_run.csv has every run).",
                )
            ],
        ),
        Section(
            "problems",
            "Ingest problems",
            [
                table_from_records(result.data.problems.to_dicts())
                if result.data.problems.height
                else Paragraph("No problems were found while reading the runs.")
            ],
        ),
    ]
    return data, mask_rendered
