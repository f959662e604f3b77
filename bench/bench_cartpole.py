"""Does the trainer learn? CartPole-v1 on CPU against a wall-clock budget.

        .venv/bin/python bench/bench_cartpole.py [--seeds 0,1,2] [--parallel 3]
                [--minutes 30] [--root artifacts] [--configs cartpole,size1m]

Runs the sweep studies/cartpole_learning/sweep.yaml (`--configs cartpole size1m`, one run
per seed into <root>/cartpole_dreamerv3/seed<N>/, all at once with --parallel 3,
so the seeds share the 2 cores: a harder budget than one at a time), each stopped
by `run.duration` after --minutes. While they run it polls every scores.jsonl and
writes `wall_clock.csv` (step, seconds since launch, score) beside it, so the time
to the goal counts Python start-up, JIT compiles and env steps, not only updates.
Prints per seed the first time the mean return of the last 10 episodes reached 200
(random play: about 22) and the final mean. Not a test.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import record  # noqa: E402

from sweep import launch  # noqa: E402

SWEEP = ROOT / "studies" / "cartpole_learning" / "sweep.yaml"
GOAL, WINDOW = 200.0, 10


def run_dir(out, seed):
    """seed<N>/ (a sweep's run), else the newest seed<N>_<timestamp>/ (older runs)."""
    found = sorted(Path(out).glob(f"seed{seed}/")) or sorted(Path(out).glob(f"seed{seed}_*/"))
    return found[-1] if found else None


def poll(seeds, started, seen, out):
    """Append the new episodes of each seed to its wall_clock.csv, timed now."""
    for seed in seeds:
        folder = Path(out) / f"seed{seed}"
        if not (folder / "scores.jsonl").is_file():
            continue
        lines = (folder / "scores.jsonl").read_text().splitlines()
        done = [json.loads(line) for line in lines[seen.get(seed, 0) :] if line.endswith("}")]
        if not done:
            continue
        seen[seed] = seen.get(seed, 0) + len(done)
        wall = folder / "wall_clock.csv"
        new = not wall.exists()
        with open(wall, "a") as f:
            if new:
                f.write("step,seconds,score\n")
            for row in done:
                f.write(f"{row['step']},{time.time() - started[seed]:.1f},{row['episode/score']}\n")


def read_curve(out, seed):
    """(run folder, steps, seconds, trailing mean of the last WINDOW scores) from wall_clock.csv."""
    folder = run_dir(out, seed)
    rows = [line.split(",") for line in (folder / "wall_clock.csv").read_text().splitlines()[1:]]
    scores = [float(r[2]) for r in rows]
    means = [sum(scores[max(0, i - WINDOW + 1) : i + 1]) / min(i + 1, WINDOW) for i in range(len(scores))]
    return folder, [int(r[0]) for r in rows], [float(r[1]) for r in rows], means


def summary(out, seed):
    """(folder, episodes, (step, seconds) when a full window first reached GOAL or None, final mean)."""
    folder, steps, seconds, means = read_curve(out, seed)
    first = next(((steps[i], seconds[i]) for i in range(WINDOW - 1, len(means)) if means[i] >= GOAL), None)
    return folder, len(means), first, means[-1]


def run_all(seeds, args):
    """The sweep, with a poll of every running seed's scores each tick."""
    started, seen = {}, {}
    prepared = launch.prepare(
        SWEEP,
        [
            f"seeds=[{','.join(map(str, seeds))}]",
            f"configs=[{args.configs}]",
            f"budget.duration={int(args.minutes * 60)}",
        ],
        root=args.root,
    )

    def tick(running):
        for process in running.values():
            started.setdefault(process.job.runs[0].seed, process.started)
        poll(list(started), started, seen, args.out)

    results = launch.run(prepared, "local", workers=args.parallel, on_tick=tick)
    poll(list(started), started, seen, args.out)
    for result in results:
        if result.status not in ("ok", "skipped"):
            print(f"{result.name}: {result.status}; see {result.log}")


def report(seeds, args):
    print(
        f"CartPole-v1, --configs {args.configs.replace(',', ' ')}, {args.minutes:g} min per seed, "
        f"{args.parallel} at a time on {os.cpu_count()} cores; goal: mean of last {WINDOW} >= {GOAL:g}"
    )
    print(f"{'seed':>4} {'episodes':>8} {'goal at step':>12} {'goal at min':>11} {'final mean':>10}  run")
    for seed in seeds:
        folder, episodes, first, final = summary(args.out, seed)
        step, minutes = (f"{first[0]:,}", f"{first[1] / 60:.1f}") if first else ("never", "-")
        print(f"{seed:>4} {episodes:>8} {step:>12} {minutes:>11} {final:>10.1f}  {folder.name}")
    print(f"curve: {plot(args.out, seeds, args.minutes)}")


def plot(out, seeds, minutes):
    """curve.png: each seed's return (mean of the last 10 episodes) against wall-clock minutes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for seed in seeds:
        _, _, seconds, means = read_curve(out, seed)
        ax.plot([t / 60 for t in seconds], means, lw=1.5, label=f"seed {seed}")
    ax.axhline(GOAL, color="0.3", ls="--", lw=1, label=f"goal {GOAL:g}")
    ax.axhline(22, color="0.3", ls=":", lw=1, label="random (~22)")
    ax.axvline(minutes, color="0.6", lw=1)
    ax.set_xlabel("wall-clock minutes (3 seeds sharing 2 CPU cores)")
    ax.set_ylabel(f"episode return (mean of last {WINDOW})")
    ax.set_title("DreamerV3 (this trainer), CartPole-v1, size1m, CPU")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path = Path(out) / "curve.png"
    fig.savefig(path, dpi=120)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--parallel", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument(
        "--root", default="artifacts", help="the sweep root: runs go to <root>/cartpole_dreamerv3/seed<N>/"
    )
    parser.add_argument("--configs", default="cartpole,size1m")
    parser.add_argument(
        "--report-only", action="store_true", help="no runs: print the table and draw curve.png from the runs in --out"
    )
    args = parser.parse_args()
    args.out = str(Path(args.root) / "cartpole_dreamerv3")
    seeds = [int(s) for s in args.seeds.split(",")]
    if not args.report_only:
        run_all(seeds, args)
    report(seeds, args)


if __name__ == "__main__":
    record.run("bench_cartpole", main)
