"""Measure `dreamer-report watch` on many runs being appended to: CPU per refresh and latency
from a line's write to the refresh that displays it.

Run: .venv/bin/python bench/bench_watch.py [--runs 260] [--seconds 30] [--interval 2] [--rate 1]

A writer process appends to every run `--rate` metrics lines per second (about 50 keys, as the
trainer logs) and an episode line to one run in five each second; each line carries its wall
write time under `bench/t_write`. This process runs the watcher as `dreamer-report watch --html`
does in a 50-line terminal (refresh, the 42 rows that fit rendered by rich, the HTML page of all
runs written) every `--interval` s and,
for every new row of a refresh, takes display time minus write time. Synthetic runs in a temp
folder, each starting with a history (100 metrics lines, 50 episodes), read once by the first
refresh. Not a test: never run by `make test`.
"""

import argparse
import io
import json
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent.parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

import record  # noqa: E402
from runfactory import write_run  # noqa: E402

from analysis import watch  # noqa: E402

KEYS = [f"train/k{i:02d}" for i in range(44)] + [
    "train/loss/dyn",
    "fps/policy",
    "train/imag_adapt/active",
    "train/imag_adapt/horizon_eff",
]


def make_runs(root: Path, count: int) -> list[Path]:
    games = ["alien", "pong", "breakout", "boxing", "freeway", "kangaroo", "krull", "qbert", "seaquest", "hero"]
    return [
        write_run(
            root,
            f"atari100k_{games[i % len(games)]}",
            "adapt",
            i // len(games),
            frames=100_000,
            episodes=50,
            log_lines=100,
            extra_keys=40,
        )
        for i in range(count)
    ]


def writer(runs: list[Path], seconds: float, rate: float, start: float) -> None:
    """Append to every run `rate` times a second until `seconds` have passed."""
    rng = np.random.default_rng(0)
    step = 100_000
    tick = 0
    while time.time() - start < seconds:
        step += 64
        for i, run in enumerate(runs):
            row = {"step": step, **{k: float(v) for k, v in zip(KEYS, rng.random(len(KEYS)))}}
            row["bench/t_write"] = time.time()
            with open(run / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            if (i + tick) % 5 == 0:
                with open(run / "scores.jsonl", "a") as f:
                    f.write(
                        json.dumps(
                            {
                                "step": step,
                                "episode/score": float(rng.normal(500, 100)),
                                "episode/length": 800.0,
                                "bench/t_write": time.time(),
                            }
                        )
                        + "\n"
                    )
        tick += 1
        time.sleep(max(0.0, start + tick / rate - time.time()))


def refresh_and_show(watcher: watch.Watcher, page: Path, interval: float, shown: int) -> None:
    """What one refresh of `dreamer-report watch --html` does: read, tabulate, write the page with
    every run, render the `shown` rows that fit the terminal."""
    from rich.console import Console
    from rich.table import Table

    watcher.refresh()
    columns, rows = watcher.table()
    table = Table()
    for column in columns:
        table.add_column(column)
    for row in rows[:shown]:
        table.add_row(*row)
    Console(file=io.StringIO(), width=200).print(table)
    watch.write_atomic(page, watch.render_html(columns, rows, interval, time.strftime("%H:%M:%S")))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=260)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=1.0, help="metrics lines per run per second")
    parser.add_argument("--shown", type=int, default=42, help="rows the terminal shows (a 50-line terminal)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runs = make_runs(root / "runs", args.runs)
        history = sum((r / n).stat().st_size for r in runs for n in ("metrics.jsonl", "scores.jsonl"))
        watcher = watch.Watcher([str(root / "runs")], torn_after=30.0)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        refresh_and_show(watcher, root / "watch.html", args.interval, args.shown)
        first = (time.process_time() - cpu0, time.perf_counter() - wall0)
        start = time.time()
        proc = multiprocessing.Process(target=writer, args=(runs, args.seconds, args.rate, start))
        proc.start()
        cpu, wall, latency, read = [], [], [], []
        before = watcher.bytes_read()
        while proc.is_alive():
            time.sleep(args.interval)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            refresh_and_show(watcher, root / "watch.html", args.interval, args.shown)
            shown = time.time()
            cpu.append(time.process_time() - cpu0)
            wall.append(time.perf_counter() - wall0)
            latency += [
                shown - row["bench/t_write"]
                for state in watcher.runs.values()
                for row in state.new_rows
                if "bench/t_write" in row
            ]
            now_read = watcher.bytes_read()
            read.append(now_read - before)
            before = now_read
        proc.join()
    lat = np.array(latency)
    print(
        f"{args.runs} runs, history {history / 1e6:.1f} MB; writer: {args.rate:g} metrics line/run/s "
        f"({len(KEYS)} keys) + episodes; watch every {args.interval:g} s for {args.seconds:g} s"
    )
    print(f"first refresh (whole history): cpu {first[0]:.2f} s, wall {first[1]:.2f} s")
    print(
        f"refreshes: {len(cpu)}; cpu per refresh median {np.median(cpu) * 1e3:.0f} ms (max {max(cpu) * 1e3:.0f}); "
        f"wall median {np.median(wall) * 1e3:.0f} ms; read per refresh median {np.median(read) / 1e6:.2f} MB"
    )
    print(
        f"write-to-display latency over {lat.size:,} lines: median {np.median(lat):.2f} s, "
        f"p95 {np.percentile(lat, 95):.2f} s, max {lat.max():.2f} s"
    )


if __name__ == "__main__":
    record.run("bench_watch", main)
