"""Parity with the official DreamerV3 (issue 12, SPEC section 8): parameter counts.

The official prints the parameters its optimizer updates (the slow critic is
not among them): 688,004 for size1m and 10,498,772 for size12m on Atari100k
Alien inputs (64x64x3 image, 18 actions). Counted from shapes with
jax.eval_shape: nothing is compiled or allocated.
"""

import elements
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
