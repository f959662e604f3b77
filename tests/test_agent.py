"""The agent on the `debug` config (one shared compiled agent, see conftest.py)."""

import math
import pathlib

import numpy as np
import pytest
from conftest import load_config, make_batch

ROOT = pathlib.Path(__file__).parent.parent
ADAPT_KEYS = ["active", "ratio", "ema", "severity", "gamma", "mask_mean", "horizon_eff"]
LOSS_KEYS = ["dyn", "rep", "image", "vector", "rew", "con", "policy", "value", "repval"]


def test_param_counts_per_module(debug_agent):
    counts = debug_agent.param_counts
    assert set(counts) == {"enc", "dyn", "dec", "rew", "con", "pol", "val", "total"}
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")
    assert all(v > 0 for v in counts.values())


def test_train_step_finite_metrics(debug_agent, debug_batch):
    agent = debug_agent
    agent.load(agent.initial_save)
    carry = agent.init_train(debug_batch["is_first"].shape[0])
    for _ in range(2):
        carry, outs, metrics = agent.train(carry, debug_batch)
    assert set(outs) == {"replay"}  # the fresh posteriors for replay.update
    for key in (
        [f"loss/{k}" for k in LOSS_KEYS]
        + [f"imag_adapt/{k}" for k in ADAPT_KEYS]
        + ["ret", "adv", "val", "rew", "ent/action", "retnorm/scale", "opt/grad_norm", "opt/lr"]
    ):
        assert key in metrics, key
        assert isinstance(metrics[key], float) and math.isfinite(metrics[key]), (key, metrics[key])
    assert metrics["imag_adapt/active"] == 0.0  # disabled in the debug config
    assert metrics["imag_adapt/horizon_eff"] == 15.0
    assert int(np.asarray(agent.state["step"])) == 2


def test_policy_actions(debug_agent, debug_batch):
    agent = debug_agent
    carry = agent.init_policy(3)
    obs = {k: v[:3, 0] for k, v in debug_batch.items()}
    for mode in ("train", "eval"):
        carry, act, _ = agent.policy(carry, obs, mode)
        assert act["action"].dtype == np.int32 and act["action"].shape == (3,)
        assert ((0 <= act["action"]) & (act["action"] < 6)).all()


def test_openloop_ignores_observations_after_context(debug_agent, debug_config):
    agent = debug_agent
    data = make_batch(2, 8, seed=3)
    out = agent.openloop(data, 4)
    assert out["truth"].shape == out["pred"].shape == (2, 8, 16, 16, 3)
    assert out["pred"].dtype == np.uint8
    changed = {k: v.copy() for k, v in data.items()}
    changed["image"][:, 4:] = 255 - changed["image"][:, 4:]
    changed["vector"][:, 4:] += 10.0
    again = agent.openloop(changed, 4)
    np.testing.assert_array_equal(out["pred"], again["pred"])
    # Observations inside the context do matter.
    early = {k: v.copy() for k, v in data.items()}
    early["image"][:, :4] = 255 - early["image"][:, :4]
    assert not np.array_equal(out["pred"], agent.openloop(early, 4)["pred"])


def test_report_video_layout(debug_agent, debug_config):
    agent = debug_agent
    T = debug_config.report_length
    data = make_batch(4, T, seed=5, config=debug_config)
    _, metrics = agent.report(agent.init_report(4), data)
    video = metrics["openloop/image"]
    assert video.dtype == np.uint8
    assert video.shape == (T, 3 * (16 + 4), 4 * (16 + 4), 3)
    assert video.shape[1] % 2 == 0 and video.shape[2] % 2 == 0
    assert tuple(video[0, 0, 0]) == (0, 255, 0) and tuple(video[-1, 0, 0]) == (255, 0, 0)
    assert math.isfinite(metrics["loss/image"]) and math.isfinite(metrics["loss/vector"])


def test_compose_video_error_row():
    from dreamerv3.agent import compose_video

    truth = np.full((1, 2, 4, 4, 3), 100, np.uint8)
    pred = np.full((1, 2, 4, 4, 3), 140, np.uint8)
    video = compose_video(truth, pred, 1)
    assert video.shape == (2, 24, 8, 3)
    assert video[0, 2 * 8 + 2, 2, 0] == (140 - 100 + 255) // 2


def test_save_load_roundtrip(debug_agent, debug_batch):
    agent = debug_agent
    agent.load(agent.initial_save)
    carry = agent.init_train(debug_batch["is_first"].shape[0])
    agent.train(carry, debug_batch)
    saved = agent.save()
    assert all(isinstance(v, np.ndarray) for v in saved.values())
    assert any("adapt" in k and "ema" in k for k in saved)
    agent.train(carry, debug_batch)
    assert not all(np.array_equal(saved[k], v) for k, v in agent.save().items())
    agent.load(saved)
    restored = agent.save()
    assert saved.keys() == restored.keys()
    for key in saved:
        np.testing.assert_array_equal(saved[key], restored[key], err_msg=key)
    ema = [k for k in saved if "adapt" in k and "ema" in k][0]
    count = [k for k in saved if "adapt" in k and "count" in k][0]
    assert float(restored[ema]) > 0 and int(restored[count]) == 1


def test_policy_key_counter_survives_save_and_load(debug_agent, debug_batch):
    """The policy's sampling keys come from (seed, call count): a resumed run continues
    the count instead of drawing the first run's keys again."""
    agent = debug_agent
    agent.load(agent.initial_save)
    assert agent._policy_calls == 0
    obs = {k: v[:1, 0] for k, v in debug_batch.items()}
    carry = agent.init_policy(1)
    for _ in range(3):
        carry, _, _ = agent.policy(carry, obs)
    saved = agent.save()
    assert int(saved["policy_calls"]) == 3
    agent.load(agent.initial_save)
    assert agent._policy_calls == 0
    agent.load(saved)
    assert agent._policy_calls == 3
    legacy = {k: v for k, v in saved.items() if k != "policy_calls"}
    agent.load(legacy)  # a checkpoint written before the counter was saved
    assert agent._policy_calls == 0


def test_invalid_imag_adapt_config_raises(debug_config):
    from conftest import spaces

    from dreamerv3.agent import Agent

    config = debug_config.update({"agent.imag_adapt.rel_max": 1.0})
    with pytest.raises(ValueError, match="agent.imag_adapt.rel_max"):
        Agent(*spaces(), config)


def test_compiler_options_only_on_cpu_and_not_for_default():
    from dreamerv3 import agent as agentlib

    config = load_config("debug").update({"jax.platform": "cpu"})
    assert agentlib.compiler_options(config) == {
        "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
    }
    assert agentlib.compiler_options(config.update({"jax.platform": "cuda"})) is None
    assert agentlib.compiler_options(config.update({"jax.cpu_ynn_fusions": ["default"]})) is None
