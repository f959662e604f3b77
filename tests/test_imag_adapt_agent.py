"""The adaptive horizon inside the agent's update.

Disabled: the update is bit-for-bit the one without the rule's code (rule=False).
Enabled with a loss/dyn far above its EMA: the actor's per-step weights shrink
by exactly the rule's mask; with a normal loss/dyn they stay untouched.
"""

import numpy as np

from dreamerv3 import imag_adapt

H = 15


def adapt_keys(saved):
    ema = [k for k in saved if "adapt" in k and "ema" in k][0]
    count = [k for k in saved if "adapt" in k and "count" in k][0]
    return ema, count


def train_with_mask_on(agent, carry, batch):
    """One update of `agent` with agent.imag_adapt.enabled on: an argument of the compiled
    update, so the shared agent's program is reused; its scalars are restored after."""
    scalars = agent.scalars
    agent.scalars = {**scalars, "adapt": {**scalars["adapt"], "enabled": np.bool_(True)}}
    try:
        return agent.train_step(carry, batch)
    finally:
        agent.scalars = scalars


def test_disabled_is_bit_exact_dreamerv3(debug_agent, debug_batch):
    agent = debug_agent
    assert not agent.config.agent.imag_adapt.enabled
    carry = agent.init_train(debug_batch["is_first"].shape[0])
    agent.load(agent.initial_save)
    _, _, with_hook = agent.train_step(carry, debug_batch)
    state_hook = agent.save()
    agent.load(agent.initial_save)
    _, _, without = agent.train_step(carry, debug_batch, rule=False)
    state_plain = agent.save()
    for key, value in without.items():
        assert with_hook[key] == value, (key, with_hook[key], value)  # bit for bit
    for key in state_plain:
        if "adapt" in key:
            continue  # the rule still tracks loss/dyn when disabled
        np.testing.assert_array_equal(state_hook[key], state_plain[key], err_msg=key)
    assert with_hook["imag_adapt/active"] == 0.0 and with_hook["imag_adapt/mask_mean"] == 1.0


def test_high_loss_dyn_activates_mask_and_normal_does_not(debug_agent, debug_batch):
    agent = debug_agent
    carry = agent.init_train(debug_batch["is_first"].shape[0])
    ema_key, count_key = adapt_keys(agent.initial_save)
    cfg = agent.adapt_cfg

    # A small EMA (the model was doing much better) after warmup: loss/dyn jumps.
    state = dict(agent.initial_save)
    state[ema_key] = np.float32(0.1)
    state[count_key] = np.int32(cfg["warmup"] + 5)
    agent.load(state)
    _, outs, metrics = train_with_mask_on(agent, carry, debug_batch)
    assert metrics["loss/dyn"] > cfg["abs_thresh"], metrics["loss/dyn"]
    assert metrics["imag_adapt/active"] == 1.0
    ema = 0.99 * 0.1 + 0.01 * metrics["loss/dyn"]
    expected, _, _ = imag_adapt.imag_mask(
        np.float32(metrics["loss/dyn"]), {"ema": np.float32(0.1), "count": np.int32(cfg["warmup"] + 5)}, cfg, H
    )
    np.testing.assert_allclose(metrics["imag_adapt/ema"], ema, rtol=1e-5)
    ratio = outs["pol_weight"] / outs["weight"]
    np.testing.assert_allclose(ratio, np.asarray(expected), rtol=1e-5)
    assert ratio[: cfg["min_horizon"]].min() == 1.0 and ratio[-1] < 1.0
    assert metrics["imag_adapt/horizon_eff"] < H

    # An EMA at the current level: nothing changes.
    state[ema_key] = np.float32(metrics["loss/dyn"])
    agent.load(state)
    _, outs, normal = train_with_mask_on(agent, carry, debug_batch)
    assert normal["imag_adapt/active"] == 0.0
    np.testing.assert_array_equal(outs["pol_weight"], outs["weight"])
    assert normal["imag_adapt/horizon_eff"] == H


def test_shorter_horizon_with_placebo_off_then_on(debug_config):
    """The fixed-horizon arm (--agent.imag_length 5) trains; in placebo mode at
    rate 1 with warmup 1 (one compile) the first update has the mask off (the
    actor's weights untouched) and the second has it on: the placebo's mask
    over the 5 imagined steps, whatever loss/dyn is."""
    from conftest import make_batch, spaces

    from dreamerv3.agent import Agent

    config = debug_config.update(
        {
            "agent.imag_length": 5,
            "agent.imag_adapt.enabled": True,
            "agent.imag_adapt.mode": "placebo",
            "agent.imag_adapt.placebo_rate": 1.0,
            "agent.imag_adapt.placebo_severity": 1.0,
            "agent.imag_adapt.warmup": 1,
        }
    )
    agent = Agent(*spaces(), config)
    batch = make_batch(config.batch_size, config.batch_length, config=config)
    carry = agent.init_train(config.batch_size)

    carry, outs, first = agent.train_step(carry, batch)
    assert outs["weight"].shape == (5,) and np.isfinite(first["loss/policy"])
    assert first["imag_adapt/active"] == 0.0 and first["imag_adapt/horizon_eff"] == 5
    np.testing.assert_array_equal(outs["pol_weight"], outs["weight"])

    _, outs, second = agent.train_step(carry, batch)
    expected = np.asarray(imag_adapt.step_mask(0.85, True, 5, 3, 0.1))  # severity 1: gamma = min_decay
    np.testing.assert_allclose(outs["pol_weight"] / outs["weight"], expected, rtol=1e-5)
    assert second["imag_adapt/active"] == 1.0
    np.testing.assert_allclose(second["imag_adapt/horizon_eff"], expected.sum(), rtol=1e-6)
    assert np.isfinite(second["loss/policy"])
