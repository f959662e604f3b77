"""Speed of one DreamerV3 update, XLA convs vs fastconv on CPU, or on a GPU.

    .venv/bin/python bench/bench_train.py --size size1m [--impls xla,auto]
        [--updates 5] [--breakdown] [--reps 3] [--platform cpu|cuda]

Builds the agent on Atari100k Alien inputs (64x64x3 uint8 images, 18 discrete
actions; random data, which costs the same as real data), the configured batch
(16 x 64), in the platform's compute dtype (`jax.compute_dtype: auto`: float32
on CPU, bfloat16 on a GPU), and prints per conv implementation: JIT compile
seconds, seconds per update (median over --updates after one warm-up), updates/s,
env steps/s of the real Alien env (one env, random actions), peak RSS, the
update's matmul + conv FLOPs with every scan counted per step (bench/flops.py;
XLA's cost analysis, also printed, counts each loop body once), the float32
matmul rate measured in the same run and the implied floor (FLOPs / matmul
rate). --breakdown also times the
parts of the update as separately jitted functions (encoder, decoder, RSSM
observe, reward/continue heads, imagination, optimizer); the rest (actor-critic
losses, returns, glue) is the update minus their sum. Run one size at a time;
the machine is shared, so compare ratios within one run. Not a test.
"""

import argparse
import contextlib
import fcntl
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import elements  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ninjax as nj  # noqa: E402
import numpy as np  # noqa: E402
import record  # noqa: E402
from flops import count_flops  # noqa: E402

from dreamerv3 import agent as agentlib  # noqa: E402
from dreamerv3 import configs as configlib  # noqa: E402
from dreamerv3 import envs  # noqa: E402
from dreamerv3 import main as mainlib  # noqa: E402

ACTIONS = 18  # Alien's minimal action set


def load_config(size, impl, ynn=None, task="alien", platform="cpu"):
    """The trainer's config for `size` (a size preset, or `debug` for the tiny
    nets the dry run uses); `ynn` 'default' leaves YNNPACK's share of the ops to
    XLA (convs included) instead of `jax.cpu_ynn_fusions`."""
    presets = ("atari100k", size) if task == "alien" else ("cartpole", size)
    name = "atari100k_alien" if task == "alien" else "gym_CartPole-v1"
    config = configlib.from_presets(presets).update({"task": name, "jax.platform": platform, "jax.conv_impl": impl})
    return config.update({"jax.cpu_ynn_fusions": [ynn]}) if ynn else config


def spaces(task="alien"):
    """Alien: 64x64x3 image, 18 actions. CartPole: 4-dim vector, 2 actions (MLPs only)."""
    if task == "alien":
        obs = {"image": elements.Space(np.uint8, (64, 64, 3)), **envs.step_spaces()}
        return obs, {"action": elements.Space(np.int32, (), 0, ACTIONS)}
    obs = {"vector": elements.Space(np.float32, (4,)), **envs.step_spaces()}
    return obs, {"action": elements.Space(np.int32, (), 0, 2)}


def random_batch(B, T, seed=0, task="alien", agent=None):
    """Random replay batch [B, T]; with an agent whose replay_context K > 0, K
    context steps more and the latent state replay stores (agent.ext_space)."""
    ext = getattr(agent, "ext_space", {}) if agent is not None else {}
    T += getattr(agent, "context", 0) if agent is not None else 0
    rng = np.random.default_rng(seed)
    actions = ACTIONS if task == "alien" else 2
    obs = (
        {"image": rng.integers(0, 256, (B, T, 64, 64, 3), dtype=np.uint8)}
        if task == "alien"
        else {"vector": rng.normal(size=(B, T, 4)).astype(np.float32)}
    )
    data = {
        **obs,
        "action": rng.integers(0, actions, (B, T)).astype(np.int32),
        "reward": rng.normal(size=(B, T)).astype(np.float32),
        "is_first": np.zeros((B, T), bool),
        "is_last": np.zeros((B, T), bool),
        "is_terminal": np.zeros((B, T), bool),
    }
    data["is_first"][:, 0] = True
    for key, space in ext.items():
        if np.issubdtype(space.dtype, np.integer):
            data[key] = rng.integers(0, space.high, (B, T, *space.shape)).astype(space.dtype)
        else:
            data[key] = rng.normal(size=(B, T, *space.shape)).astype(space.dtype)
    return data


@contextlib.contextmanager
def exclusive(path):
    """Hold an exclusive lock on `path` (if given) for the block: several bench
    processes compile at once on the host's cores, then time one at a time."""
    if not path:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def median_time(fn, reps):
    jax.block_until_ready(fn())
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gflops(reps, dtype, n=2048):
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32).astype(dtype)
    f = jax.jit(lambda a: a @ a)
    return 2 * n**3 / median_time(lambda: f(a), reps) / 1e9


