"""Ingest throughput: this toolkit's reader vs a plain pandas read_json(lines=True) loop.

Run: .venv/bin/python bench/bench_ingest.py [--seeds 5] [--games 26] [--repeats 3] [--root DIR]
Writes 26 games x 5 seeds x 2 methods synthetic runs (metrics.jsonl ~400-800 lines of ~50 keys,
scores.jsonl ~100-300 episodes) into a temp dir (or DIR, reused if it already holds runs), then
times, `--repeats` times each, interleaved: pandas, our ingest without cache, our ingest from
the parquet cache; prints medians and the load average (the machine may be shared).
Synthetic data: it measures reading, never results.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from analysis import atari, ingest  # noqa: E402
from runfactory import write_run  # noqa: E402


def make_runs(root: Path, games: int, seeds: int) -> None:
    rng = np.random.default_rng(0)
    for task in atari.TASKS[:games]:
        for method in ("baseline", "adapt"):
            for seed in range(seeds):
                write_run(root, task, method, seed, episodes=int(rng.integers(100, 301)),
                          log_lines=int(rng.integers(400, 801)), extra_keys=40)


def jsonl_bytes(runs) -> int:
    return sum((r.path / n).stat().st_size for r in runs for n in ingest.RUN_FILES if (r.path / n).is_file())


def pandas_loop(runs) -> int:
    rows = 0
    for run in runs:
        for name in ingest.RUN_FILES:
            rows += len(pd.read_json(run.path / name, lines=True))
    return rows


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def measure(root: Path, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as cache:  # the parquet cache of this benchmark only
        _measure(root, repeats, Path(cache))


def _measure(root: Path, repeats: int, cache: Path) -> None:
    runs = ingest.discover([str(root)])
    mb = jsonl_bytes(runs) / 1e6
    print(f"{len(runs)} runs, {mb:.0f} MB of JSONL; load average before: {load_average()}")
    times = {"pandas": [], "ours": [], "cached": []}
    for _ in range(repeats):
        times["pandas"].append(timed(lambda: pandas_loop(runs))[0])
        t_ours, data = timed(lambda: ingest.ingest(runs, cache=False))
        times["ours"].append(t_ours)
        ingest.ingest(runs, cache=cache)  # parses and writes the cache if it is stale
        t_cached, cached = timed(lambda: ingest.ingest(runs, cache=cache))
        times["cached"].append(t_cached)
        assert cached.metrics.equals(data.metrics) and cached.scores.equals(data.scores)
    med = {name: statistics.median(values) for name, values in times.items()}
    runs_of = {name: " ".join(f"{v:.2f}" for v in values) for name, values in times.items()}
    print(f"pandas read_json(lines=True) loop: {med['pandas']:6.2f} s  {mb / med['pandas']:6.0f} MB/s  "
          f"(runs: {runs_of['pandas']} s)")
    print(f"dreamer-report ingest (no cache):  {med['ours']:6.2f} s  {mb / med['ours']:6.0f} MB/s  "
          f"{med['pandas'] / med['ours']:.1f}x pandas  (runs: {runs_of['ours']} s; "
          f"{data.metrics.height:,} metric rows, {data.scores.height:,} score rows)")
    print(f"dreamer-report ingest (from cache): {med['cached']:5.2f} s  {mb / med['cached']:6.0f} MB/s equivalent  "
          f"{med['pandas'] / med['cached']:.0f}x pandas  (runs: {runs_of['cached']} s)")
    print(f"load average after: {load_average()} (medians of {repeats}; the machine may be shared)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=26)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--root", type=Path, help="keep the synthetic runs here (reused when present)")
    args = parser.parse_args()
    if args.root is not None:
        if not args.root.is_dir() or not any(args.root.iterdir()):
            make_runs(args.root, args.games, args.seeds)
        measure(args.root, args.repeats)
        return
    with tempfile.TemporaryDirectory() as tmp:
        make_runs(Path(tmp), args.games, args.seeds)
        measure(Path(tmp), args.repeats)


if __name__ == "__main__":
    main()
