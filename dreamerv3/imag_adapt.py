"""The adaptive imagination horizon: a mask over imagined steps
(docs/design.md, "The adaptive rule").

When the dynamics loss jumps above its running average, the world model is
less reliable than usual, so later imagined steps (where model errors have
compounded) get a smaller weight in the actor's loss. The rule is pure: it
takes the batch-mean `loss/dyn`, the rule's state and the config block
`agent.imag_adapt`, and returns the mask of length H, the new state and the
metrics logged under `train/imag_adapt/`.

`mode: placebo` is the control arm of the shift experiment: the same mask shape, switched
on at updates drawn at `placebo_rate` from (run seed, update count) alone, so
independently of loss/dyn, with the fixed severity `placebo_severity`. It
tells "the mask helps when the model is unreliable" apart from "any
attenuation changes learning". The EMA and ratio are still tracked and logged.

State (a dict of scalars, checkpointed with the agent):
  ema    float32  running average of loss/dyn (seeded with the first value)
  count  int32    gradient updates seen so far (the rule's `step`)
"""

import jax
import jax.numpy as jnp
import numpy as np

from dreamerv3.settings import MODES, validate  # noqa: F401  (the checks import no jax)


def init_state():
    """The rule's state before the first update."""
    return {"ema": jnp.zeros((), jnp.float32), "count": jnp.zeros((), jnp.int32)}


# The fields of `agent.imag_adapt` as the update reads them: arrays, not constants,
# so that members of a population (population.py) may differ in any of them.
FLOATS = (
    "alpha",
    "eps",
    "abs_thresh",
    "rel_thresh",
    "rel_max",
    "min_decay",
    "min_horizon",
    "tail_floor",
    "placebo_rate",
    "placebo_severity",
)


def as_arrays(cfg):
    """`agent.imag_adapt` -> the dict of numpy scalars the agent's update takes:
    the FLOATS as float32, warmup as int32, and the flags enabled, mask_value and
    placebo (mode == 'placebo') as bools."""
    arrays = {k: np.float32(cfg[k]) for k in FLOATS}
    arrays["warmup"] = np.int32(cfg["warmup"])
    arrays["enabled"] = np.bool_(cfg["enabled"])
    arrays["mask_value"] = np.bool_(cfg["mask_value"])
    arrays["placebo"] = np.bool_(cfg["mode"] == "placebo")
    return arrays


def update_ema(ema, l_dyn, count, alpha):
    """ema_t = (1 - alpha) ema_{t-1} + alpha L_dyn, with ema_0 = the first L_dyn."""
    blended = (1 - alpha) * ema + alpha * l_dyn
    return jnp.where(count == 0, l_dyn, blended)


def severity(ratio, rel_thresh, rel_max):
    """How far the ratio is past the threshold, as a fraction of the range, in [0, 1]."""
    return jnp.clip((ratio - rel_thresh) / (rel_max - rel_thresh), 0.0, 1.0)


def _fmix32(h):
    """MurmurHash3's 32-bit finalizer (uint32 in, uint32 out; multiplications wrap)."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def placebo_draw(seed, count):
    """A uniform number in [0, 1) from (seed, update count) alone: a counter-based
    hash, so the placebo's updates are reproducible, need no PRNG key threaded
    through the update, and can be recomputed in NumPy. Multiples of 2**-24."""
    seed = jnp.asarray(seed, jnp.uint32)
    count = jnp.asarray(count).astype(jnp.uint32)
    h = _fmix32(_fmix32(seed) ^ (count * jnp.uint32(0x9E3779B1)))
    return (h >> 8).astype(jnp.float32) / jnp.float32(2**24)


def step_mask(gamma, active, length, min_horizon, tail_floor):
    """m_k = 1 for k < min_horizon, else max(tail_floor, gamma**k); all ones if inactive."""
    k = jnp.arange(length, dtype=jnp.float32)
    decayed = jnp.maximum(tail_floor, gamma**k)
    decayed = jnp.where(k < min_horizon, 1.0, decayed)
    return jnp.where(active, decayed, jnp.ones_like(decayed))


def imag_mask(l_dyn, state, cfg, length, seed=0):
    """Apply the rule once per gradient update.

    Args:
      l_dyn: scalar, batch mean of the dynamics loss (gradients are stopped here).
      state: dict from `init_state()` or a previous call.
      cfg: mapping with the fields of `agent.imag_adapt` (its `mode` a string), or
        `as_arrays(cfg)` (its `placebo` flag an array; what the agent passes).
      length: H, the number of imagined steps the mask covers.
      seed: the run's seed; only the placebo's draws read it.
    Returns:
      (mask [H] float32, new state, metrics dict of scalars).
    """
    placebo = cfg["placebo"] if "placebo" in cfg else cfg["mode"] == "placebo"
    l_dyn = jax.lax.stop_gradient(jnp.asarray(l_dyn, jnp.float32))
    ema = update_ema(state["ema"], l_dyn, state["count"], cfg["alpha"])
    ratio = l_dyn / jnp.maximum(cfg["eps"], ema)
    warm = state["count"] >= cfg["warmup"]
    placebo_on = placebo_draw(seed, state["count"]) < cfg["placebo_rate"]
    rule_on = (l_dyn > cfg["abs_thresh"]) & (ratio > cfg["rel_thresh"])
    active = warm & jnp.where(placebo, placebo_on, rule_on)
    sev = jnp.where(
        placebo, jnp.asarray(cfg["placebo_severity"], jnp.float32), severity(ratio, cfg["rel_thresh"], cfg["rel_max"])
    )
    gamma = 1.0 - sev * (1.0 - cfg["min_decay"])
    mask = step_mask(gamma, active, length, cfg["min_horizon"], cfg["tail_floor"])
    new_state = {"ema": ema, "count": state["count"] + 1}
    metrics = {
        "active": active.astype(jnp.float32),
        "ratio": ratio,
        "ema": ema,
        "severity": sev,
        "gamma": gamma,
        "mask_mean": mask.mean(),
        "horizon_eff": mask.sum(),
    }
    return mask, new_state, metrics
