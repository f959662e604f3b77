"""The RSSM: observe/imagine shapes, prior-only imagination, straight-through samples."""

import jax
import jax.numpy as jnp
import ninjax as nj
import numpy as np
import pytest

from dreamerv3 import losses, rssm

B, T, E, A = 3, 6, 10, 4
KW = dict(deter=16, hidden=8, stoch=4, classes=5, blocks=4)


def key(i):
    return jax.random.PRNGKey(i)


@pytest.fixture(scope="module")
def model():
    dyn = rssm.RSSM(A, **KW, name="dyn")

    def observe_then_imagine(tokens, prevact, resets, actions, k):
        k1, k2 = jax.random.split(k)
        carry, outs = dyn.observe(dyn.initial(B), tokens, prevact, resets, k1)
        imag = dyn.imagine_actions(carry, actions, k2)
        return outs, imag

    def policy_rollout(tokens, prevact, resets, k):
        k1, k2 = jax.random.split(k)
        carry, _ = dyn.observe(dyn.initial(B), tokens, prevact, resets, k1)
        policy = lambda state, key: jax.nn.one_hot(jnp.zeros(B, jnp.int32), A)
        return dyn.imagine(carry, policy, 5, k2)

    rng = np.random.default_rng(0)
    inputs = (
        jnp.asarray(rng.normal(size=(B, T, E)), jnp.float32),
        jax.nn.one_hot(rng.integers(0, A, (B, T)), A),
        jnp.zeros((B, T), bool).at[:, 0].set(True),
        jax.nn.one_hot(rng.integers(0, A, (B, 4)), A),
    )
    params = nj.init(observe_then_imagine)({}, *inputs, key(0))
    fwd = jax.jit(lambda p, *a: nj.pure(observe_then_imagine)(p, *a)[1])
    roll = jax.jit(lambda p, *a: nj.pure(policy_rollout)(p, *a)[1])
    return dyn, params, fwd, roll, inputs


def test_observe_and_imagine_shapes(model):
    dyn, params, fwd, roll, inputs = model
    outs, imag = fwd(params, *inputs, key(1))
    assert outs["deter"].shape == (B, T, 16)
    assert outs["stoch"].shape == (B, T, 4, 5)
    assert outs["post"].shape == outs["prior"].shape == (B, T, 4, 5)
    assert imag["deter"].shape == (B, 4, 16) and imag["stoch"].shape == (B, 4, 4, 5)
    # Samples are one-hot in the forward pass.
    np.testing.assert_allclose(np.asarray(outs["stoch"]).sum(-1), 1.0, atol=1e-5)
    states, actions = roll(params, *inputs[:3], key(2))
    assert states["deter"].shape == (B, 6, 16) and actions.shape == (B, 6, A)


def test_imagination_uses_the_prior_only(model):
    """imagine_actions takes no observations: its output is a function of the start
    state, the actions and the key. (That later observations cannot leak into the
    open-loop prediction is tested on the agent in test_agent.py.)"""
    dyn, params, fwd, roll, inputs = model
    tokens, prevact, resets, actions = inputs
    _, imag = fwd(params, tokens, prevact, resets, actions, key(3))
    _, again = fwd(params, tokens, prevact, resets, actions, key(3))
    np.testing.assert_array_equal(imag["deter"], again["deter"])
    # A different start state (last observed token changed) changes the imagination.
    other = tokens.at[:, -1].add(5.0)
    _, moved = fwd(params, other, prevact, resets, actions, key(3))
    assert not np.allclose(imag["deter"], moved["deter"])
    # Same start, different actions: different imagination (actions are used).
    _, acted = fwd(params, tokens, prevact, resets, jnp.roll(actions, 1, -1), key(3))
    assert not np.allclose(imag["deter"], acted["deter"])


