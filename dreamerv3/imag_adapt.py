"""The adaptive imagination horizon: a mask over imagined steps (SPEC section 4).

When the dynamics loss jumps above its running average, the world model is
less reliable than usual, so later imagined steps (where model errors have
compounded) get a smaller weight in the actor's loss. The rule is pure: it
takes the batch-mean `loss/dyn`, the rule's state and the config block
`agent.imag_adapt`, and returns the mask of length H, the new state and the
metrics logged under `train/imag_adapt/`.

State (a dict of scalars, checkpointed with the agent):
  ema    float32  running average of loss/dyn (seeded with the first value)
  count  int32    gradient updates seen so far (the rule's `step`)
"""

import jax
import jax.numpy as jnp

FIELDS = (
    'enabled', 'mask_value', 'alpha', 'eps', 'warmup', 'abs_thresh',
    'rel_thresh', 'rel_max', 'min_decay', 'min_horizon', 'tail_floor')


def init_state():
  """The rule's state before the first update."""
  return {'ema': jnp.zeros((), jnp.float32), 'count': jnp.zeros((), jnp.int32)}


def validate(cfg):
  """Refuse settings the rule cannot mean; returns an error line or None."""
  if cfg['rel_max'] <= cfg['rel_thresh']:
    return (f"agent.imag_adapt.rel_max ({cfg['rel_max']}) must be greater than "
            f"agent.imag_adapt.rel_thresh ({cfg['rel_thresh']})")
  if not 0 < cfg['min_decay'] <= 1:
    return f"agent.imag_adapt.min_decay ({cfg['min_decay']}) must be in (0, 1]"
  if not 0 <= cfg['tail_floor'] <= 1:
    return f"agent.imag_adapt.tail_floor ({cfg['tail_floor']}) must be in [0, 1]"
  if cfg['warmup'] < 0:
    return f"agent.imag_adapt.warmup ({cfg['warmup']}) must be >= 0"
  if not 0 < cfg['alpha'] <= 1:
    return f"agent.imag_adapt.alpha ({cfg['alpha']}) must be in (0, 1]"
  if cfg['eps'] <= 0:
    return f"agent.imag_adapt.eps ({cfg['eps']}) must be > 0"
  if cfg['min_horizon'] < 0:
    return f"agent.imag_adapt.min_horizon ({cfg['min_horizon']}) must be >= 0"
  return None


def update_ema(ema, l_dyn, count, alpha):
  """ema_t = (1 - alpha) ema_{t-1} + alpha L_dyn, with ema_0 = the first L_dyn."""
  blended = (1 - alpha) * ema + alpha * l_dyn
  return jnp.where(count == 0, l_dyn, blended)


def severity(ratio, rel_thresh, rel_max):
  """How far the ratio is past the threshold, as a fraction of the range, in [0, 1]."""
  return jnp.clip((ratio - rel_thresh) / (rel_max - rel_thresh), 0.0, 1.0)


def step_mask(gamma, active, length, min_horizon, tail_floor):
  """m_k = 1 for k < min_horizon, else max(tail_floor, gamma**k); all ones if inactive."""
  k = jnp.arange(length, dtype=jnp.float32)
  decayed = jnp.maximum(tail_floor, gamma ** k)
  decayed = jnp.where(k < min_horizon, 1.0, decayed)
  return jnp.where(active, decayed, jnp.ones_like(decayed))


def imag_mask(l_dyn, state, cfg, length):
  """Apply the rule once per gradient update.

  Args:
    l_dyn: scalar, batch mean of the dynamics loss (gradients are stopped here).
    state: dict from `init_state()` or a previous call.
    cfg: mapping with the fields of `agent.imag_adapt`.
    length: H, the number of imagined steps the mask covers.
  Returns:
    (mask [H] float32, new state, metrics dict of scalars).
  """
  l_dyn = jax.lax.stop_gradient(jnp.asarray(l_dyn, jnp.float32))
  ema = update_ema(state['ema'], l_dyn, state['count'], cfg['alpha'])
  ratio = l_dyn / jnp.maximum(cfg['eps'], ema)
  active = ((state['count'] >= cfg['warmup'])
            & (l_dyn > cfg['abs_thresh'])
            & (ratio > cfg['rel_thresh']))
  sev = severity(ratio, cfg['rel_thresh'], cfg['rel_max'])
  gamma = 1.0 - sev * (1.0 - cfg['min_decay'])
  mask = step_mask(gamma, active, length, cfg['min_horizon'], cfg['tail_floor'])
  new_state = {'ema': ema, 'count': state['count'] + 1}
  metrics = {
      'active': active.astype(jnp.float32),
      'ratio': ratio,
      'ema': ema,
      'severity': sev,
      'gamma': gamma,
      'mask_mean': mask.mean(),
      'horizon_eff': mask.sum(),
  }
  return mask, new_state, metrics
