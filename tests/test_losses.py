"""Each DreamerV3 formula in dreamerv3/losses.py against a slow NumPy loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamerv3 import losses

RNG = np.random.default_rng(0)


def test_symlog_symexp_match_numpy_and_invert():
    x = RNG.normal(scale=50, size=1000).astype(np.float32)
    ref = np.sign(x) * np.log(np.abs(x) + 1)
    np.testing.assert_allclose(losses.symlog(x), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(losses.symexp(losses.symlog(x)), x, rtol=1e-4, atol=1e-4)


def symexp_bins_reference(num):
    """The official symexp_twohot bins, built in float64 from one half."""
    if num % 2:
        half = np.sign(g := np.linspace(-20, 0, (num - 1) // 2 + 1)) * np.expm1(np.abs(g))
        return np.concatenate([half, -half[:-1][::-1]])
    half = np.sign(g := np.linspace(-20, 0, num // 2)) * np.expm1(np.abs(g))
    return np.concatenate([half, -half[::-1]])


def twohot_reference(y, bins):
    out = np.zeros((len(y), len(bins)))
    for i, v in enumerate(y):
        v = min(max(v, bins[0]), bins[-1])
        k = np.searchsorted(bins, v, side="right") - 1
        if k >= len(bins) - 1:
            out[i, -1] = 1.0
            continue
        lo, hi = bins[k], bins[k + 1]
        out[i, k] = (hi - v) / (hi - lo)
        out[i, k + 1] = (v - lo) / (hi - lo)
    return out


@pytest.mark.parametrize("num", [255, 8])
def test_bins_are_symexp_spaced_and_mirrored(num):
    got = np.asarray(losses.bins(num))
    np.testing.assert_allclose(got, symexp_bins_reference(num), rtol=1e-5)
    np.testing.assert_array_equal(got, -got[::-1])  # exactly antisymmetric
    if num % 2:
        assert got[num // 2] == 0.0
    assert got[0] == pytest.approx(-np.expm1(20.0), rel=1e-6)


def test_twohot_encode_raw_target_matches_loop():
    bins = np.asarray(losses.bins(255), np.float64)
    y = np.concatenate(
        [
            RNG.normal(scale=5, size=200),
            RNG.normal(scale=1e4, size=50),
            [-1e10, 1e10, 0.0, bins[10], bins[-1], 10.0, -0.3],
        ]
    )
    got = np.asarray(losses.twohot_encode(jnp.asarray(y, jnp.float32), 255))
    ref = twohot_reference(np.asarray(y, np.float32).astype(np.float64), bins)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-6)
    # The two weights put the target's raw value back (mean-preserving in raw units).
    inside = np.abs(y) < 1e8
    np.testing.assert_allclose((got * bins).sum(-1)[inside], y[inside], rtol=1e-4, atol=1e-4)


def test_twohot_decode_and_loss_match_numpy():
    logits = RNG.normal(size=(7, 255)).astype(np.float32)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    bins = symexp_bins_reference(255)
    # Raw-unit mean; rtol is loose-ish: +-4.9e8 tails cancel in float32.
    ref = (probs * bins).sum(-1)
    np.testing.assert_allclose(losses.twohot_decode(logits), ref, rtol=1e-3, atol=1.0)
    narrow = np.full((3, 255), -30.0, np.float32)
    narrow[:, 120:135] = RNG.normal(size=(3, 15))  # mass on bins within +-0.6
    p = np.exp(narrow - narrow.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(losses.twohot_decode(narrow), (p * bins).sum(-1), rtol=1e-4, atol=1e-6)
    target = RNG.normal(scale=30, size=7).astype(np.float32)
    enc = twohot_reference(target.astype(np.float64), bins)
    ref_loss = -(enc * np.log(probs)).sum(-1)
    np.testing.assert_allclose(losses.twohot_loss(logits, target), ref_loss, rtol=1e-4)


def test_twohot_decode_is_exactly_zero_for_uniform_and_mirrored_probs():
    assert float(losses.twohot_decode(jnp.zeros((255,)))) == 0.0
    assert float(losses.twohot_decode(jnp.zeros((8,)))) == 0.0
    half = RNG.normal(size=127).astype(np.float32)
    mirrored = np.concatenate([half, [0.3], half[::-1]])
    assert float(losses.twohot_decode(jnp.asarray(mirrored))) == 0.0


def test_twohot_head_fitted_to_sparse_reward_predicts_its_mean():
    """A target that is 0 w.p. 0.967 and +10 otherwise has mean
    0.33. Two-hot on symlog bins decoded by symexp(E[symlog y]) predicts ~0.08."""
    targets = np.zeros(1000, np.float32)
    targets[:33] = 10.0
    grad = jax.jit(
        jax.grad(lambda l: losses.twohot_loss(jnp.broadcast_to(l, (1000, 255)), jnp.asarray(targets)).mean())
    )
    logits = jnp.zeros(255, jnp.float32)
    m = v = jnp.zeros(255, jnp.float32)
    for t in range(1, 1001):  # Adam, lr 0.05
        g = grad(logits)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        logits = logits - 0.05 * (m / (1 - 0.9**t)) / (jnp.sqrt(v / (1 - 0.999**t)) + 1e-8)
    assert float(losses.twohot_decode(logits)) == pytest.approx(0.33, rel=0.05)


def lambda_return_reference(rew, disc, value, lam):
    B, H = rew.shape
    out = np.zeros((B, H))
    for b in range(B):
        ret = value[b, H]
        for k in reversed(range(H)):
            ret = rew[b, k] + disc[b, k] * ((1 - lam) * value[b, k + 1] + lam * ret)
            out[b, k] = ret
    return out


def test_lambda_return_matches_loop():
    B, H = 5, 15
    rew = RNG.normal(size=(B, H)).astype(np.float32)
    disc = (0.997 * RNG.uniform(0.5, 1, size=(B, H))).astype(np.float32)
    value = RNG.normal(size=(B, H + 1)).astype(np.float32)
    got = losses.lambda_return(rew, disc, value, 0.95)
    np.testing.assert_allclose(got, lambda_return_reference(rew, disc, value, 0.95), rtol=1e-4, atol=1e-5)


def test_lambda_return_lambda_one_and_zero():
    rew = np.ones((1, 3), np.float32)
    disc = np.full((1, 3), 0.5, np.float32)
    value = np.array([[0.0, 2.0, 2.0, 8.0]], np.float32)
    # lambda = 1: discounted rewards plus the discounted bootstrap.
    np.testing.assert_allclose(losses.lambda_return(rew, disc, value, 1.0)[0, 0], 1 + 0.5 + 0.25 + 0.125 * 8)
    # lambda = 0: one-step TD targets.
    np.testing.assert_allclose(losses.lambda_return(rew, disc, value, 0.0)[0], [2.0, 2.0, 5.0])


def test_imag_targets_match_a_loop_over_the_trajectory():
    """Returns from step 1 on, the weight of step k = disc_0 ... disc_k / gamma (disc =
    gamma * con), and the normaliser moved once by these returns."""
    B, H, gamma, lam = 4, 6, 0.997, 0.95
    rew = RNG.normal(size=(B, H + 1)).astype(np.float32)
    con = RNG.uniform(0.3, 1, size=(B, H + 1)).astype(np.float32)
    val = RNG.normal(size=(B, H + 1)).astype(np.float32)
    state = losses.retnorm_init()
    targets, new_state = losses.imag_targets(
        rew=rew,
        con=con,
        val=val,
        retnorm_state=state,
        discount=gamma,
        lam=lam,
        retnorm={"rate": 0.01, "limit": 1.0, "plo": 5.0, "phi": 95.0},
    )
    disc = gamma * con
    ret = lambda_return_reference(rew[:, 1:], disc[:, 1:], val, lam)
    weight = np.empty((B, H))  # weight_k = disc_0 ... disc_k / gamma
    weight[:, 0] = con[:, 0]
    for k in range(1, H):
        weight[:, k] = weight[:, k - 1] * disc[:, k]
    lo, hi = 0.01 * np.percentile(ret, 5), 0.01 * np.percentile(ret, 95)
    np.testing.assert_allclose(targets["ret"], ret, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(targets["weight"], weight, rtol=1e-5)
    np.testing.assert_allclose(targets["weight"][:, 0], con[:, 0], rtol=1e-6)
    np.testing.assert_allclose(new_state["lo"], lo, rtol=1e-4)
    np.testing.assert_allclose(new_state["hi"], hi, rtol=1e-4)
    assert float(targets["scale"]) == max(1.0, hi - lo)


@pytest.mark.parametrize("debias", [False, True])
def test_percentile_normaliser_matches_loop(debias):
    state = losses.retnorm_init()
    lo = hi = corr = 0.0
    for step in range(6):
        x = RNG.normal(loc=step, scale=300 + step, size=(64, 15)).astype(np.float32)
        state, scale = losses.retnorm_update(state, x, rate=0.01, limit=1.0, debias=debias)
        lo = 0.99 * lo + 0.01 * np.percentile(x, 5)
        hi = 0.99 * hi + 0.01 * np.percentile(x, 95)
        corr = 0.99 * corr + 0.01
        factor = 1 / max(0.01, corr) if debias else 1.0
        np.testing.assert_allclose(scale, max(1.0, (hi - lo) * factor), rtol=1e-4)
    # Small returns: the scale stays at the limit, advantages are not blown up.
    _, scale = losses.retnorm_update(losses.retnorm_init(), np.full((10,), 0.1, np.float32))
    assert float(scale) == 1.0


def test_percentile_normaliser_is_not_debiased_by_default():
    """Official retnorm.debias False: one update of returns spread ~1000 moves
    the zero-initialised EMAs by 1%, so the scale is ~10, not ~1000."""
    x = np.linspace(-500, 500, 101).astype(np.float32)
    _, scale = losses.retnorm_update(losses.retnorm_init(), x)
    np.testing.assert_allclose(scale, 0.01 * 900.0, rtol=1e-4)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_kl_with_free_nats_matches_numpy():
    post = RNG.normal(size=(4, 8, 32, 16)).astype(np.float32)
    prior = RNG.normal(size=(4, 8, 32, 16)).astype(np.float32)
    p, q = softmax(post.astype(np.float64)), softmax(prior.astype(np.float64))
    kl = (p * (np.log(p) - np.log(q))).sum((-2, -1))
    dyn, rep = losses.kl_losses(post, prior, 1.0)
    np.testing.assert_allclose(dyn, np.maximum(1.0, kl), rtol=1e-4)
    np.testing.assert_allclose(rep, np.maximum(1.0, kl), rtol=1e-4)
    # Below the free nats the loss is flat: no gradient.
    close = post + 1e-3 * RNG.normal(size=post.shape).astype(np.float32)
    grad = jax.grad(lambda x: losses.kl_losses(x, close, 1.0)[1].sum())(post)
    assert float(jnp.abs(grad).max()) == 0.0


def test_kl_is_taken_between_the_unimix_distributions():
    """Official: dyn and rep on OneHot(logits, unimix=0.01). Peaked logits make the
    raw KL huge (~190 nats here) and the mixed one far smaller."""
    post = (8 * RNG.normal(size=(2, 3, 32, 4))).astype(np.float32)
    prior = (8 * RNG.normal(size=(2, 3, 32, 4))).astype(np.float32)
    p = 0.99 * softmax(post.astype(np.float64)) + 0.01 / 4
    q = 0.99 * softmax(prior.astype(np.float64)) + 0.01 / 4
    kl = (p * (np.log(p) - np.log(q))).sum((-2, -1))
    dyn, rep = losses.kl_losses(post, prior, 1.0, unimix=0.01)
    np.testing.assert_allclose(dyn, np.maximum(1.0, kl), rtol=1e-4)
    np.testing.assert_allclose(rep, np.maximum(1.0, kl), rtol=1e-4)


def test_unimix_categorical_matches_numpy():
    logits = RNG.normal(scale=10, size=(6, 5)).astype(np.float32)
    ref = 0.99 * softmax(logits.astype(np.float64)) + 0.01 / 5
    got = np.exp(np.asarray(losses.unimix_logits(logits, 0.01)))
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    assert got.min() >= 0.01 / 5 - 1e-7


def test_imag_loss_mask_none_equals_ones_and_scales_policy_steps():
    B, H, K = 3, 15, 255
    args = dict(
        logpi=jnp.asarray(RNG.normal(size=(B, H)), jnp.float32),
        ent=jnp.asarray(RNG.uniform(size=(B, H)), jnp.float32),
        val_logits=jnp.asarray(RNG.normal(size=(B, H, K)), jnp.float32),
        ret=jnp.asarray(RNG.normal(size=(B, H)), jnp.float32),
        val=jnp.asarray(RNG.normal(size=(B, H)), jnp.float32),
        slowval=jnp.asarray(RNG.normal(size=(B, H)), jnp.float32),
        weight=jnp.asarray(RNG.uniform(size=(B, H)), jnp.float32),
        scale=jnp.float32(2.0),
    )
    base, base_outs, _ = losses.imag_loss(**args)
    ones, _, _ = losses.imag_loss(**args, imag_mask=jnp.ones(H))
    assert float(base["policy"]) == float(ones["policy"])
    mask = jnp.linspace(1.0, 0.1, H)
    masked, outs, _ = losses.imag_loss(**args, imag_mask=mask)
    np.testing.assert_allclose(outs["pol_weight"], args["weight"] * mask[None], rtol=1e-6)
    assert float(masked["value"]) == float(base["value"])  # mask_value False
    masked_v, _, _ = losses.imag_loss(**args, imag_mask=mask, mask_value=True)
    assert float(masked_v["value"]) < float(base["value"])
    # Policy loss by hand: -(logpi * adv + actent * ent) * weight, averaged.
    adv = (args["ret"] - args["val"]) / 2.0
    ref = -(args["logpi"] * adv + 3e-4 * args["ent"]) * args["weight"]
    np.testing.assert_allclose(base["policy"], ref.mean(), rtol=1e-5)


@pytest.mark.parametrize("last_at", [None, 5])
def test_repl_loss_targets(last_at):
    B, T = 2, 10
    rew = RNG.normal(size=(B, T)).astype(np.float32)
    con = np.ones((B, T), np.float32)
    boot = RNG.normal(size=(B, T)).astype(np.float32)
    is_last = np.zeros((B, T), bool)
    if last_at is not None:
        is_last[:, last_at] = True
    logits = np.zeros((B, T, 255), np.float32)
    loss, mets = losses.repl_loss(logits, rew, con, boot, boot, is_last, 0.99, 0.95)
    assert np.isfinite(float(loss))
    # Reference: the lambda return along the replay, bootstrapped with `boot`.
    lam = 0.95 * (1 - is_last[:, 1:])
    ref = np.zeros((B, T - 1))
    for b in range(B):
        ret = boot[b, -1]
        for t in reversed(range(T - 1)):
            ret = rew[b, t + 1] + 0.99 * ((1 - lam[b, t]) * boot[b, t + 1] + lam[b, t] * ret)
            ref[b, t] = ret
    np.testing.assert_allclose(mets["repval/ret"], ref.mean(), rtol=1e-4)
