"""Atari100k env throughput on this CPU: agent steps/s of `atari100k_alien`.

Run: .venv/bin/python bench/bench_env.py [--steps 2000] [--repeats 3]
One agent step = 4 emulator frames + max-pool + 64x64 resize (the trainer's
env, dreamerv3/envs/atari.py), random actions, episodes reset as they end.
Also times the raw emulator (ALE act only) and the image work alone, so the
table shows where the time goes. Prints a Markdown table.
"""

import argparse
import sys
import time
from pathlib import Path

import elements
import numpy as np
from ruamel.yaml import YAML

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import record  # noqa: E402

from dreamerv3 import envs  # noqa: E402


def make_env():
    configs = YAML(typ="safe").load((Path(envs.__file__).parents[1] / "configs.yaml").read_text())
    return envs.make_env("atari100k_alien", elements.Config(configs["defaults"]))


def bench_env(steps, rng):
    env = make_env()
    env.step({"action": 0, "reset": True})
    start = time.perf_counter()
    for _ in range(steps):
        env.step({"action": int(rng.integers(18)), "reset": False})
    return steps / (time.perf_counter() - start)


def bench_emulator(steps, rng):
    env = make_env()
    env.step({"action": 0, "reset": True})
    start = time.perf_counter()
    for _ in range(steps):
        action = env.actions[int(rng.integers(18))]
        for _ in range(4):
            env.ale.act(action)
        if env.ale.game_over():
            env.ale.reset_game()
    return steps / (time.perf_counter() - start)


def bench_image(steps):
    env = make_env()
    env.step({"action": 0, "reset": True})
    start = time.perf_counter()
    for _ in range(steps):
        env._obs(0.0)
    return steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    # (name, runs, emulator frames per measured step)
    rows = [
        ("env.step (4 frames + pool + resize)", [bench_env(args.steps, rng) for _ in range(args.repeats)], 4),
        ("emulator only (4 x ale.act)", [bench_emulator(args.steps, rng) for _ in range(args.repeats)], 4),
        ("pool + resize only", [bench_image(args.steps) for _ in range(args.repeats)], 0),
    ]
    print(f"\natari100k_alien, {args.steps} agent steps x {args.repeats} repeats, random actions\n")
    print("| what | agent steps/s (median) | min | max | env frames/s (median) |")
    print("|---|---|---|---|---|")
    for name, values, frames_per_step in rows:
        med = float(np.median(values))
        frames = f"{frames_per_step * med:,.0f}" if frames_per_step else "-"
        print(f"| {name} | {med:,.0f} | {min(values):,.0f} | {max(values):,.0f} | {frames} |")


if __name__ == "__main__":
    record.run("bench_env", main)
