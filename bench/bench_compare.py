"""Time `compare` end to end, first run (parse + write cache) and second run (from the cache).

Run: .venv/bin/python bench/bench_compare.py [--games 26] [--seeds 5] [--reps 50000]
Synthetic runs from tests/runfactory.py (26 games x 5 seeds x 2 methods by default): timing only.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import record  # noqa: E402
from runfactory import write_study  # noqa: E402

from analysis import atari, compare, figures, ingest  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=26)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_study(root, tasks=atari.TASKS[: args.games], seeds=args.seeds, episodes=200, log_lines=600, extra_keys=40)
        base, adapt = [str(root / "*_baseline")], [str(root / "*_adapt")]
        for label in ("first (parse + write cache)", "second (from cache)"):
            start = time.perf_counter()
            runs = ingest.discover(base + adapt)
            ingest.ingest(runs, metric_keys=compare.COMPARE_METRIC_KEYS)
            t_ingest = time.perf_counter() - start
            start = time.perf_counter()
            result = compare.compare([base, adapt], reps=args.reps)
            t_compare = time.perf_counter() - start
            start = time.perf_counter()
            rendered = {stem: figures.render(fig) for stem, fig in compare.figures_of(result).items()}
            compare.write_outputs(result, root / "out", rendered)
            t_write = time.perf_counter() - start
            print(
                f"{label}: ingest alone {t_ingest:.2f} s; compare() {t_compare:.2f} s "
                f"({args.reps:,} reps, {len(result.tasks)} tasks); figures + files {t_write:.2f} s"
            )


if __name__ == "__main__":
    record.run("bench_compare", main)
