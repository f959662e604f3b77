"""Cost of the adaptive-horizon mask per update: adapt vs plain DreamerV3, one run.

    .venv/bin/python bench/bench_imag_adapt.py [--size size1m] [--rounds 6]

Compiles the same agent's update twice, with the adaptive rule's code and without it
(`Agent.update(..., rule=True | False)`; the mask enabled), on Atari100k Alien inputs (random data, same
cost as real data), then times the two alternately (off, on, off, on, ...) so
machine noise hits both alike. Prints the median seconds per update of each,
their ratio, and the FLOPs of each update from XLA's cost analysis (exact, not
noisy; it counts each loop body once, the same loops in both, so the mask's
elementwise work outside them shows in the ratio). Target: the mask costs under 2% per update. Not a test.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jax  # noqa: E402
import record  # noqa: E402
from bench_train import load_config, random_batch, spaces, xla_flops_of  # noqa: E402

from dreamerv3 import agent as agentlib  # noqa: E402


def compile_update(agent, rule, data):
    carry = agent.init_train(data["is_first"].shape[0])
    return agent._train_fn(rule).lower(agent.state, carry, data, agent.scalars).compile(), carry


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="size1m")
    p.add_argument("--rounds", type=int, default=6)
    args = p.parse_args()
    config = load_config(args.size, "auto").update({"agent.imag_adapt.enabled": True, "agent.imag_adapt.warmup": 0})
    agent = agentlib.Agent(*spaces(), config)
    data = agent._put_data(random_batch(config.batch_size, config.batch_length, agent=agent))
    compiled = {hook: compile_update(agent, hook == "on", data) for hook in ("off", "on")}
    times = {"off": [], "on": []}
    for round_ in range(args.rounds + 1):
        for hook, (fn, carry) in compiled.items():
            # Each call gets its own copy: the update donates the state it is given.
            state = jax.block_until_ready(jax.tree.map(lambda x: x.copy(), agent.state))
            start = time.perf_counter()
            out = fn(state, carry, data, agent.scalars)
            jax.block_until_ready(out[2])
            if round_:  # round 0 warms caches up
                times[hook].append(time.perf_counter() - start)
    off, on = (statistics.median(times[h]) for h in ("off", "on"))
    flops = {h: xla_flops_of(fn) for h, (fn, _) in compiled.items()}
    print(
        f"jax {jax.__version__} {jax.default_backend()}, {time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} CPUs, {args.size}, median of {args.rounds} alternating updates, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print("| update | s/update | GFLOP/update |")
    print("|---|---|---|")
    print(f"| DreamerV3 (hook off) | {off:.3f} | {flops['off'] / 1e9:.3f} |")
    print(f"| adapt (hook on) | {on:.3f} | {flops['on'] / 1e9:.3f} |")
    print(f"| ratio on/off | {on / off:.4f} | {flops['on'] / flops['off']:.6f} |")


if __name__ == "__main__":
    record.run("bench_imag_adapt", main)
