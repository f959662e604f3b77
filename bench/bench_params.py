"""Parameter count per size preset on Atari100k Alien inputs (no allocation).

        .venv/bin/python bench/bench_params.py [--sizes size1m,size12m,...]

Counts with jax.eval_shape, so even size400m takes seconds and no memory.
Prints the total and the share of each module, and the gap to the preset's
name (the paper's sizes are approximate; the official size1m reports 688,004
on Alien). Not a test.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import record  # noqa: E402
from bench_train import load_config, spaces  # noqa: E402

from dreamerv3 import agent as agentlib  # noqa: E402

SIZES = ("size1m", "size12m", "size25m", "size50m", "size100m", "size200m", "size400m")


def nominal(size):
    return float(size[len("size") : -1]) * 1e6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default=",".join(SIZES))
    args = parser.parse_args()
    rows = []
    for size in args.sizes.split(","):
        counts = agentlib.count_params(*spaces(), load_config(size, "auto"))
        total = counts.pop("total")
        parts = " ".join(f"{k} {v / total:.0%}" for k, v in sorted(counts.items()))
        rows.append((size, total, total / nominal(size) - 1, parts))
    print("Parameters per size preset, on Atari100k Alien inputs; modules: share of the total")
    print("| preset | parameters | vs its name | modules |")
    print("|---|---|---|---|")
    for size, total, gap, parts in rows:
        print(f"| {size} | {total:,} | {gap:+.0%} | {parts} |")


if __name__ == "__main__":
    record.run("bench_params", main)
