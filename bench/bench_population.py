"""Aggregate throughput of a population against its size, with the solo run beside it.

    .venv/bin/python bench/bench_population.py --task cartpole --size size1m \
        --members 1,2,4,8,16,64,48:mixed [--updates 5] [--platform cpu|cuda] [--dry-run]

For each population size N (and `solo`: the plain agent, not vmapped, same config)
a fresh process builds the agent for N members (seeds 0..N-1, one arm; `N:mixed`:
the shift study's three arms, baseline, adapt and placebo, taking turns), compiles
the update, and times it on random replay-shaped data (median of --updates after
a warm-up); then times acting: one policy call for all members plus one step of
each member's real env (CartPole: gymnasium; Atari: ale-py Alien), --act-steps
times. Printed per row: compile seconds, seconds per update, aggregate updates/s
(N / seconds per update), its ratio to the solo row, aggregate env steps/s, peak
host RSS and peak device memory (GPU only). --dry-run: the debug model, N = 1, 2,
one update, for tests. The machine is shared: compare ratios within one run. Not a test.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import numpy as np  # noqa: E402
import record  # noqa: E402
from bench_train import load_config, peak_device_mb, random_batch, spaces  # noqa: E402

from dreamerv3 import agent as agentlib  # noqa: E402
from dreamerv3 import envs as envlib  # noqa: E402
from dreamerv3 import learner  # noqa: E402

TASKS = {"cartpole": "gym_CartPole-v1", "atari": "atari100k_alien"}
# The shift study's arms (members of one population differ only in these).
MIXED = [
    {"agent.imag_adapt.enabled": False},
    {"agent.imag_adapt.enabled": True, "agent.imag_adapt.mode": "rule"},
    {
        "agent.imag_adapt.enabled": True,
        "agent.imag_adapt.mode": "placebo",
        "agent.imag_adapt.placebo_rate": 0.11,
        "agent.imag_adapt.placebo_severity": 0.2,
    },
]


def build(task, size, members, platform):
    """The agent ('solo' or N members) and its configs."""
    config = load_config(size, "auto", task="alien" if task == "atari" else "cartpole", platform=platform)
    obs, act = spaces("alien" if task == "atari" else "cartpole")
    if members == "solo":
        return agentlib.Agent(obs, act, config), [config]
    count, _, arms = members.partition(":")
    arms = MIXED if arms == "mixed" else [{}]
    configs = [config.update({"seed": k, **arms[k % len(arms)]}) for k in range(int(count))]
    return learner.Population(obs, act, configs), configs


def time_updates(agent, configs, task, updates):
    """(compile s, median s per update)."""
    B, T = configs[0].batch_size, configs[0].batch_length
    kind = "alien" if task == "atari" else "cartpole"
    solo = isinstance(agent, agentlib.Agent)
    batches = [random_batch(B, T, seed=k, task=kind, agent=agent if solo else agent.solo) for k in range(len(configs))]
    data = batches[0] if solo else learner.stack(batches)
    carry = agent.init_train(B)
    start = time.perf_counter()
    carry, _, metrics = agent.train_step(carry, data)  # compiles, then runs once
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(updates):
        start = time.perf_counter()
        carry, _, metrics = agent.train_step(carry, data)  # metrics come back to the host
        times.append(time.perf_counter() - start)
    return compile_s, statistics.median(times)


def time_acting(agent, configs, task, steps):
    """Aggregate env steps/s: one policy call for every member, then each member's env."""
    envs = [envlib.make_env(TASKS[task], c, 0) for c in configs]
    obs = [env.step({"action": np.zeros((), np.int32), "reset": True}) for env in envs]
    solo = isinstance(agent, agentlib.Agent)
    carry = agent.init_policy(1)
    keys = (*(agent.solo if not solo else agent).obskeys, "is_first")
    elapsed = 0.0
    for i in range(steps + 1):
        start = time.perf_counter()
        batch = {k: np.stack([o[k] for o in obs])[:, None] for k in keys}
        if solo:
            carry, act, _ = agent.policy(carry, {k: v[0] for k, v in batch.items()})
            actions = act["action"][None]
        else:
            carry, act, _ = agent.policy(carry, batch)
            actions = act["action"]
        obs = [
            env.step({"action": actions[k, 0], "reset": bool(o["is_last"])})
            for k, (env, o) in enumerate(zip(envs, obs))
        ]
        if i:  # the first call compiles
            elapsed += time.perf_counter() - start
    for env in envs:
        env.close()
    return len(envs) * steps / elapsed


