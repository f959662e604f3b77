"""Matmul and convolution FLOPs of one population update, one arm against mixed arms.

    .venv/bin/python bench/bench_mixed_flops.py --members 48 [--size size1m]

Builds a CartPole population of N members twice, once with one arm and once with the shift
study's three arms (baseline, adapt, placebo) taking turns, traces its update (nothing is
compiled or run) and counts its matmul and convolution FLOPs with every scan step counted
(bench/flops.py). Unlike a timing, the count does not depend on what else the machine runs,
so it shows exactly whether mixed arms cost extra work. Also runs against an older tree
(bench/mixed_before_after.sh), whose population agent had another interface: `update_fn`
finds the update under either.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import record  # noqa: E402
from bench_population import MIXED, build  # noqa: E402
from bench_train import random_batch  # noqa: E402
from flops import count_flops  # noqa: E402


def update_fn(agent):
    """The population's jitted update and its batch converter, in this tree or an older one
    (there: `_train_fn(hook)` and `_host_data`)."""
    if callable(getattr(agent, "_train_fn", None)) and hasattr(agent, "hook"):
        return agent._train_fn(agent.hook), agent.solo._host_data
    return agent._train_fn, agent.solo.host_data


def gflops(members, size):
    agent, configs = build("cartpole", size, members, "cpu")
    B, T = configs[0].batch_size, configs[0].batch_length
    stack = sys.modules[type(agent).__module__].stack
    data = stack([random_batch(B, T, seed=k, task="cartpole", agent=agent.solo) for k in range(len(configs))])
    fn, host = update_fn(agent)
    return count_flops(fn, agent.state, agent.init_train(B), host(data), agent.scalars) / 1e9


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=48)
    p.add_argument("--size", default="size1m")
    args = p.parse_args()
    jax.config.update("jax_platforms", "cpu")
    one, mixed = gflops(str(args.members), args.size), gflops(f"{args.members}:mixed", args.size)
    print(f"FLOPs of one update, {args.members} CartPole {args.size} members (traced, every scan step counted)")
    print()
    print("| arms | GFLOP per update | x one arm |")
    print("|---|---|---|")
    print(f"| one | {one:.2f} | 1.00 |")
    print(f"| mixed ({len(MIXED)} arms) | {mixed:.2f} | {mixed / one:.2f} |")


if __name__ == "__main__":
    record.run("bench_mixed_flops", main)
