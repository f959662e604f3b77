"""Ingest throughput: this toolkit's reader vs a plain pandas read_json(lines=True) loop.

Run: .venv/bin/python bench/bench_ingest.py [--seeds 5] [--games 26]
Writes 26 games x 5 seeds x 2 methods synthetic runs (metrics.jsonl ~400-800 lines of ~50 keys,
scores.jsonl ~100-300 episodes) into a temp dir, then times: pandas, our ingest without cache,
our ingest from the parquet cache. Synthetic data: it measures reading, never results.
"""

import argparse
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=26)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_runs(root, args.games, args.seeds)
        runs = ingest.discover([str(root)])
        mb = jsonl_bytes(runs) / 1e6
        print(f"{len(runs)} runs, {mb:.0f} MB of JSONL")
        t_pandas, _ = timed(lambda: pandas_loop(runs))
        t_ours, data = timed(lambda: ingest.ingest(runs, cache=False))
        t_first, _ = timed(lambda: ingest.ingest(runs, cache=True))  # parses and writes the cache
        t_cached, cached = timed(lambda: ingest.ingest(runs, cache=True))
        assert cached.metrics.equals(data.metrics) and cached.scores.equals(data.scores)
        print(f"pandas read_json(lines=True) loop: {t_pandas:6.2f} s  {mb / t_pandas:6.0f} MB/s")
        print(f"dreamer-report ingest (no cache):  {t_ours:6.2f} s  {mb / t_ours:6.0f} MB/s "
              f"({data.metrics.height:,} metric rows, {data.scores.height:,} score rows)")
        print(f"dreamer-report ingest (write cache): {t_first:6.2f} s")
        print(f"dreamer-report ingest (from cache): {t_cached:6.2f} s  {mb / t_cached:6.0f} MB/s equivalent")


if __name__ == "__main__":
    main()
