"""Ingest throughput: this toolkit's reader vs a plain pandas read_json(lines=True) loop.

Run: .venv/bin/python bench/bench_ingest.py [--seeds 5] [--games 26] [--repeats 3] [--root DIR] [--s3]
Writes 26 games x 5 seeds x 2 methods synthetic runs (metrics.jsonl ~400-800 lines of ~50 keys,
scores.jsonl ~100-300 episodes) into a temp dir (or DIR, reused if it already holds runs), then
times, `--repeats` times each, interleaved: pandas, our ingest without cache, our ingest from
the parquet cache; prints medians and the load average (the machine may be shared).
With --s3, the same runs are also uploaded to a local S3 server (moto, tests/object_servers.py)
and found + read from s3:// (listing, concurrent fetches, parse), against local find + read,
with the CPU seconds of this process and of the server (both share the machine's cores).
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

import object_servers  # noqa: E402
import record  # noqa: E402
from runfactory import write_run  # noqa: E402

from analysis import atari, ingest, remote  # noqa: E402


def make_runs(root: Path, games: int, seeds: int) -> None:
    rng = np.random.default_rng(0)
    for task in atari.TASKS[:games]:
        for method in ("baseline", "adapt"):
            for seed in range(seeds):
                write_run(
                    root,
                    task,
                    method,
                    seed,
                    episodes=int(rng.integers(100, 301)),
                    log_lines=int(rng.integers(400, 801)),
                    extra_keys=40,
                )


def jsonl_bytes(runs) -> int:
    return sum((r.path / n).stat().st_size for r in runs for n in ingest.LOGS if (r.path / n).is_file())


def pandas_loop(runs) -> int:
    rows = 0
    for run in runs:
        for name in ingest.LOGS:
            rows += len(pd.read_json(run.path / name, lines=True))
    return rows


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def cpu_seconds(server) -> tuple[float, float]:
    """User + system CPU seconds of this process (every thread) and of the server process."""
    import psutil

    return tuple(sum(psutil.Process(pid).cpu_times()[:2]) for pid in (os.getpid(), server.process.pid))


def object_storage_row(root: Path, repeats: int, runs, mb: float) -> None:
    """Runs/s and MB/s of discover + ingest from a local moto S3 server against the local folder."""
    import fsspec

    server = object_servers.start_s3()
    try:
        object_servers.set_env(server.env)
        fs = fsspec.filesystem("s3", skip_instance_cache=True)
        fs.mkdir("bench-runs")
        fs.put(str(root) + "/", "bench-runs/runs", recursive=True)
        times = {"local": [], "s3": []}
        cpu = {"local": [], "s3": []}  # (this process, all threads; the moto server) CPU seconds
        for _ in range(repeats):
            for name, spec in (("local", str(root)), ("s3", "s3://bench-runs/runs")):
                remote._RUNS.clear()  # a fresh process's state: nothing fetched yet
                remote._STAGE.clear()
                before = cpu_seconds(server)
                t, found = timed(lambda: ingest.ingest(ingest.discover([spec]), cache=False))  # noqa: B023 (called within this iteration)
                cpu[name].append(tuple(b - a for a, b in zip(before, cpu_seconds(server))))
                times[name].append(t)
                assert len(found.runs) == len(runs) and found.scores.height > 0
        for name, label in (("local", "local folder"), ("s3", "s3:// (moto)")):
            med = statistics.median(times[name])
            client, moto = (statistics.median(c[i] for c in cpu[name]) for i in (0, 1))
            print(
                f"find + ingest, {label:13}: {med:6.2f} s  {len(runs) / med:6.0f} runs/s  {mb / med:6.1f} MB/s  "
                f"(runs: {' '.join(f'{v:.2f}' for v in times[name])} s; CPU s: client {client:.2f}, "
                f"moto server {moto:.2f})"
            )
        print(f"s3:// / local rate: {statistics.median(times['local']) / statistics.median(times['s3']):.2f}")
    finally:
        server.stop()


def measure(root: Path, repeats: int, s3: bool = False) -> None:
    with tempfile.TemporaryDirectory() as cache:  # the parquet cache of this benchmark only
        _measure(root, repeats, Path(cache), s3)


def _measure(root: Path, repeats: int, cache: Path, s3: bool) -> None:
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
    print(
        f"pandas read_json(lines=True) loop: {med['pandas']:6.2f} s  {mb / med['pandas']:6.0f} MB/s  "
        f"(runs: {runs_of['pandas']} s)"
    )
    print(
        f"dreamer-report ingest (no cache):  {med['ours']:6.2f} s  {mb / med['ours']:6.0f} MB/s  "
        f"{med['pandas'] / med['ours']:.1f}x pandas  (runs: {runs_of['ours']} s; "
        f"{data.metrics.height:,} metric rows, {data.scores.height:,} score rows)"
    )
    print(
        f"dreamer-report ingest (from cache): {med['cached']:5.2f} s  {mb / med['cached']:6.0f} MB/s equivalent  "
        f"{med['pandas'] / med['cached']:.0f}x pandas  (runs: {runs_of['cached']} s)"
    )
    if s3:
        object_storage_row(root, repeats, runs, mb)
    print(f"load average after: {load_average()} (medians of {repeats}; the machine may be shared)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=26)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--root", type=Path, help="keep the synthetic runs here (reused when present)")
    parser.add_argument("--s3", action="store_true", help="also read the runs from a local S3 server (moto)")
    args = parser.parse_args()
    if args.root is not None:
        if not args.root.is_dir() or not any(args.root.iterdir()):
            make_runs(args.root, args.games, args.seeds)
        measure(args.root, args.repeats, args.s3)
        return
    with tempfile.TemporaryDirectory() as tmp:
        make_runs(Path(tmp), args.games, args.seeds)
        measure(Path(tmp), args.repeats, args.s3)


if __name__ == "__main__":
    record.run("bench_ingest", main)
