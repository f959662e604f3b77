"""DreamerV3's formulas as pure functions of arrays (paper section "Methods").

Shape letters: B batch, T replay time, H imagined steps, K bins, S latents,
C classes. Every function here has a slow NumPy reference in tests/test_losses.py.
"""

import jax
import jax.numpy as jnp

f32 = jnp.float32
sg = jax.lax.stop_gradient
SPAN = 20.0  # twohot bins reach symexp(+-20) (official `symexp_twohot` head)


# ---- Squashing and twohot (paper eq. 9-11) ---------------------------------------


def symlog(x):
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def symexp(x):
    return jnp.sign(x) * jnp.expm1(jnp.abs(x))


def bins(num):
    """Bin positions in raw units: symexp of an even grid on [-20, 0], mirrored.

    Built from one half so the bins are exactly antisymmetric; an odd count puts
    a bin at exactly 0. Raw units keep the predicted mean unbiased (a mean in
    symlog space, mapped back, underestimates uncertain rewards)."""
    if num % 2:
        half = symexp(jnp.linspace(-SPAN, 0.0, (num - 1) // 2 + 1, dtype=f32))
        return jnp.concatenate([half, -half[:-1][::-1]])
    half = symexp(jnp.linspace(-SPAN, 0.0, num // 2, dtype=f32))
    return jnp.concatenate([half, -half[::-1]])


def twohot_encode(y, num):
    """Raw target y as weights on its two neighbouring bins [..., K] (sums to 1;
    outside the bins all weight goes to the end bin)."""
    b = bins(num)
    y = y.astype(f32)
    below = jnp.clip((b <= y[..., None]).sum(-1) - 1, 0, num - 1)
    above = jnp.clip(num - (b > y[..., None]).sum(-1), 0, num - 1)
    same = below == above
    dist_below = jnp.where(same, 1.0, jnp.abs(b[below] - y))
    dist_above = jnp.where(same, 1.0, jnp.abs(b[above] - y))
    total = dist_below + dist_above
    return (
        jax.nn.one_hot(below, num) * (dist_above / total)[..., None]
        + jax.nn.one_hot(above, num) * (dist_below / total)[..., None]
    )


def twohot_decode(logits):
    """Mean prediction in raw units: sum of softmax(logits) * bins.

    Summed symmetrically (each bin's term next to its mirror's, middle bin
    apart) so that uniform or mirrored probabilities give exactly 0; a plain
    left-to-right sum leaves float error of order symexp(20) * eps."""
    probs = jax.nn.softmax(logits.astype(f32), -1)
    terms = probs * bins(logits.shape[-1])
    n = logits.shape[-1]
    m = n // 2
    if n % 2:
        return terms[..., m] + (terms[..., :m][..., ::-1] + terms[..., m + 1 :]).sum(-1)
    return (terms[..., :m][..., ::-1] + terms[..., m:]).sum(-1)


def twohot_loss(logits, target):
    """Cross-entropy between twohot(target) on the raw-unit bins and softmax(logits)."""
    target = sg(twohot_encode(target.astype(f32), logits.shape[-1]))
    return -(target * jax.nn.log_softmax(logits.astype(f32), -1)).sum(-1)


# ---- Categorical latents ----------------------------------------------------------


def unimix_logits(logits, unimix):
    """Log of (1 - unimix) softmax(logits) + unimix / C (paper: 1% uniform mix)."""
    if not unimix:
        return jax.nn.log_softmax(logits, -1)
    probs = jax.nn.softmax(logits, -1)
    probs = (1 - unimix) * probs + unimix / logits.shape[-1]
    return jnp.log(probs)


def categorical_kl(lhs, rhs):
    """KL(lhs || rhs) for logits [..., S, C], summed over latents S and classes C."""
    lp, rp = jax.nn.log_softmax(lhs, -1), jax.nn.log_softmax(rhs, -1)
    return (jnp.exp(lp) * (lp - rp)).sum((-2, -1))


def kl_losses(post, prior, free, unimix=0.0):
    """Dynamics and representation losses with free nats (paper eq. 5), on the
    unimix-mixed distributions the latents are sampled from (as the official)."""
    post, prior = unimix_logits(post, unimix), unimix_logits(prior, unimix)
    dyn = jnp.maximum(free, categorical_kl(sg(post), prior))
    rep = jnp.maximum(free, categorical_kl(post, sg(prior)))
    return dyn, rep


# ---- Returns ---------------------------------------------------------------------


def lambda_return(rew, disc, value, lam):
    """TD(lambda) returns over H steps (paper eq. 7).

    rew[k] = r_{k+1}, disc[k] = gamma * c_{k+1} (both [B, H]), value = v_0..v_H
    [B, H+1]; lam a scalar or [B, H]. R_H = v_H and
    R_k = rew[k] + disc[k] ((1 - lam_k) v_{k+1} + lam_k R_{k+1}). Returns [B, H].
    """
    assert rew.shape == disc.shape, (rew.shape, disc.shape)
    assert value.shape[1] == rew.shape[1] + 1, (rew.shape, value.shape)
    lam = jnp.broadcast_to(jnp.asarray(lam, f32), rew.shape)
    inputs = (rew.T, disc.T, value[:, 1:].T, lam.T)

    def step(ret, x):
        r, d, v, l = x
        ret = r + d * ((1 - l) * v + l * ret)
        return ret, ret

    _, rets = jax.lax.scan(step, value[:, -1], inputs, reverse=True)
    return rets.T


def retnorm_init():
    return {"lo": jnp.zeros((), f32), "hi": jnp.zeros((), f32), "corr": jnp.zeros((), f32)}


def retnorm_update(state, ret, rate=0.01, limit=1.0, plo=5.0, phi=95.0, debias=False):
    """EMA of the 5th and 95th return percentiles; scale = max(limit, P95 - P5).

    The EMAs start at 0 and, as in the official (`retnorm.debias: False`), are
    not bias-corrected: the scale stays at `limit` until returns have spread for
    a few hundred updates. debias=True divides both by max(rate, 1 - (1-rate)^n)."""
    ret = sg(ret.astype(f32)).reshape(-1)
    lo = (1 - rate) * state["lo"] + rate * jnp.percentile(ret, plo)
    hi = (1 - rate) * state["hi"] + rate * jnp.percentile(ret, phi)
    corr = (1 - rate) * state["corr"] + rate
    factor = 1.0 / jnp.maximum(rate, corr) if debias else 1.0
    scale = jnp.maximum(limit, (hi - lo) * factor)
    return {"lo": lo, "hi": hi, "corr": corr}, scale


def con_target(is_terminal, discount=1.0):
    """What the continue head learns: discount x (1 - is_terminal). With the official's
    contdisc the discount is gamma, so imagination multiplies by the predicted continue
    alone; 1.0 gives the plain continue flag (and imagination applies gamma itself)."""
    return discount * (1.0 - is_terminal.astype(f32))


def imag_targets(rew, con, val, retnorm_state, discount, lam, retnorm):
    """The returns, step weights and return scale of an imagined trajectory of H+1 states.

    rew, con, val: [B, H+1] predicted reward, continue probability and critic mean
    of each state (state 0 is the replayed start; its reward is not used).
    discount: gamma; lam: lambda; retnorm: retnorm_update's keyword settings.
    With disc_k = gamma * con_k: the lambda returns of steps 1..H (lambda_return),
    and the weight of step k < H, disc_0 ... disc_k / gamma, so that steps after a
    predicted episode end count less (con_0 is 1 - is_terminal of the replayed
    start). Returns (targets {'ret', 'weight', 'scale'}, ret and
    weight [B, H], and the new return-normaliser state).
    """
    disc = discount * con
    ret = lambda_return(rew[:, 1:], disc[:, 1:], val, lam)
    new_state, scale = retnorm_update(retnorm_state, ret, **retnorm)
    weight = jnp.cumprod(disc, 1)[:, :-1] / discount
    return {"ret": ret, "weight": weight, "scale": scale}, new_state


# ---- Actor-critic losses -------------------------------------------------------------


def imag_loss(
    logpi, ent, val_logits, ret, val, slowval, weight, scale, actent=3e-4, slowreg=1.0, imag_mask=None, mask_value=False
):
    """Actor (REINFORCE) and critic losses on H imagined steps.

    logpi, ent: [B, H] log-prob of the sampled action and policy entropy (carry
    actor gradients). val_logits [B, H, K] critic logits (carry critic gradients).
    ret, val, slowval, weight: [B, H] lambda returns, critic mean, slow critic
    mean and the discount weight (all without gradients). scale: return scale.
    imag_mask: None (plain DreamerV3) or [H] per-step weights of the actor loss
    (imag_adapt.imag_mask); with mask_value they also weight the critic loss.
    Returns (losses {'policy', 'value'} scalars, per-step outs, metrics).
    """
    ret, val, slowval, weight = sg(ret), sg(val), sg(slowval), sg(weight)
    adv = (ret - val) / scale
    pol_weight = weight
    val_weight = weight
    if imag_mask is not None:
        pol_weight = weight * sg(imag_mask)[None, :]
        val_weight = jnp.where(mask_value, pol_weight, weight)  # mask_value: bool or array
    policy = -(logpi * sg(adv) + actent * ent) * pol_weight
    value = twohot_loss(val_logits, ret) + slowreg * twohot_loss(val_logits, slowval)
    value = value * val_weight
    losses = {"policy": policy.mean(), "value": value.mean()}
    outs = {"pol_weight": pol_weight, "val_weight": val_weight, "adv": adv}
    metrics = {
        "adv": adv.mean(),
        "adv_std": adv.std(),
        "ent/action": ent.mean(),
        "ret": ret.mean(),
        "val": val.mean(),
        "weight": weight.mean(),
    }
    return losses, outs, metrics


def repl_loss(val_logits, rew, con, boot, slowval, is_last, disc, lam, slowreg=1.0):
    """Critic loss on replayed states (paper: 'replay value loss', scale 0.3).

    Targets are lambda returns along the replayed sequence from the recorded
    rewards and continues, bootstrapped with the imagined return `boot` from each
    replayed state. val_logits [B, T, K]; rew, con, boot, slowval, is_last [B, T].
    Episode boundaries: steps after an `is_last` are neither bootstrapped through
    nor trained on.
    """
    last = is_last.astype(f32)
    lam_steps = lam * (1 - last[:, 1:])
    ret = lambda_return(rew[:, 1:], disc * con[:, 1:], sg(boot), lam_steps)  # [B, T-1]
    weight = 1 - last[:, :-1]
    logits = val_logits[:, :-1]
    loss = twohot_loss(logits, sg(ret)) + slowreg * twohot_loss(logits, sg(slowval[:, :-1]))
    return (loss * weight).mean(), {"repval/ret": ret.mean()}
