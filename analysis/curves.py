"""Learning curves users can trust: runs of different lengths, run counts, stated smoothing.

`efficiency` is the sample-efficiency curve: the IQM over runs and tasks of each run's
normalised score at env-frame marks up to the longest run, with the 95% stratified bootstrap
CI. A run counts at a mark only while it lasts (never extended past its last logged frame,
never interpolated); at each mark a method's tasks keep the same number of runs (the fewest
any task has there, lowest seeds first, as the aggregates do), and that number is returned
beside the curve so the figure can show where it drops. `smooth` applies the display
smoothing the user asked for (`--smooth none|window:N|ema:W`) to a plotted series; statistics
never see it.

Shapes: marks (P,); per method point/low/high (P,) float (NaN where no task has a run) and
runs (P,) int (runs per task entering the point).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from analysis import confine, published, runconfig, stats

POINTS = 25  # marks along the x axis
SMOOTHINGS = ("none", "window:N", "ema:W")
DEFAULT_SMOOTH = "window:10"  # the score curves' rolling mean of 10 episodes


X_AXES = ("frames", "steps")
PUBLISHED_REPEAT = 4  # the published Atari100k runs: 400k env frames are 100k agent steps


def action_repeat(run) -> int | None:
    """Env frames per agent step of a run: its config's env.<suite>.repeat (suite: the task's
    prefix, atari100k for atari100k_pong), 4 for the published runs; None when unknown."""
    if published.owns(run.path):
        return PUBLISHED_REPEAT
    path = run.path / "config.yaml"
    if not confine.run_file(run.path, path):
        return None
    try:
        value = runconfig.read_flat(path).get(f"env.{run.task.split('_')[0]}.repeat")
    except Exception:  # noqa: BLE001 (an unreadable config says nothing about the repeat)
        return None
    return int(value) if isinstance(value, (int, float)) and value >= 1 else None


def x_axis(runs, x: str = "frames") -> tuple[float, str]:
    """(env frames per x unit, axis label) of the curves' x axis; ValueError when `steps` is
    asked of runs whose action repeat is unknown or differs."""
    if x == "frames":
        return 1.0, "env frames"
    if x != "steps":
        raise ValueError(f"--x {x!r}: expected one of {', '.join(X_AXES)}")
    repeats = {r.name: action_repeat(r) for r in runs}
    unknown = [name for name, rep in repeats.items() if rep is None]
    if unknown:
        raise ValueError(f"--x steps: run {unknown[0]} has no env.<suite>.repeat in its config.yaml; use --x frames")
    if len(set(repeats.values())) > 1:
        raise ValueError(
            f"--x steps: the runs' action repeats differ ({', '.join(map(str, sorted(set(repeats.values()))))}); "
            "use --x frames"
        )
    repeat = next(iter(repeats.values()))
    return float(repeat), f"agent steps (env frames / {repeat})"


def parse_smooth(spec: str) -> tuple[str, float]:
    """('none', 0) | ('window', N >= 1) | ('ema', 0 <= W < 1); ValueError naming the flag otherwise."""
    kind, _, arg = str(spec).partition(":")
    try:
        if kind == "none" and not arg:
            return "none", 0.0
        if kind == "window" and int(arg) >= 1 and str(int(arg)) == arg:
            return "window", float(int(arg))
        if kind == "ema" and 0 <= float(arg) < 1:
            return "ema", float(arg)
    except ValueError:
        pass
    raise ValueError(f"--smooth {spec!r}: expected none, window:N (N >= 1 episodes) or ema:W (0 <= W < 1)")


def smooth(values: np.ndarray, spec: str) -> np.ndarray:
    """values (N,) smoothed for display: a trailing mean of N, or TensorBoard's debiased EMA
    (last = W * last + (1 - W) * v; shown last / (1 - W ** count))."""
    kind, arg = parse_smooth(spec)
    values = np.asarray(values, np.float64)
    if kind == "none" or values.size == 0:
        return values
    if kind == "window":
        sums = np.cumsum(np.insert(values, 0, 0.0))
        n = int(arg)
        idx = np.arange(1, values.size + 1)
        return (sums[idx] - sums[np.maximum(idx - n, 0)]) / np.minimum(idx, n)
    out, last = np.empty_like(values), 0.0
    for i, v in enumerate(values):
        last = arg * last + (1 - arg) * v
        out[i] = last / (1 - arg ** (i + 1)) if arg > 0 else v
    return out


def smooth_label(spec: str) -> str:
    kind, arg = parse_smooth(spec)
    return {
        "none": "unsmoothed",
        "window": f"mean of the last {int(arg)} episodes",
        "ema": f"debiased EMA, weight {arg:g}",
    }[kind]


def run_values(steps: np.ndarray, values: np.ndarray, end: float, marks: np.ndarray) -> np.ndarray:
    """One run's score at each mark (P,): the mean of its episodes ending in (g - spacing, g],
    else its last episode before g; NaN before its first episode and past its end (a mark
    after the run's last logged frame: the run did not get there)."""
    spacing = marks[0]
    out = np.full(marks.shape, np.nan)
    for i, mark in enumerate(marks):
        if mark > end:  # the run has stopped: it does not count here
            continue
        inside = values[(steps > mark - spacing) & (steps <= mark)]
        before = values[steps <= mark]
        out[i] = inside.mean() if inside.size else (before[-1] if before.size else np.nan)
    return out


def efficiency(
    scores: pl.DataFrame,
    final: pl.DataFrame,
    methods: list[str],
    tasks: list[str],
    reps: int,
    seed: int,
    points: int = POINTS,
) -> dict:
    """{'marks': (P,), method: {'point', 'low', 'high', 'runs'}} (see the module docstring).

    scores: ingest's long table; final: one row per run (run, method, task, seed, last_step)."""
    episodes = stats.as_strings(scores).filter((pl.col("key") == "episode/score") & pl.col("task").is_in(tasks))
    runs = stats.as_strings(final).filter(pl.col("task").is_in(tasks)).sort("seed", "run")
    longest = float(runs["last_step"].max() or 0)
    marks = np.linspace(longest / points, longest, points) if longest > 0 else np.array([1.0])
    by_run = {
        run: (g["step"].to_numpy(), g["value"].to_numpy())
        for (run,), g in episodes.sort("step").group_by("run", maintain_order=True)
    }
    out: dict = {"marks": marks}
    for method in methods:
        table = {}  # task -> (runs, P) normalised values
        for task in tasks:
            rows = runs.filter((pl.col("method") == method) & (pl.col("task") == task))
            curves = [
                run_values(*by_run[r], float(end or 0), marks)
                for r, end in rows.select("run", "last_step").iter_rows()
                if r in by_run
            ]
            raw = np.array(curves) if curves else np.full((0, marks.size), np.nan)
            table[task] = (
                np.vectorize(
                    lambda v: stats._normalize(task, v) if np.isfinite(v) else np.nan,  # noqa: B023 (called within this iteration)
                    otypes=[float],
                )(raw)
                if raw.size
                else raw
            )
        out[method] = _iqm_per_mark(table, tasks, marks.size, reps, seed)
    return out


def _iqm_per_mark(table: dict[str, np.ndarray], tasks: list[str], points: int, reps: int, seed: int) -> dict:
    point, low, high = (np.full(points, np.nan) for _ in range(3))
    counts = np.zeros(points, np.int64)
    for p in range(points):
        present = [table[t][np.isfinite(table[t][:, p]), p] for t in tasks]
        n = min(len(x) for x in present)
        counts[p] = n
        if n == 0:
            continue
        matrix = np.stack([x[:n] for x in present], axis=1)  # (n runs, tasks)
        est = stats.interval_estimate(matrix, "iqm", reps, seed)
        point[p] = est.point
        if n >= 2:  # one run gives no interval
            low[p], high[p] = est.low, est.high
    return {"point": point, "low": low, "high": high, "runs": counts}
