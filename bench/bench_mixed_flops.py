"""Matmul and convolution FLOPs of one population update, one arm against mixed arms.

    .venv/bin/python bench/bench_mixed_flops.py --members 48 [--size size1m] [--time-members 24 --rounds 3]

Builds a CartPole population of N members twice, once with one arm and once with the shift
study's three arms (baseline, adapt, placebo) taking turns, traces its update (nothing is
compiled or run) and counts its matmul and convolution FLOPs with every scan step counted
(bench/flops.py). Unlike a timing, the count does not depend on what else the machine runs,
so it shows exactly whether mixed arms cost extra work. With --time-members M, both updates
of M members are also compiled in this one process and timed alternately (one arm, mixed, one
arm, ...), so a change in the machine's load hits both alike. Also runs against an older tree
(bench/mixed_before_after.sh), whose population agent had another interface: `update_fn`
finds the update under either.
"""

import argparse
import os
import statistics
import sys
import time

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


def prepared(members, size):
    """(the population, its jitted update, its arguments) for `members` ('N' or 'N:mixed')."""
    agent, configs = build("cartpole", size, members, "cpu")
    B, T = configs[0].batch_size, configs[0].batch_length
    stack = sys.modules[type(agent).__module__].stack
    data = stack([random_batch(B, T, seed=k, task="cartpole", agent=agent.solo) for k in range(len(configs))])
    fn, host = update_fn(agent)
    return agent, fn, (agent.init_train(B), host(data), agent.scalars)


def gflops(members, size):
    agent, fn, args = prepared(members, size)
    return count_flops(fn, agent.state, *args) / 1e9


def alternate(members, size, rounds):
    """Median seconds per update of the one-arm and the mixed population of `members`, timed
    alternately after one warm-up call each."""
    runs = {arms: prepared(f"{members}{arms}", size) for arms in ("", ":mixed")}
    times = {arms: [] for arms in runs}
    for round_ in range(rounds + 1):
        for arms, (agent, fn, args) in runs.items():
            state = jax.block_until_ready(jax.tree.map(lambda x: x.copy(), agent.state))
            start = time.perf_counter()
            out = fn(state, *args)  # the update donates the state it is given: a copy each call
            jax.block_until_ready(out)
            if round_:  # round 0 compiles
                times[arms].append(time.perf_counter() - start)
    return statistics.median(times[""]), statistics.median(times[":mixed"])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--members", type=int, default=48)
    p.add_argument("--size", default="size1m")
    p.add_argument("--time-members", type=int, default=0, help="also time both updates of this many members")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    jax.config.update("jax_platforms", "cpu")
    one, mixed = gflops(str(args.members), args.size), gflops(f"{args.members}:mixed", args.size)
    print(f"FLOPs of one update, {args.members} CartPole {args.size} members (traced, every scan step counted)")
    print()
    print("| arms | GFLOP per update | x one arm |")
    print("|---|---|---|")
    print(f"| one | {one:.2f} | 1.00 |")
    print(f"| mixed ({len(MIXED)} arms) | {mixed:.2f} | {mixed / one:.2f} |")
    if args.time_members:
        one_s, mixed_s = alternate(args.time_members, args.size, args.rounds)
        print()
        print(
            f"Seconds per update, {args.time_members} members, median of {args.rounds} alternating rounds in "
            f"one process, load average {os.getloadavg()[0]:.1f}"
        )
        print()
        print("| arms | s/update | x one arm |")
        print("|---|---|---|")
        print(f"| one | {one_s:.3f} | 1.00 |")
        print(f"| mixed ({len(MIXED)} arms) | {mixed_s:.3f} | {mixed_s / one_s:.2f} |")


if __name__ == "__main__":
    record.run("bench_mixed_flops", main)
