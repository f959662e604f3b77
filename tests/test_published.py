"""The published Atari100k runs as a source: the shipped files, their aggregates computed here
from the JSON with NumPy alone, seeds whose logs are identical, and the equal-frames cut."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from analysis import atari, compare, ingest, published

DATA = Path(published.__file__).parent / "data" / "published"
RANDOM_HUMAN = atari.RANDOM_HUMAN
REPO = Path(__file__).resolve().parent.parent
SIZE12M = REPO / "artifacts" / "gpu_road_runner_size12m"


def _raw(name: str) -> list[dict]:
    with gzip.open(DATA / published.SOURCES[name], "rt") as f:
        return json.load(f)


def _expected(name: str, window: float = 0.1) -> dict[str, float]:
    """IQM, mean, median and optimality gap of the human-normalised final scores, straight from
    the JSON: final score = mean of the episodes ending in the last 10% of a run's frames."""
    per_task: dict[str, list[float]] = {}
    for rec in _raw(name):
        xs, ys = np.asarray(rec["xs"], float), np.asarray(rec["ys"], float)
        final = ys[xs >= (1 - window) * xs[-1]].mean()
        low, high = RANDOM_HUMAN[rec["task"].removeprefix("atari_")]
        per_task.setdefault(rec["task"], []).append((final - low) / (high - low))
    matrix = np.array([per_task[t] for t in sorted(per_task)]).T  # (seeds, tasks)
    flat = np.sort(matrix.ravel())
    cut = flat.size // 4
    return {
        "iqm": flat[cut : flat.size - cut].mean(),
        "mean": matrix.mean(axis=0).mean(),
        "median": np.median(matrix.mean(axis=0)),
        "og": np.mean(1 - np.minimum(matrix, 1.0)),
    }


@pytest.fixture(scope="module")
def both():
    return compare.compare(["published:dreamerv3", "published:ppo"], reps=200, seed=0, cache=False)


def test_shipped_files_are_the_published_ones():
    for name in published.SOURCES:
        records = _raw(name)
        assert len(records) == 130 and len({(r["task"], r["seed"]) for r in records}) == 130
        assert {r["seed"] for r in records} == set(range(5))
    assert "Permission is hereby granted, free of charge" in (DATA / "LICENSE").read_text()
    readme = (DATA / "README.md").read_text()
    for file in published.SOURCES.values():  # the README states each file's hash: they are unchanged
        assert hashlib.sha256((DATA / file).read_bytes()).hexdigest() in readme


def test_aggregates_match_numpy_from_the_json(both):
    assert sorted(both.tasks) == sorted(atari.TASKS)
    rows = both.aggregate.filter(both.aggregate["scope"] == compare.OVERALL)
    for method, name in (("published-dreamerv3", "dreamerv3"), ("published-ppo", "ppo")):
        expected = _expected(name)
        for metric, value in expected.items():
            row = rows.filter((rows["method"] == method) & (rows["metric"] == metric)).row(0, named=True)
            assert row["point"] == pytest.approx(value, rel=1e-9), (method, metric)
            assert row["low"] <= row["point"] <= row["high"] and row["runs"] == 5
    # the published agents differ as the paper says: DreamerV3 far above PPO on Atari100k
    iqm = {r["method"]: r["point"] for r in rows.filter(rows["metric"] == "iqm").iter_rows(named=True)}
    assert iqm["published-dreamerv3"] > 10 * iqm["published-ppo"]


def test_ppo_freeway_seeds_with_equal_scores_count_as_five(both):
    freeway = [r for r in _raw("ppo") if r["task"] == "atari_freeway"]
    assert sum(1 for r in freeway if not any(r["ys"])) >= 2  # seeds whose every episode scored 0
    runs = both.final.filter((both.final["method"] == "published-ppo") & (both.final["task"] == "atari100k_freeway"))
    assert runs.height == 5 and not any("copy" in n for n in both.notes)


