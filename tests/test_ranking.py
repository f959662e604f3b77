"""Seed ranking: window scores first, fallbacks (last episode only) after, then ties and seeds."""

import polars as pl

from analysis import ranking


def _final(rows):
    return pl.DataFrame(
        rows,
        schema={"run": pl.String, "seed": pl.Int64, "final_score": pl.Float64, "fallback": pl.Boolean},
        orient="row",
    )


def test_fallback_scores_rank_after_window_scores():
    final = _final(
        [
            ("high_fallback", 0, 900.0, True),
            ("low_window", 1, 100.0, False),
            ("none", 2, None, False),
            ("mid_window", 3, 500.0, False),
        ]
    )
    order = [row["run"] for row in ranking.rank_runs(final)]
    assert order == ["mid_window", "low_window", "high_fallback", "none"]


def test_ties_broken_by_the_shorter_window_then_seed():
    final = _final([("a", 2, 10.0, False), ("b", 1, 10.0, False), ("c", 0, 10.0, False)])
    assert [r["run"] for r in ranking.rank_runs(final, {"a": 12.0, "b": 11.0})] == ["a", "b", "c"]
    assert [r["run"] for r in ranking.rank_runs(final)] == ["c", "b", "a"]