def env_steps_per_s(steps=300):
    """Real Alien env (ale-py) with random actions, if the env module exists."""
    try:
        from dreamerv3.envs import atari
    except ImportError:
        return float("nan")
    env = atari.Atari("alien")
    rng = np.random.default_rng(0)
    env.step({"action": 0, "reset": True})
    start = time.perf_counter()
    for _ in range(steps):
        env.step({"action": int(rng.integers(ACTIONS)), "reset": False})
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed


def peak_device_mb():
    """Peak bytes the first device's allocator has handed out (GPU; nan on CPU,
    where the process's peak RSS is the figure)."""
    stats = jax.local_devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use", float("nan")) / 2**20


def xla_flops_of(compiled):
    """XLA's cost analysis: counts each loop body once (see bench/flops.py)."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", float("nan")))


class CompiledUpdate:
    """One variant's update, compiled once; `step()` runs and times one update."""

    def __init__(self, agent, data):
        self.agent = agent
        self.fn = agent._train_fn()
        self.carry = agent.init_train(data["is_first"].shape[0])
        self.batch = data  # host copy, for the breakdown
        self.data = agent._put_data(data)
        start = time.perf_counter()
        self.compiled = self.fn.lower(agent.state, self.carry, self.data, agent.scalars).compile()
        self.compile_s = time.perf_counter() - start
        self.times = []

    def warm_up(self):
        self.step()  # the first run, not recorded
        self.times = []

    def step(self):
        start = time.perf_counter()
        state, _, metrics, _ = self.compiled(self.agent.state, self.carry, self.data, self.agent.scalars)
        jax.block_until_ready(metrics)
        self.agent.state = state
        self.times.append(time.perf_counter() - start)

    def flops(self):
        """(matmul + conv FLOPs with loops counted per iteration, XLA's FLOPs)."""
        state = self.agent.state
        return (count_flops(self.fn, state, self.carry, self.data, self.agent.scalars), xla_flops_of(self.compiled))


