"""The optimizer: adaptive gradient clipping, then a LaProp update, linear warmup.

DreamerV3 (paper, Methods): AGC with ratio 0.3 per parameter tensor, LaProp
(normalise the gradient by the second-moment estimate first, then take the
momentum of the normalised gradient), eps 1e-20, lr 4e-5, warmup 1000 updates.
"""

import jax
import jax.numpy as jnp
import optax

f32 = jnp.float32


def clip_by_agc(clip=0.3, pmin=1e-3):
    """Scale each gradient tensor so ||g|| <= clip * max(pmin, ||param||)."""

    def update(grads, state, params=None):
        assert params is not None, "clip_by_agc needs params"

        def fn(g, p):
            limit = clip * jnp.maximum(pmin, jnp.linalg.norm(p.reshape(-1)))
            norm = jnp.linalg.norm(g.reshape(-1))
            return g * jnp.minimum(1.0, limit / jnp.maximum(norm, 1e-30))

        return jax.tree.map(fn, grads, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def scale_by_laprop(beta1=0.9, beta2=0.999, eps=1e-20):
    """LaProp: u = g / (sqrt(v_hat) + eps), m = EMA(u); both moments debiased."""

    def init(params):
        zeros = lambda p: jnp.zeros_like(p, f32)
        return {
            "count": jnp.zeros((), jnp.int32),
            "mom": jax.tree.map(zeros, params),
            "sq": jax.tree.map(zeros, params),
        }

    def update(grads, state, params=None):
        del params
        count = state["count"] + 1
        t = count.astype(f32)
        sq = jax.tree.map(lambda v, g: beta2 * v + (1 - beta2) * g * g, state["sq"], grads)
        norm = jax.tree.map(lambda g, v: g / (jnp.sqrt(v / (1 - beta2**t)) + eps), grads, sq)
        mom = jax.tree.map(lambda m, u: beta1 * m + (1 - beta1) * u, state["mom"], norm)
        updates = jax.tree.map(lambda m: m / (1 - beta1**t), mom)
        return updates, {"count": count, "mom": mom, "sq": sq}

    return optax.GradientTransformation(init, update)


def schedule(lr, warmup):
    """Linear warmup to lr over `warmup` updates (update n gets lr n / warmup), then constant."""
    if warmup <= 0:
        return lambda count: jnp.asarray(lr, f32)
    return lambda count: lr * jnp.minimum(1.0, (count.astype(f32) + 1) / warmup)


def make(cfg, lr=None):
    """Build the optax chain from the `agent.opt` config block. lr: the block's lr,
    or an array standing in for it (the agent passes its run's lr as an array, so
    that members of a population may differ in it; the state's layout is the same)."""
    lr = cfg.lr if lr is None else lr
    return optax.chain(
        clip_by_agc(cfg.agc, cfg.pmin),
        scale_by_laprop(cfg.beta1, cfg.beta2, cfg.eps),
        optax.scale_by_learning_rate(schedule(lr, cfg.warmup)),
    )


def global_norm(tree):
    return optax.tree.norm(tree)