def test_resets_zero_the_state(model):
    dyn, params, fwd, roll, inputs = model
    tokens, prevact, resets, actions = inputs
    outs, _ = fwd(params, tokens, prevact, resets, actions, key(4))
    # With a reset at t=3, steps from 3 on do not depend on tokens before 3.
    resets2 = resets.at[:, 3].set(True)
    a, _ = fwd(params, tokens, prevact, resets2, actions, key(4))
    b, _ = fwd(params, tokens.at[:, :3].add(3.0), prevact, resets2, actions, key(4))
    np.testing.assert_allclose(a["deter"][:, 3:], b["deter"][:, 3:], atol=1e-6)


def test_straight_through_gradient():
    dyn = rssm.RSSM(A, **KW, name="st")

    def f(logits, k):
        return (dyn.sample(logits, k) * jnp.arange(5.0)).sum()

    logits = jnp.zeros((2, 4, 5))
    grad = jax.grad(lambda x: nj.pure(f)({}, x, key(0))[1])(logits)
    assert float(jnp.abs(grad).sum()) > 0


def core_reference(P, deter, stoch, action, G):
    """NumPy block GRU step (official `_core`): no norm on the gate pre-activations."""
    silu = lambda x: x / (1 + np.exp(-x))
    sigmoid = lambda x: 1 / (1 + np.exp(-x))
    norm = lambda x, s: x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-4) * s
    B, D = deter.shape
    action = action / np.maximum(1, np.abs(action))
    parts = [
        silu(norm(x @ P[f"in{i}/kernel"] + P[f"in{i}/bias"], P[f"innorm{i}/scale"]))
        for i, x in enumerate([deter, stoch.reshape(B, -1), action])
    ]
    x = np.concatenate(parts, -1)
    blocks = deter.reshape(B, G, D // G)
    hid = np.concatenate(
        [blocks[:, g] @ P["dyn0/kernel"][g, : D // G] + x @ P["dyn0/kernel"][g, D // G :] for g in range(G)], -1
    )
    hid = silu(norm(hid + P["dyn0/bias"], P["dynnorm0/scale"]))  # one norm over all D
    hid = hid.reshape(B, G, D // G)
    gates = np.stack([hid[:, g] @ P["gru/kernel"][g] for g in range(G)], 1)
    gates = gates + P["gru/bias"].reshape(G, -1)
    reset, cand, update = np.split(gates, 3, -1)  # each [B, G, D/G]
    cand = np.tanh(sigmoid(reset) * cand)
    update = sigmoid(update - 1)
    return (update * cand + (1 - update) * blocks).reshape(B, D)


def test_core_matches_numpy_without_gate_norm():
    dyn = rssm.RSSM(A, **KW, name="dyn")
    rng = np.random.default_rng(3)
    deter = jnp.asarray(rng.normal(size=(B, KW["deter"])), jnp.float32)
    stoch = jax.nn.one_hot(rng.integers(0, KW["classes"], (B, KW["stoch"])), KW["classes"])
    action = jnp.asarray(3 * rng.normal(size=(B, A)), jnp.float32)
    params = nj.init(dyn.core)({}, deter, stoch, action)
    assert not any("gru" in k and "norm" in k for k in params), sorted(params)
    params = {
        k: jnp.asarray(rng.normal(size=v.shape) * (0.5 if k.endswith("kernel") else 1.0), jnp.float32)
        for k, v in params.items()
    }
    _, got = jax.jit(nj.pure(dyn.core))(params, deter, stoch, action)
    P = {k.split("/", 1)[1]: np.asarray(v, np.float64) for k, v in params.items()}
    ref = core_reference(P, *(np.asarray(x, np.float64) for x in (deter, stoch, action)), KW["blocks"])
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-4, atol=1e-5)


def test_kl_loss_uses_the_unimix_distributions(model):
    dyn, params, fwd, _, inputs = model
    outs, _ = fwd(params, *inputs, key(1))
    dyn_loss, _ = dyn.kl_loss(outs)
    mixed, _ = losses.kl_losses(outs["post"], outs["prior"], 0.0, 0.01)
    np.testing.assert_allclose(dyn_loss, np.maximum(1.0, mixed), rtol=1e-5)