def breakdown(agent, data, reps):
    """Seconds of each part of the update, each jitted on its own (fwd + bwd
    where the update differentiates it). Parameters and data are arguments,
    never closed-over constants (XLA would fold them at compile time)."""
    model, params = agent.model, agent.state["params"]
    K, ext = getattr(agent, "context", 0), getattr(agent, "ext_space", {})
    data = {k: v[:, K:] for k, v in data.items() if k not in ext}  # the trained steps
    B, T = data["is_first"].shape
    data = jax.device_put(data)
    key = agentlib.stream_key(0, "train")
    sub = lambda part: {k: v for k, v in params.items() if k.split("/")[1] == part}
    rest = lambda part: {k: v for k, v in params.items() if k.split("/")[1] != part}

    def pure(fn, p, q, *args):
        return nj.pure(fn)({**q, **p}, *args)[1]

    encode = lambda d: model.enc(d, bdims=2)
    carry, outs = agent.jit(lambda p, d, k: pure(model.observe, p, {}, d, k))(params, data, key)
    feat = agent.jit(lambda p, o: pure(model.dyn.feat, p, {}, o))(params, outs)
    tokens = agent.jit(lambda p, d: pure(encode, p, {}, d))(params, data)

    def enc_loss(p, q, d):
        return jnp.sum(pure(encode, p, q, d) ** 2)

    def dec_loss(p, feat, q, d):
        dists = pure(lambda f: model.dec(f, 2), p, q, feat)
        return sum(dist.loss(d[k]).sum() for k, dist in dists.items())

    def obs_loss(p, tokens, q, d, key):
        def fn(tokens):
            act = model.actfeat(d["action"])
            resets = d["is_first"].at[:, 0].set(True)
            _, outs = model.dyn.observe(model.dyn.initial(B), tokens, act, resets, key)
            dyn, rep = model.dyn.kl_loss(outs)
            return (dyn + rep).sum() + jnp.sum(model.dyn.feat(outs))

        return pure(fn, p, q, tokens)

    def head_loss(p, feat, q, d):
        fn = lambda f: model.rew(f).loss(d["reward"]).sum() + model.con(f).loss(1.0 - d["is_terminal"]).sum()
        return pure(fn, p, q, feat)

    starts = jax.tree.map(lambda x: x.reshape((B * T, *x.shape[2:])), {"deter": outs["deter"], "stoch": outs["stoch"]})
    imag = lambda p, s, k: pure(lambda s: model.imagine(s, agent.H, k), p, {}, s)
    heads = {**sub("rew"), **sub("con")}
    parts = {
        "encoder": (jax.grad(enc_loss), (sub("enc"), rest("enc"), data)),
        "decoder": (jax.grad(dec_loss, (0, 1)), (sub("dec"), feat, rest("dec"), data)),
        "rssm observe": (jax.grad(obs_loss, (0, 1)), (sub("dyn"), tokens, rest("dyn"), data, key)),
        "rew+con heads": (jax.grad(head_loss, (0, 1)), (heads, feat, params, data)),
        "imagination": (imag, (params, starts, key)),
        "optimizer": (agent.optimizer.update, (params, agent.state["opt"], params)),
    }
    times = {}
    for name, (fn, args) in parts.items():
        fn = agent.jit(fn)  # traced under the agent's conv_impl and dtype
        times[name] = median_time(lambda: fn(*args), reps)  # noqa: B023 (called within this iteration)
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="size1m")
    p.add_argument("--impls", default="xla,auto")
    p.add_argument("--updates", type=int, default=5)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--breakdown", action="store_true")
    p.add_argument(
        "--platform",
        default="cpu",
        choices=("cpu", "cuda"),
        help="cuda: XLA convs (conv_impl auto) and bfloat16 compute, as the trainer on a GPU",
    )
    p.add_argument(
        "--lock", default="", help="a file to lock while timing, so parallel runs compile together and time alone"
    )
    p.add_argument(
        "--task",
        default="alien",
        choices=("alien", "cartpole"),
        help="alien: Atari inputs (CNNs); cartpole: vector inputs (MLPs only)",
    )
    args = p.parse_args()
    jax.config.update("jax_platforms", mainlib.jax_platforms(args.platform))
    print(
        f"jax {jax.__version__} {jax.default_backend()}, {time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} CPUs, {args.size}, {args.task} inputs, median of {args.updates} updates"
    )
    dtype = agentlib.compute_dtype(load_config(args.size, "auto", platform=args.platform))
    gflops = matmul_gflops(args.reps, dtype)
    env_sps = env_steps_per_s()
    print(f"matmul 2048^2 {dtype.name}: {gflops:.1f} GFLOP/s; Alien env: {env_sps:.0f} steps/s")
    rows, parts, updates = [], {}, {}
    for variant in args.impls.split(","):
        impl, *ynn = variant.split("@")
        config = load_config(args.size, impl, *ynn, task=args.task, platform=args.platform)
        agent = agentlib.Agent(*spaces(args.task), config)
        data = random_batch(config.batch_size, config.batch_length, task=args.task, agent=agent)
        updates[variant] = CompiledUpdate(agent, data)
    with exclusive(args.lock):  # compiles may overlap other processes; timings do not
        for update in updates.values():
            update.warm_up()
            update.rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            update.device_mb = peak_device_mb()
        for _ in range(args.updates):  # interleaved, so drift hits every variant alike
            for update in updates.values():
                update.step()
    for variant, update in updates.items():
        print(
            f"{variant}: compile {update.compile_s:.1f} s, updates "
            + " ".join(f"{t:.3f}" for t in update.times)
            + f" s, peak device {update.device_mb:.0f} MB",
            flush=True,
        )
    for variant, update in updates.items():
        flops, xla_flops = update.flops()
        rows.append(
            (variant, update.compile_s, statistics.median(update.times), flops, xla_flops, update.rss, update.device_mb)
        )
        if args.breakdown:
            parts[variant] = breakdown(update.agent, update.batch, args.reps)
    print(
        "\n| size | platform | dtype | conv_impl | compile s | s/update | updates/s | "
        "env steps/s | peak RSS MB | peak device MB | GFLOP/update | XLA cost analysis GFLOP | "
        "matmul GFLOP/s | floor s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for impl, compile_s, per_update, flops, xla_flops, rss, device_mb in rows:
        print(
            f"| {args.size} | {args.platform} | {dtype.name} | {impl} | {compile_s:.1f} | "
            f"{per_update:.3f} | {1 / per_update:.2f} | {env_sps:.0f} | {rss:.0f} | "
            f"{device_mb:.0f} | {flops / 1e9:.1f} | {xla_flops / 1e9:.1f} | {gflops:.1f} | "
            f"{flops / 1e9 / gflops:.3f} |"
        )
    if parts:
        names = list(next(iter(parts.values())))
        print("\n| part (fwd+bwd where trained) | " + " | ".join(f"{impl} s" for impl in parts) + " |")
        print("|---|" + "---|" * len(parts))
        for name in names:
            print(f"| {name} | " + " | ".join(f"{parts[i][name]:.3f}" for i in parts) + " |")
        rest = [row[2] - sum(parts[row[0]].values()) for row in rows]
        print("| rest (actor-critic losses, returns, glue) | " + " | ".join(f"{r:.3f}" for r in rest) + " |")
        print("| whole update | " + " | ".join(f"{row[2]:.3f}" for row in rows) + " |")


if __name__ == "__main__":
    record.run("bench_train", main)
