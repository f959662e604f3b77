"""compare with N methods: every method gets its aggregates, each other method its probability of
improvement and power statement against the reference, and adding methods changes no number."""

import numpy as np
import polars as pl
import pytest
from runfactory import write_study

from analysis import compare, ingest, stats

METHODS = ("baseline", "adapt", "placebo", "short")


@pytest.fixture(scope="module")
def four(tmp_path_factory):
    root = tmp_path_factory.mktemp("four")
    write_study(root, tasks=("atari100k_alien", "atari100k_pong"), seeds=3, methods=METHODS, episodes=30, log_lines=10)
    groups = [[str(root / f"*_{m}")] for m in METHODS]
    return root, compare.compare(groups, reps=300, seed=4)


def test_every_method_against_the_reference(four):
    _, result = four
    assert result.methods == list(METHODS) and result.reference == "baseline"
    assert set(result.aggregate["method"]) == set(METHODS)
    assert sorted(set(result.poi["method"])) == sorted(METHODS[1:])
    assert set(result.power) == set(METHODS[1:])
    columns, rows = compare.table_rows(result)
    assert columns[-1] == "P(> baseline)" and len(rows) == 3 * 4  # (2 tasks + all) x 4 methods
    assert [r[-1] == "" for r in rows[:4]] == [True, False, False, False]
    assert len(compare.power_sentences(result)) == 3
    assert result.name == "2tasks_baseline_vs_adapt_placebo_short"


def test_poi_is_each_method_against_the_reference(four):
    _, result = four
    matrices = {m: stats.score_matrix(result.final, m, result.tasks)[0] for m in METHODS}
    for method in METHODS[1:]:
        row = result.poi.filter((pl.col("method") == method) & (pl.col("scope") == stats.OVERALL)).row(0, named=True)
        est = stats.poi_estimate(matrices[method], matrices["baseline"], 300, 4)
        assert (row["point"], row["low"], row["high"]) == pytest.approx((est.point, est.low, est.high))


def test_adding_methods_changes_no_number(four):
    root, result = four
    pair = compare.compare([[str(root / "*_baseline")], [str(root / "*_placebo")]], reps=300, seed=4)
    for table in ("aggregate", "poi"):
        mine = getattr(result, table).filter(pl.col("method").is_in(["baseline", "placebo"]))
        np.testing.assert_allclose(
            mine.sort(mine.columns[:3])["point"], getattr(pair, table).sort(getattr(pair, table).columns[:3])["point"]
        )


def test_the_same_runs_under_two_names_are_refused(four):
    root, _ = four
    with pytest.raises(ingest.IngestError, match="under both"):
        compare.compare([[str(root / "*_baseline")], [str(root / "*_baseline")]], names=["x", "y"], reps=200)
    with pytest.raises(compare.CompareError, match="reference and at least one other"):
        compare.compare([[str(root / "*_baseline")]], reps=200)