def test_ppo_freeway_as_run_dirs_are_five_seeds_not_copies(tmp_path):
    """Written as scores.jsonl run dirs, two Freeway seeds are byte-identical: still two seeds."""
    logs = {}
    for rec in (r for r in _raw("ppo") if r["task"] == "atari_freeway"):
        run = tmp_path / "atari100k_freeway_ppo" / f"seed{rec['seed']}"
        run.mkdir(parents=True)
        lines = [json.dumps({"step": x, "episode/score": y}) for x, y in zip(rec["xs"], rec["ys"])]
        (run / "scores.jsonl").write_text("\n".join(lines) + "\n")
        logs[rec["seed"]] = (run / "scores.jsonl").read_bytes()
    assert len(set(logs.values())) < 5  # some seeds' logs are byte-identical
    runs = ingest.discover([str(tmp_path / "atari100k_freeway_ppo")])
    assert ingest.copies(runs) == []
    kept, notes = ingest.without_copies(runs)
    assert len(kept) == 5 and notes and all("counted as two runs" in n for n in notes)


def test_a_copied_real_run_counts_once(tmp_path):
    """A shipped run folder copied beside itself: the same run, counted once with one note."""
    method = tmp_path / "size12m"
    for run in sorted(p for p in SIZE12M.iterdir() if p.is_dir())[:2]:
        shutil.copytree(run, method / run.name, ignore=shutil.ignore_patterns("scope"))
    first = sorted(method.iterdir())[0]
    shutil.copytree(first, method / (first.name + "_again"))
    runs = ingest.discover([str(method)], ["size12m"])
    assert len(runs) == 3
    kept, notes = ingest.without_copies(runs)
    assert len(kept) == 2 and len(notes) == 1 and "is a copy of" in notes[0] and "_again" in notes[0]


def test_equal_frames_cut_the_published_runs_to_the_compared_ones():
    result = compare.compare(
        [["published:dreamerv3"], [str(SIZE12M)]],
        names=["published-dreamerv3", "size12m"],
        reps=200,
        seed=0,
        cache=False,
        metrics=["iqm", "mean"],
    )
    assert result.tasks == ["atari100k_road_runner"]
    road = result.final.filter(pl.col("task") == "atari100k_road_runner")
    end = dict(road.group_by("method").agg(pl.col("last_step").max()).iter_rows())
    assert 0 < end["published-dreamerv3"] <= end["size12m"] < 100_000
    assert any("cut at" in note and "road_runner" in note for note in result.notes)
    cover = {c["method"]: c for c in result.coverage}
    assert cover["published-dreamerv3"]["runs"] == 5 and cover["published-dreamerv3"]["tasks_in_all"] == 26
    assert cover["size12m"]["runs"] == 3 and cover["size12m"]["last_frame"][1] == end["size12m"]
    # the other 25 games of the published runs are named as left out, not silently dropped
    left = [n for n in result.notes if "not every method has" in n]
    assert len(left) == 1 and "25 task(s)" in left[0] and "alien" in left[0]
    short = result.data.problems.filter(pl.col("problem").str.starts_with("shorter run"))["run"].to_list()
    assert short and not any("road_runner" in run for run in short)  # at equal frames none is short


def test_unknown_published_agent_is_one_clear_error():
    with pytest.raises(ingest.IngestError, match="published:dreamerv3, published:ppo"):
        ingest.discover(["published:muzero"])


def test_report_shows_the_published_comparison(tmp_path):
    """`report` is `compare` with the report: the HTML has each side's coverage and the cut."""
    from typer.testing import CliRunner

    import cli

    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli.app,
        [
            "report",
            "published:dreamerv3",
            str(SIZE12M),
            "--reps",
            "100",
            "--metric",
            "iqm",
            "--no-cache",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    assert "published-dreamerv3: 5 runs on 1 compared task(s) (and 25 task(s) not compared)" in html
    assert "published runs of atari100k_road_runner cut at" in html and (out / "tables" / "per_task.tex").is_file()
