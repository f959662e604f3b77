"""Seed ranking: which run of a method is its best, by final score (for `best-seed`, open loop).

A run's final score is `stats.final_scores`'; a run whose score is a fallback (its last
episode, none in the window) ranks after every run scored in its window, because its number
stands in for one that was not measured. Ties are broken by the mean over a shorter last
window, then by seed.
"""

from __future__ import annotations

from pathlib import Path

from analysis import ingest, stats


def rank_runs(final, tiebreak: dict[str, float] | None = None) -> list[dict]:
    """Runs best first: window scores before fallbacks, by final score, ties by `tiebreak`
    (run -> a shorter last-window mean), then seed. Runs without a score go last.

    `final` is a stats.final_scores table.
    """
    tiebreak = tiebreak or {}

    def key(row):
        score, tie = row["final_score"], tiebreak.get(row["run"])
        return (
            score is None,
            bool(row.get("fallback")),
            -(score or 0.0),
            tie is None,
            -(tie or 0.0),
            row["seed"],
            row["run"],
        )

    return sorted(final.to_dicts(), key=key)


def seed_table(
    paths: list[str], window: float = 0.1, tie_window: float = 0.05, cache: bool | str | Path | None = True
) -> list[dict]:
    """Every run under `paths`, best first, with its final score and tie-break score.

    Final score: mean episode score over the last `window` of the run's env frames
    (stats.final_scores); ties are broken by the same mean over the last `tie_window`.
    """

    runs = ingest.discover(paths)
    data = ingest.ingest(runs, metric_keys=["fps/policy", "train/loss/dyn"], cache=cache)
    stats.check_magnitude(data.scores, {r.name: r.path for r in runs})
    ends = ingest.last_steps(data.scores, data.metrics)
    final = stats.final_scores(data.scores, window, runs, ends)
    tie = stats.final_scores(data.scores, tie_window, runs, ends)
    tiebreak = {r["run"]: r["final_score"] for r in tie.filter(~tie["fallback"]).to_dicts()}
    where = {r.name: r.path for r in runs}
    ranked = rank_runs(final, tiebreak)
    for row in ranked:
        row["tie_score"] = tiebreak.get(row["run"])
        row["path"] = Path(where[row["run"]])
    return ranked


def resolve_run(path: str, cache: bool | str | Path | None = True) -> tuple[Path, str]:
    """A single run for open-loop work: the dir itself if it is one, else the best seed under it."""
    folder = Path(path)
    if (folder / "scope").is_dir() or (folder / "ckpt").is_dir():
        return folder, "as given"
    best = seed_table([path], cache=cache)[0]
    if best["final_score"] is None:
        return best["path"], "first run (no run has episode scores)"
    how = "its last episode, none in the final window" if best["fallback"] else "final window"
    return best["path"], f"best seed by final score ({best['final_score']:.1f}, {how})"