def one_row(args):
    agent, configs = build(args.task, args.size, args.one, args.platform)
    compile_s, per_update = time_updates(agent, configs, args.task, args.updates)
    env_sps = time_acting(agent, configs, args.task, args.act_steps)
    n = len(configs)
    print(
        json.dumps(
            {
                "members": args.one,
                "n": n,
                "compile_s": compile_s,
                "per_update": per_update,
                "updates_per_s": n / per_update,
                "env_steps_per_s": env_sps,
                "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "device_mb": peak_device_mb(),
            }
        )
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=sorted(TASKS), default="cartpole")
    p.add_argument("--size", default="size1m")
    p.add_argument("--members", default="1,2,4,8,16,64")
    p.add_argument("--updates", type=int, default=5)
    p.add_argument("--act-steps", type=int, default=50)
    p.add_argument("--platform", default="cpu")
    p.add_argument("--limit", type=float, default=900, help="seconds per row")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--one", help=argparse.SUPPRESS)  # a child process: one row, as JSON
    args = p.parse_args()
    if args.dry_run:
        args.size, args.members, args.updates, args.act_steps = "debug", "1,2:mixed", 1, 3
    jax.config.update("jax_platforms", args.platform if args.platform == "cpu" else f"{args.platform},cpu")
    if args.one:
        return one_row(args)
    rows = []
    for members in ["solo", *args.members.split(",")]:
        cmd = [
            sys.executable,
            __file__,
            "--json",
            "",
            "--one",
            members,
            "--task",
            args.task,
            "--size",
            args.size,
            "--updates",
            str(args.updates),
            "--act-steps",
            str(args.act_steps),
            "--platform",
            args.platform,
        ]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.limit)
        except subprocess.TimeoutExpired:
            rows.append({"members": members, "error": f"over {args.limit:.0f} s"})
            continue
        lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
        if out.returncode or not lines:
            tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
            rows.append({"members": members, "error": f"rc {out.returncode}: {tail[:120]}"})
            continue
        rows.append(json.loads(lines[-1]))
        print(f"# {members}: {lines[-1]}", file=sys.stderr, flush=True)
    print(table(rows, args))


def table(rows, args):
    solo = next((r for r in rows if r["members"] == "solo" and "error" not in r), None)
    device = jax.devices()[0].device_kind if args.platform != "cpu" else os.uname().machine
    lines = [
        f"{args.task} {args.size} on {args.platform} ({device}), jax {jax.__version__}, "
        f"{time.strftime('%Y-%m-%d')}, median of {args.updates} updates, "
        f"load average {os.getloadavg()[0]:.1f}",
        "",
        "| members | compile s | s/update | updates/s (all) | x solo | env steps/s (all) | peak RSS MB | device MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['members']} | {r['error']} | | | | | | |")
            continue
        ratio = r["updates_per_s"] / solo["updates_per_s"] if solo else float("nan")
        lines.append(
            f"| {r['members']} | {r['compile_s']:.1f} | {r['per_update']:.3f} | "
            f"{r['updates_per_s']:.2f} | {ratio:.2f} | {r['env_steps_per_s']:.0f} | "
            f"{r['rss_mb']:.0f} | {r['device_mb']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    record.run("bench_population", main)  # the table also goes to bench/results/bench_population.json
