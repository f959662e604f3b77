"""The comparison's tables for papers: LaTeX (booktabs), Markdown and CSV, beside summary.json.

Two tables, each in three forms under OUT/tables/: `aggregate` (every method over all compared
tasks) and `per_task` (every task and method). Each row gives the runs that enter it and each
metric as point [low, high], the 95% stratified bootstrap CI; the caption (a comment line in
LaTeX, a line under the Markdown table, absent from the CSV whose columns say it) states the
score's unit, the bootstrap and how each run's score was summarised.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from analysis import stats
from dreamerv3 import safefile

LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def records(result, scopes: list[str]) -> list[dict]:
    """One dict per (scope, method): scope, method, runs, and per metric its point, low and high;
    P(method > reference) as poi_point/low/high on the other methods' rows."""
    agg = {(r["scope"], r["method"], r["metric"]): r for r in result.aggregate.iter_rows(named=True)}
    poi = {(r["scope"], r["method"]): r for r in result.poi.iter_rows(named=True)}
    out = []
    for scope in scopes:
        for method in result.methods:
            row = {"scope": scope, "method": method, "runs": agg[scope, method, result.metrics[0]]["runs"]}
            for metric in result.metrics:
                cell = agg[scope, method, metric]
                row |= {f"{metric}_point": cell["point"], f"{metric}_low": cell["low"], f"{metric}_high": cell["high"]}
            got = poi.get((scope, method))
            row |= {"poi_point": got and got["point"], "poi_low": got and got["low"], "poi_high": got and got["high"]}
            out.append(row)
    return out


def caption(result, definition: str) -> str:
    return (
        f"{result.unit}s; each cell: point estimate [95% stratified bootstrap CI] ({result.reps:,} reps, seed "
        f"{result.seed}); runs: runs per task entering the row; P(> {result.reference}): probability of "
        f"improvement over {result.reference}; {definition}."
    )


def _headers(result) -> list[str]:
    return ["task", "method", "runs", *(stats.METRIC_TITLES[m] for m in result.metrics), f"P(> {result.reference})"]


def _cells(result, row: dict) -> list[str]:
    ci = lambda p, lo, hi: "" if p is None else f"{p:.3f} [{lo:.3f}, {hi:.3f}]"  # noqa: E731
    metrics = [ci(row[f"{m}_point"], row[f"{m}_low"], row[f"{m}_high"]) for m in result.metrics]
    return [
        row["scope"].removeprefix("atari100k_"),
        row["method"],
        str(row["runs"]),
        *metrics,
        ci(row["poi_point"], row["poi_low"], row["poi_high"]),
    ]


def markdown(result, rows: list[dict], text: str) -> str:
    head = _headers(result)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c.replace("|", r"\|") for c in _cells(result, r)) + " |" for r in rows]
    return "\n".join(lines) + f"\n\n{text}\n"


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def latex(result, rows: list[dict], text: str) -> str:
    """A booktabs tabular (needs \\usepackage{booktabs}); the caption as a comment above it."""
    head = _headers(result)
    lines = [
        f"% {latex_escape(text)}",
        r"\begin{tabular}{ll" + "r" * (len(head) - 2) + "}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in head) + r" \\",
        r"\midrule",
    ]
    for i, row in enumerate(rows):
        if i and row["scope"] != rows[i - 1]["scope"]:
            lines.append(r"\midrule")
        lines.append(" & ".join(latex_escape(c) for c in _cells(result, row)) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def write(result, folder: Path, definition: str) -> dict[str, Path]:
    """tables/aggregate.{tex,md,csv} and tables/per_task.{tex,md,csv} under `folder`."""
    out, folder = Path(folder), Path(folder) / "tables"
    safefile.refuse_linked(folder, "--out", within=out)
    folder.mkdir(parents=True, exist_ok=True)
    text = caption(result, definition)
    written = {}
    for name, scopes in (("aggregate", [stats.OVERALL]), ("per_task", list(result.tasks))):
        rows = records(result, scopes)
        for suffix, body in (
            ("tex", latex(result, rows, text)),
            ("md", markdown(result, rows, text)),
            ("csv", csv_text(rows)),
        ):
            path = folder / f"{name}.{suffix}"
            safefile.write(path, body, within=out)  # never through a link planted in the output
            written[f"tables/{name}.{suffix}"] = path
    return written


def shown(result, scopes: list[str]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows of text cells) of the table over `scopes`, as Markdown and LaTeX show it."""
    return _headers(result), [_cells(result, row) for row in records(result, scopes)]
