"""Train metrics that are not losses, under the official DreamerV3's names, as pure functions of the update's arrays; the agent only wires them.

The official writes them under `train/`: its optimizer's `opt/*`, the imagination
loss's return statistics (`ret`, `ret_min`, `ret_max`, `ret_rate` on the
normalised return, `tar` the critic's target, `adv_mag`, `slowval`), the policy's
`ent/action` and `rand/action`, and the RSSM's `dyn_ent` / `rep_ent`. Episodes
add `epstats/reward_rate` (run.py). Shape letters: N imagination starts, H steps.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np

f32 = jnp.float32


def rms(tree):
    """Root mean square over every element of every leaf (the official `nets.rms`)."""
    leaves = jax.tree.leaves(tree)
    count = sum(x.size for x in leaves)
    total = sum(jnp.sum(jnp.square(x.astype(f32))) for x in leaves)
    return jnp.sqrt(total / count)


def opt_metrics(loss, grads, updates, params, updates_done):
    """The official optimizer's metrics: total scaled loss, update count, RMS of
    gradients, applied updates and the parameters after the update, and how many
    parameters it trains (the slow critic is not among them)."""
    count = sum(x.size for x in jax.tree.leaves(params))
    return {
        "opt/loss": loss,
        "opt/updates": updates_done,
        "opt/grad_rms": rms(grads),
        "opt/update_rms": rms(updates),
        "opt/param_rms": rms(params),
        "opt/param_count": jnp.asarray(count, f32),
    }


def return_metrics(ret, offset, scale, adv, slowval):
    """Imagined-return statistics as the official `imag_loss` logs them.

    ret [N, H] lambda returns, offset/scale the return normaliser's 5th
    percentile and scale, adv [N, H] the normalised advantages, slowval the slow
    critic on the imagined states. `ret*` are of (ret - offset) / scale; `tar` is
    the critic's target, the raw return (the official's value normaliser is off).
    """
    normed = (ret - offset) / scale
    return {
        "ret": normed.mean(),
        "ret_min": normed.min(),
        "ret_max": normed.max(),
        "ret_rate": (jnp.abs(normed) >= 1.0).astype(f32).mean(),
        "tar": ret.mean(),
        "adv_mag": jnp.abs(adv).mean(),
        "slowval": slowval.mean(),
    }


def entropy_bounds(discrete, size, minstd=0.1, maxstd=1.0):
    """(lowest, highest) entropy of the policy: a categorical over `size` actions
    spans [0, log size]; the bounded normal over `size` dims spans the entropies
    at std minstd and maxstd (as the official's `minent` / `maxent`)."""
    if discrete:
        return 0.0, math.log(size)
    normal = lambda std: size * (0.5 * math.log(2 * math.pi * math.e) + math.log(std))
    return normal(minstd), normal(maxstd)


def policy_randomness(ent, bounds):
    """`rand/action`: the mean policy entropy placed in its range (0 = lowest, 1 = highest)."""
    lo, hi = bounds
    return (ent.mean() - lo) / (hi - lo)


def latent_entropy(probs):
    """Entropy of the categorical latents [..., S, C], summed over the S latents,
    averaged over the rest (the official `dyn_ent` on the prior, `rep_ent` on
    the posterior, both of the unimix-mixed distributions)."""
    logp = jnp.log(jnp.maximum(probs, 1e-30))
    return -(probs * logp).sum((-2, -1)).mean()


def reward_rate(rewards):
    """`epstats/reward_rate` of one episode: the fraction of steps at which the
    reward changes by at least 0.01 from the step before; None under two steps."""
    rewards = np.asarray(rewards, np.float64)
    if len(rewards) < 2:
        return None
    return float((np.abs(np.diff(rewards)) >= 0.01).mean())
