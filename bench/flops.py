"""Matmul and convolution FLOPs of a JAX function, loops counted per iteration.

XLA's cost analysis (`jax.jit(f).lower(...).compile().cost_analysis()`) counts
the body of a loop once, whatever its trip count: a `lax.scan` over 64 steps
of a 2n^3-FLOP matmul reports 2n^3 FLOPs. The update scans the RSSM over 64
steps, imagines 15, and fastconv scans its kernel gradients over chunks of
images, so that figure undercounts it. This counter walks the jaxpr instead
and multiplies every scan body by its length. It counts `dot_general` and
`conv_general_dilated` (2 FLOPs per multiply-add; like XLA, a conv's taps that
fall on padding do not count) and nothing elementwise: the work that could run at the
matmul rate, which is what a floor of FLOPs / matmul rate means.
"""

import math

import jax
from jax.extend import core as jax_core


def dot_flops(eqn):
    lhs, rhs = (v.aval.shape for v in eqn.invars)
    (_, rhs_contract), (_, rhs_batch) = eqn.params["dimension_numbers"]
    rhs_free = [d for i, d in enumerate(rhs) if i not in rhs_contract and i not in rhs_batch]
    return 2 * math.prod(lhs) * math.prod(rhs_free)


def valid_taps(size, out, k, stride, pad_lo, lhs_dil, rhs_dil):
    """Multiply-adds along one spatial axis that read a real input element
    (not padding, not a hole of lhs dilation), summed over output positions."""
    total = 0
    for o in range(out):
        for d in range(k):
            pos = o * stride + d * rhs_dil - pad_lo
            total += 0 <= pos <= (size - 1) * lhs_dil and pos % lhs_dil == 0
    return total


def conv_flops(eqn):
    lhs, rhs = (v.aval.shape for v in eqn.invars)
    out = eqn.outvars[0].aval.shape
    p = eqn.params
    lhs_spec, rhs_spec, out_spec = p["dimension_numbers"]
    pairs = math.prod(
        valid_taps(lhs[ls], out[os_], rhs[rs], stride, lo, ld, rd)
        for ls, rs, os_, stride, (lo, _), ld, rd in zip(
            lhs_spec[2:],
            rhs_spec[2:],
            out_spec[2:],
            p["window_strides"],
            p["padding"],
            p["lhs_dilation"],
            p["rhs_dilation"],
        )
    )
    batch, features = out[out_spec[0]], out[out_spec[1]]
    return 2 * batch * features * rhs[rhs_spec[1]] * pairs // p["batch_group_count"]


def sub_jaxprs(params):
    for value in params.values():
        values = value if isinstance(value, (tuple, list)) else (value,)
        for v in values:
            if isinstance(v, jax_core.ClosedJaxpr):
                yield v.jaxpr
            elif isinstance(v, jax_core.Jaxpr):
                yield v


def jaxpr_flops(jaxpr):
    """FLOPs of one evaluation of `jaxpr`; while loops (unknown trip count)
    count once, `cond` its most expensive branch."""
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            total += dot_flops(eqn)
        elif name == "conv_general_dilated":
            total += conv_flops(eqn)
        elif name == "scan":
            total += eqn.params["length"] * jaxpr_flops(eqn.params["jaxpr"].jaxpr)
        elif name == "cond":
            total += max(jaxpr_flops(b.jaxpr) for b in eqn.params["branches"])
        else:
            total += sum(jaxpr_flops(sub) for sub in sub_jaxprs(eqn.params))
    return total


def count_flops(fn, *args):
    """Matmul + conv FLOPs of fn(*args), traced (not compiled, not run). A
    jitted fn is traced as itself (its compiler options stay top-level)."""
    traced = fn.trace(*args).jaxpr if hasattr(fn, "trace") else jax.make_jaxpr(fn)(*args)
    return jaxpr_flops(traced.jaxpr)
