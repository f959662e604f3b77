"""Per-layer CPU timing of the model's convolutions, XLA vs fastconv's paths.

    .venv/bin/python bench/bench_conv.py [--sizes size1m,size12m] [--batch 1024]
        [--reps 5] [--impls xla,fast,s2,s4,s2nchw,s2vjp,s2xla,rows,s1,s1nchw,s1rows]
        [--layers enc0,dec3] [--ynn default]

For each conv layer of the encoder and decoder (64x64x3 Atari images,
channels depth x [2, 3, 4, 4]) it prints the median forward time and the median
forward + backward time (gradient w.r.t. the kernel, and w.r.t. the input
except for the encoder's first layer, whose input is the image), plus this
machine's float32 matmul rate measured in the same run. The machine is shared,
so compare ratios within one run. Not a test: never run by `make test`.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import record  # noqa: E402

from dreamerv3 import agent as agentlib  # noqa: E402
from dreamerv3 import configs as configlib  # noqa: E402
from dreamerv3 import fastconv  # noqa: E402

DEPTHS = {"size1m": 4, "size12m": 16, "size25m": 24}
MULTS = (2, 3, 4, 4)


def layer_shapes(depth, image=64, channels=3):
    """(name, low-res side, Cin, Cout, upsampled?) of every conv layer."""
    chans = [depth * m for m in MULTS]
    layers, side, cin = [], image, channels
    for i, c in enumerate(chans):
        layers.append((f"enc{i}", side, cin, c, False))
        side, cin = side // 2, c
    outs = list(reversed(chans[:-1])) + [channels]
    for i, c in enumerate(outs):
        layers.append((f"dec{i}", side, cin, c, True))
        side, cin = side * 2, c
    return layers


def implementations(up):
    """name -> f(x, kernel) for one layer kind (plain or upsample+conv)."""
    if up:
        return {
            "xla": lambda x, k: fastconv.upsample_conv2d(x, k, "xla"),
            "fast": lambda x, k: fastconv.upsample_conv2d(x, k, "fast"),
            "s1": lambda x, k: fastconv.block_conv2d(x, k, 2, 1),
            "s2": lambda x, k: fastconv.block_conv2d(x, k, 2, 2),
            "s1nchw": lambda x, k: fastconv.block_conv2d(x, k, 2, 1, "NCHW"),
            "s1rows": lambda x, k: fastconv.block_conv2d(x, k, 2, 1, kgrad="rows"),
        }
    return {
        "xla": lambda x, k: fastconv.conv2d(x, k, 1, "xla"),
        "fast": lambda x, k: fastconv.conv2d(x, k, 1, "fast"),
        "s2": lambda x, k: fastconv.block_conv2d(x, k, 1, 2),
        "s4": lambda x, k: fastconv.block_conv2d(x, k, 1, 4),
        "s2nchw": lambda x, k: fastconv.block_conv2d(x, k, 1, 2, "NCHW"),
        "s2vjp": fastconv._blocked_conv2d,
        "s2xla": lambda x, k: fastconv._blocked_conv2d(x, k, False),
        "rows": lambda x, k: fastconv.row_kgrad_conv(x, k, fastconv.same_padding(k.shape[0])),
    }


def compiler_options(ynn):
    """The trainer's compiler options (CPU), or XLA's defaults for ynn='default'."""
    config = configlib.from_presets([]).update({"jax.platform": "cpu"})
    if ynn:
        config = config.update({"jax.cpu_ynn_fusions": [ynn]})
    return agentlib.compiler_options(config)


def jit(fn, options):
    return jax.jit(fn, compiler_options=options) if options else jax.jit(fn)


def median_time(fn, args, reps):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gflops(reps, options, n=2048):
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    t = median_time(jit(lambda a, b: a @ b, options), (a, a), reps)
    return 2 * n**3 / t / 1e9


def time_layer(f, x, k, grad_input, reps, options):
    def loss(x, k):
        return jnp.sum(f(x, k) ** 2)

    argnums = (0, 1) if grad_input else 1
    fwd = median_time(jit(f, options), (x, k), reps)
    bwd = median_time(jit(jax.grad(loss, argnums), options), (x, k), reps)
    return fwd, bwd


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="size1m,size12m")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--impls", default="xla,fast")
    p.add_argument("--layers", default="")
    p.add_argument("--ynn", default="", help="'default': XLA's own YNNPACK fusions")
    args = p.parse_args()
    options = compiler_options(args.ynn)
    impls = args.impls.split(",")
    only = set(args.layers.split(",")) - {""}
    print(
        f"jax {jax.__version__} {jax.default_backend()}, batch {args.batch}, "
        f"median of {args.reps}, compiler options {options}"
    )
    print(f"matmul 2048^2 float32: {matmul_gflops(args.reps, options):.1f} GFLOP/s")
    print("| size | layer | in | Cin->Cout | impl | fwd s | fwd+bwd s | GFLOP fwd | fwd GFLOP/s | vs xla fwd+bwd |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        for name, side, cin, cout, up in layer_shapes(DEPTHS[size]):
            if only and name not in only:
                continue
            kx, kk = jax.random.split(jax.random.PRNGKey(1))
            x = jax.random.normal(kx, (args.batch, side, side, cin), jnp.float32)
            k = 0.1 * jax.random.normal(kk, (5, 5, cin, cout), jnp.float32)
            out_side = 2 * side if up else side
            flops = 2 * args.batch * out_side**2 * 25 * cin * cout / 1e9
            base = None
            for impl in impls:
                f = implementations(up).get(impl)
                if f is None:
                    continue
                fwd, bwd = time_layer(f, x, k, name != "enc0", args.reps, options)
                base = bwd if impl == "xla" else base
                ratio = f"{base / bwd:.2f}x" if base else "-"
                kind = "up2+" if up else ""
                print(
                    f"| {size} | {name} | {kind}{side}x{side} | {cin}->{cout} | "
                    f"{impl} | {fwd:.3f} | {bwd:.3f} | {flops:.2f} | "
                    f"{flops / fwd:.1f} | {ratio} |",
                    flush=True,
                )


if __name__ == "__main__":
    record.run("bench_conv", main)
