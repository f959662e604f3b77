"""Replay context (the official `replay_context: 1`): each training
sequence starts from the latent state the policy stored with the step before it, and
the update hands back the batch's fresh posteriors for replay.update()."""

import jax
import numpy as np
import pytest
from conftest import make_batch


def train_once(agent, data):
    agent.load(agent.initial_save)
    carry = agent.init_train(data["is_first"].shape[0])
    _, outs, metrics = agent.train_step(carry, data)
    return metrics, outs


def test_config_and_ext_space(debug_agent, debug_config):
    assert debug_config.replay_context == 1 and debug_config.replay.online is True
    space = debug_agent.ext_space
    rssm = debug_config.agent.rssm
    assert space["dyn/deter"].shape == (rssm.deter,) and space["dyn/stoch"].shape == (rssm.stoch,)
    assert space["dyn/stoch"].dtype == np.uint8


def test_stored_deter_follows_the_compute_precision(debug_config):
    """float32 on CPU; half precision (float16, a dtype checkpoints can hold) under
    bfloat16 compute, halving replay's latent memory as the official's bfloat16."""
    from dreamerv3 import agent as agentlib

    for dtype, stored in (("float32", np.float32), ("bfloat16", np.float16)):
        config = debug_config.update({"jax.compute_dtype": dtype})
        stub = agentlib.Agent.__new__(agentlib.Agent)
        stub.acfg, stub.context = config.agent, 1
        stub.net_settings = agentlib.net_settings(config)
        assert stub.ext_space["dyn/deter"].dtype == stored


def test_policy_outputs_the_entries_replay_stores(debug_agent, debug_batch):
    agent = debug_agent
    obs = {k: v[:3, 0] for k, v in debug_batch.items()}
    carry, _, outs = agent.policy(agent.init_policy(3), obs)
    np.testing.assert_array_equal(outs["dyn/deter"], np.asarray(carry["deter"]))
    np.testing.assert_array_equal(outs["dyn/stoch"], np.asarray(carry["stoch"]).argmax(-1))


def test_sequence_starts_from_the_stored_state_and_action(debug_agent, debug_config):
    """The first trained step's deter is the GRU step from the stored (deter, stoch)
    of the context step under that step's action, exactly what the policy computes
    from that state; the context step's own observations are not trained on."""
    agent = debug_agent
    data = make_batch(4, debug_config.batch_length, seed=11, config=debug_config)
    agent.load(agent.initial_save)
    rssm = debug_config.agent.rssm
    start = {
        "deter": data["dyn/deter"][:, 0],
        "stoch": np.eye(rssm.classes, dtype=np.float32)[data["dyn/stoch"][:, 0]],
        "prevact": np.eye(6, dtype=np.float32)[data["action"][:, 0]],
    }
    start = jax.device_put(start, agent.policy_repl)
    obs = {k: v[:, 1] for k, v in data.items()}
    policy_carry, _, _ = agent.policy(start, obs)

    metrics, outs = train_once(agent, data)
    fresh = outs["replay"]
    T = debug_config.batch_length
    assert fresh["dyn/deter"].shape == (4, T, rssm.deter)
    assert fresh["dyn/stoch"].shape == (4, T, rssm.stoch) and fresh["dyn/stoch"].dtype == np.uint8
    np.testing.assert_allclose(fresh["dyn/deter"][:, 0], np.asarray(policy_carry["deter"]), rtol=1e-5, atol=1e-5)

    # The stored state of the context step matters ...
    moved = {k: v.copy() for k, v in data.items()}
    moved["dyn/deter"][:, 0] += 1.0
    other, outs2 = train_once(agent, moved)
    assert not np.allclose(outs2["replay"]["dyn/deter"][:, 0], fresh["dyn/deter"][:, 0])
    assert other["loss/dyn"] != metrics["loss/dyn"]
    # ... its observations, reward and the stored states of trained steps do not.
    ignored = {k: v.copy() for k, v in data.items()}
    ignored["image"][:, 0] = 255 - ignored["image"][:, 0]
    ignored["reward"][:, 0] += 5.0
    ignored["dyn/deter"][:, 1:] = 0.0
    same, outs3 = train_once(agent, ignored)
    np.testing.assert_array_equal(outs3["replay"]["dyn/deter"], fresh["dyn/deter"])
    assert same["loss/dyn"] == metrics["loss/dyn"] and same["loss/rew"] == metrics["loss/rew"]


def test_episode_start_in_the_sequence_still_resets(debug_agent, debug_config):
    """is_first on the first trained step: the stored state must not leak in."""
    agent = debug_agent
    data = make_batch(4, debug_config.batch_length, seed=12, config=debug_config)
    data["is_first"][:, 1] = True
    _, outs = train_once(agent, data)
    moved = {k: v.copy() for k, v in data.items()}
    moved["dyn/deter"][:, 0] += 1.0
    _, outs2 = train_once(agent, moved)
    np.testing.assert_array_equal(outs2["replay"]["dyn/deter"], outs["replay"]["dyn/deter"])


def test_train_hands_back_stepids_for_replay_update(debug_agent, debug_batch, debug_config):
    agent = debug_agent
    agent.load(agent.initial_save)
    B, T = debug_batch["is_first"].shape
    stepid = np.stack(np.meshgrid(np.arange(B), np.arange(T), indexing="ij"), -1)
    _, outs, _ = agent.train(agent.init_train(B), {**debug_batch, "stepid": stepid})
    replay = outs["replay"]
    assert set(replay) == {"stepid", "dyn/deter", "dyn/stoch"}
    np.testing.assert_array_equal(replay["stepid"], stepid[:, 1:])  # the trained steps only
    assert replay["dyn/deter"].shape[:2] == (B, T - 1) == (B, debug_config.batch_length)


def test_missing_latents_is_a_clear_error(debug_agent, debug_batch):

    data = {k: v for k, v in debug_batch.items() if k != "dyn/stoch"}
    with pytest.raises(ValueError, match=r"replay_context 1 needs \['dyn/stoch'\]"):
        debug_agent.train(debug_agent.init_train(4), data)


def test_report_starts_from_the_stored_state(debug_agent, debug_config):
    """The report's losses and open-loop video observe from the context step's
    stored state, as the official report applies the replay context too."""
    agent = debug_agent
    agent.load(agent.initial_save)
    data = make_batch(4, debug_config.report_length, seed=13, config=debug_config)
    _, base = agent.report(agent.init_report(4), data)
    moved = {k: v.copy() for k, v in data.items()}
    moved["dyn/deter"][:, 0] += 1.0
    _, other = agent.report(agent.init_report(4), moved)
    assert other["loss/dyn"] != base["loss/dyn"]
    assert not np.array_equal(other["openloop/image"], base["openloop/image"])
    ignored = {k: v.copy() for k, v in data.items()}
    ignored["image"][:, 0] = 255 - ignored["image"][:, 0]
    _, same = agent.report(agent.init_report(4), ignored)
    np.testing.assert_array_equal(same["openloop/image"], base["openloop/image"])
