"""Paper tables (LaTeX booktabs, Markdown, CSV) and the per-run summary choice, on the published runs."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import cli
from analysis import atari, compare, published, tables

DATA = Path(published.__file__).parent / "data" / "published"


def _raw(name):
    with gzip.open(DATA / published.SOURCES[name], "rt") as f:
        return json.load(f)


@pytest.mark.parametrize("how, pick", [("last", lambda ys: ys[-1]), ("max", max)])
def test_summary_last_and_max_are_what_they_say(how, pick):
    result = compare.compare(
        ["published:dreamerv3", "published:ppo"], reps=100, cache=False, metrics=["mean"], summary=how
    )
    got = {(r["method"], r["task"], r["seed"]): r["final_score"] for r in result.final.iter_rows(named=True)}
    for name in ("dreamerv3", "ppo"):
        for rec in _raw(name):
            task = atari.PREFIX + rec["task"].removeprefix("atari_")
            assert got[published.label(name), task, rec["seed"]] == pick(rec["ys"])
    assert f"--summary {how}" in result.definition and f"--summary {how}" in compare.bootstrap_sentence(result)


def test_tables_are_written_in_three_forms_with_ci_and_runs(tmp_path):
    result = compare.compare(["published:dreamerv3", "published:ppo"], reps=100, cache=False)
    written = tables.write(result, tmp_path, result.definition)
    assert sorted(written) == sorted(f"tables/{n}.{s}" for n in ("aggregate", "per_task") for s in ("tex", "md", "csv"))
    tex = (tmp_path / "tables" / "per_task.tex").read_text()
    assert tex.count(r"\toprule") == tex.count(r"\bottomrule") == 1 and tex.count(r"\midrule") == 26
    assert r"up\_n\_down" in tex and "published-ppo & 5 &" in tex and "95\\% stratified bootstrap CI" in tex
    md = (tmp_path / "tables" / "per_task.md").read_text().splitlines()
    assert len([line for line in md if line.startswith("| ")]) == 1 + 26 * 2 and result.definition in md[-1]
    rows = list(csv.DictReader(open(tmp_path / "tables" / "aggregate.csv")))
    agg = result.aggregate.filter(result.aggregate["scope"] == compare.OVERALL)
    for row in rows:
        mine = agg.filter(agg["method"] == row["method"])
        for metric in result.metrics:
            cell = mine.filter(mine["metric"] == metric).row(0, named=True)
            assert np.isclose(float(row[f"{metric}_low"]), cell["low"]) and int(row["runs"]) == cell["runs"]


def test_report_shows_the_tables_and_a_bad_summary_is_one_line(tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(
        cli.app,
        [
            "compare",
            "published:dreamerv3",
            "published:ppo",
            "--reps",
            "100",
            "--metric",
            "iqm",
            "--summary",
            "bad",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2 and "--summary 'bad': expected one of window, last, max" in result.stderr
    assert not out.exists()
