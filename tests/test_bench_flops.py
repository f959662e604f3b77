"""bench/flops.py: the FLOP counter behind the benchmark's floor."""

import os
import sys

import jax
import jax.numpy as jnp
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
import flops  # noqa: E402

from dreamerv3 import fastconv  # noqa: E402


def test_scan_body_counts_once_per_step():
    a = jnp.ones((32, 32))
    loop = lambda a: jax.lax.scan(lambda c, _: (c @ a, None), a, None, length=7)[0]
    assert flops.count_flops(loop, a) == 7 * 2 * 32**3


@pytest.mark.parametrize(
    "x_shape,k_shape,stride",
    [((2, 8, 8, 3), (5, 5, 3, 4), 1), ((1, 9, 7, 2), (4, 4, 2, 3), 1), ((1, 9, 7, 2), (3, 3, 2, 5), 2)],
)
def test_conv_matches_xla_cost_analysis(x_shape, k_shape, stride):
    """Taps on padding do not count, as in XLA (whose figure also holds the sum:
    at most one FLOP per output element)."""
    x, kernel = jnp.ones(x_shape), jnp.ones(k_shape)
    f = lambda x, k: fastconv.xla_conv2d(x, k, stride).sum()
    cost = jax.jit(f).lower(x, kernel).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    out_elems = fastconv.xla_conv2d(x, kernel, stride).size
    assert 0 <= cost["flops"] - flops.count_flops(f, x, kernel) <= out_elems


def test_batched_dot():
    a, b = jnp.ones((3, 4, 5)), jnp.ones((3, 5, 6))
    assert flops.count_flops(lambda a, b: jnp.einsum("bij,bjk->bik", a, b), a, b) == 2 * 3 * 4 * 5 * 6


def test_jitted_function_with_compiler_options():
    """The agent's update is a top-level jit with compiler options."""
    a = jnp.ones((8, 8))
    fn = jax.jit(lambda a: a @ a, compiler_options={"xla_cpu_enable_fast_math": False})
    assert flops.count_flops(fn, a) == 2 * 8**3
