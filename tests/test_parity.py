"""Parity with the official DreamerV3 (issue 12, SPEC section 8): parameter counts.

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
    obs_space, act_space = spaces(image=None)                 # vector only: a quick compile
    agent = Agent(obs_space, act_space, config)
    before = jax.device_get(agent.state["params"])
    batch = make_batch(config.batch_size, config.batch_length, image=None, config=config)
    # Two updates: the critic's output layer starts at zero, so at the first
    # one no gradient reaches its inputs.
    for _ in range(2):
        agent.train(agent.init_train(config.batch_size), batch)
    after = jax.device_get(agent.state["params"])
    moved = lambda part: [k for k in before if k.split("/")[1] == part
                          and not np.array_equal(before[k], after[k])]
    assert moved("enc") and moved("dyn") and moved("val")
    assert not moved("dec") and not moved("rew") and not moved("con") and not moved("pol")
