"""Parity with the official DreamerV3: parameter counts.

The official prints the parameters its optimizer updates (the slow critic is
not among them): 688,004 for size1m and 10,498,772 for size12m on Atari100k
Alien inputs (64x64x3 image, 18 actions). Counted from shapes with
jax.eval_shape: nothing is compiled or allocated.
"""

import elements
import jax
import numpy as np
import pytest
from conftest import load_config

from dreamerv3 import agent as agentlib
from dreamerv3 import envs


def alien_spaces():
    obs = {"image": elements.Space(np.uint8, (64, 64, 3)), **envs.step_spaces()}
    return obs, {"action": elements.Space(np.int32, (), 0, 18)}


@pytest.mark.parametrize("size, official", [("size1m", 688_004), ("size12m", 10_498_772)])
def test_param_count_on_alien_equals_the_official(size, official):
    config = load_config("atari100k", size).update({"task": "atari100k_alien"})
    counts = agentlib.count_params(*alien_spaces(), config)
    assert counts["total"] == official, counts


def test_replay_value_loss_trains_the_world_model():
    """Official repval_grad True: with every loss scale 0 but repval's, one update
    moves the encoder and the RSSM (through the replayed features) and leaves the
    decoder and the reward/continue heads exactly as they were."""
    from conftest import make_batch, spaces

    from dreamerv3.agent import Agent

    scales = {k: 0.0 for k in ("rec", "rew", "con", "dyn", "rep", "policy", "value")}
    config = load_config("debug").update({"agent.loss_scales": {**scales, "repval": 1.0}})
    assert config.agent.repval_grad is True
    obs_space, act_space = spaces(image=None)  # vector only: a quick compile
    agent = Agent(obs_space, act_space, config)
    before = jax.device_get(agent.state["params"])
    batch = make_batch(config.batch_size, config.batch_length, image=None, config=config)
    # Two updates: the critic's output layer starts at zero, so at the first
    # one no gradient reaches its inputs.
    for _ in range(2):
        agent.train(agent.init_train(config.batch_size), batch)
    after = jax.device_get(agent.state["params"])
    moved = lambda part: [k for k in before if k.split("/")[1] == part and not np.array_equal(before[k], after[k])]
    assert moved("enc") and moved("dyn") and moved("val")
    assert not moved("dec") and not moved("rew") and not moved("con") and not moved("pol")


def test_posterior_input_layer_is_initialised_as_one_layer(debug_agent):
    """The posterior's first layer is one Linear on concat(deter, token) in the official;
    ours runs it as two matmuls (obs0 on deter, obstok on the token), and both parts
    are initialised by the whole layer's fan-in: std 1 / sqrt(deter + token size)."""
    saved = debug_agent.initial_save
    deter = saved["['params']['model/dyn/obs0/kernel']"]
    token = saved["['params']['model/dyn/obstok/kernel']"]
    fan_in = deter.shape[0] + token.shape[0]
    for kernel in (deter, token):
        assert abs(kernel.std() / (1 / np.sqrt(fan_in)) - 1) < 0.1, (kernel.shape, kernel.std())
    # Each part's own fan-in would give a visibly larger std (the old split init).
    assert deter.std() < 0.9 / np.sqrt(deter.shape[0])


def test_agent_uses_the_configs_return_normaliser_without_debias(debug_agent, debug_batch):
    """retnorm.debias False (the official's): after an update from an EMA state of
    (lo, hi) = (-50, 50) the scale is the plain EMA range, not the range divided by
    the bias correction (which would be about 50x larger here)."""
    agent = debug_agent
    assert agent.config.agent.retnorm.debias is False
    state = dict(agent.initial_save)
    state["['retnorm']['lo']"] = np.float32(-50.0)
    state["['retnorm']['hi']"] = np.float32(50.0)
    state["['retnorm']['corr']"] = np.float32(0.01)
    agent.load(state)
    _, _, metrics = agent.train_step(agent.init_train(debug_batch["is_first"].shape[0]), debug_batch)
    after = agent.save()
    spread = float(after["['retnorm']['hi']"] - after["['retnorm']['lo']"])
    np.testing.assert_allclose(metrics["retnorm/scale"], spread, rtol=1e-5)
    assert 90 < metrics["retnorm/scale"] < 110  # debiased: spread / 0.0199, about 5,000
    agent.load(agent.initial_save)


def test_continue_head_learns_the_discount_as_the_official():
    """contdisc (the official's): the continue target is gamma x (1 - terminal) and
    imagination applies no further discount."""
    from dreamerv3 import losses

    config = load_config("debug")
    assert config.agent.contdisc is True
    gamma = 1 - 1 / config.agent.horizon
    term = np.array([[False, False, True]])
    np.testing.assert_allclose(losses.con_target(term, gamma), [[gamma, gamma, 0.0]], rtol=1e-7)
    from conftest import spaces

    from dreamerv3 import model as modellib

    model = modellib.Model(*spaces(), config, name="model")
    assert (model.con_discount, model.imag_disc) == (gamma, 1.0)
    plain = modellib.Model(*spaces(), config.update({"agent.contdisc": False}), name="model")
    assert (plain.con_discount, plain.imag_disc) == (1.0, gamma)
