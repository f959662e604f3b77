"""Train metrics under the official DreamerV3's names: NumPy
references for each formula, the agent's and the run loop's keys, and the toolkit
reading runs written before the rename."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from analysis import ingest
from dreamerv3 import metrics, nets

# Every key the official writes in a train run (prefix train/ unless given).
OFFICIAL_TRAIN_KEYS = [
    "loss/image",
    "loss/vector",
    "loss/dyn",
    "loss/rep",
    "loss/rew",
    "loss/con",
    "loss/policy",
    "loss/value",
    "loss/repval",
    "adv",
    "adv_std",
    "adv_mag",
    "rew",
    "con",
    "ret",
    "val",
    "tar",
    "weight",
    "slowval",
    "ret_min",
    "ret_max",
    "ret_rate",
    "ent/action",
    "rand/action",
    "dyn_ent",
    "rep_ent",
    "opt/loss",
    "opt/updates",
    "opt/grad_norm",
    "opt/grad_rms",
    "opt/update_rms",
    "opt/param_rms",
    "opt/param_count",
]
OFFICIAL_REPLAY_KEYS = ["items", "chunks", "streams", "ram_gb", "inserts", "samples", "updates", "replay_ratio"]


def test_rms_matches_numpy():
    rng = np.random.default_rng(0)
    tree = {"a": rng.normal(size=(3, 4)), "b": [rng.normal(size=5), rng.normal(size=(2, 2, 2))]}
    flat = np.concatenate([x.ravel() for x in jax.tree.leaves(tree)])
    np.testing.assert_allclose(metrics.rms(jax.tree.map(jnp.asarray, tree)), np.sqrt(np.mean(flat**2)), rtol=1e-6)


def test_return_metrics_match_numpy():
    rng = np.random.default_rng(1)
    ret, adv, slowval = rng.normal(3, 2, (8, 15)), rng.normal(size=(8, 15)), rng.normal(size=(8, 16))
    out = metrics.return_metrics(*(jnp.asarray(x, jnp.float32) for x in (ret, 0.5, 2.5, adv, slowval)))
    normed = (ret - 0.5) / 2.5
    expected = {
        "ret": normed.mean(),
        "ret_min": normed.min(),
        "ret_max": normed.max(),
        "ret_rate": (np.abs(normed) >= 1).mean(),
        "tar": ret.mean(),
        "adv_mag": np.abs(adv).mean(),
        "slowval": slowval.mean(),
    }
    assert set(out) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(out[key], value, rtol=1e-5, err_msg=key)


def test_entropy_bounds_are_the_policy_extremes():
    lo, hi = metrics.entropy_bounds(True, 6)
    uniform = nets.Categorical(jnp.zeros((4, 6))).entropy()
    assert lo == 0.0 and hi == pytest.approx(math.log(6))
    assert float(metrics.policy_randomness(uniform, (lo, hi))) == pytest.approx(1.0, abs=1e-6)
    lo, hi = metrics.entropy_bounds(False, 3, minstd=0.1, maxstd=1.0)
    widest = nets.BoundedNormal(jnp.zeros((2, 3)), jnp.ones((2, 3))).entropy()
    narrowest = nets.BoundedNormal(jnp.zeros((2, 3)), jnp.full((2, 3), 0.1)).entropy()
    np.testing.assert_allclose([lo, hi], [narrowest[0], widest[0]], rtol=1e-6)
    assert float(metrics.policy_randomness(narrowest, (lo, hi))) == pytest.approx(0.0, abs=1e-5)


def test_latent_entropy_matches_numpy():
    rng = np.random.default_rng(2)
    probs = rng.dirichlet(np.ones(4), size=(5, 7, 3)).astype(np.float32)  # [B, T, S, C]
    expected = -(probs * np.log(probs)).sum((-2, -1)).mean()
    np.testing.assert_allclose(metrics.latent_entropy(jnp.asarray(probs)), expected, rtol=1e-5)
    onehot = np.eye(4, dtype=np.float32)[rng.integers(0, 4, (5, 3))]
    assert float(metrics.latent_entropy(jnp.asarray(onehot))) == 0.0


def test_reward_rate_by_hand():
    assert metrics.reward_rate([0, 0, 1, 1, 0]) == 0.5
    assert metrics.reward_rate([1.0, 1.005, 1.02]) == 0.5  # a change under 0.01 does not count
    assert metrics.reward_rate([3.0]) is None and metrics.reward_rate([]) is None


def test_agent_writes_every_official_train_key(debug_agent, debug_batch):
    agent = debug_agent
    agent.load(agent.initial_save)
    _, _, m = agent.train(agent.init_train(debug_batch["is_first"].shape[0]), debug_batch)
    missing = [k for k in OFFICIAL_TRAIN_KEYS if k not in m]
    assert not missing, missing
    assert all(math.isfinite(m[k]) for k in OFFICIAL_TRAIN_KEYS)
    assert "loss/rec" not in m and "ent/policy" not in m  # renamed, not duplicated
    assert {"repval/ret", "retnorm/scale", "imag_adapt/mask_mean"} <= set(m)  # ours kept
    assert m["opt/updates"] == 1 and m["opt/param_count"] == agent.param_counts["total"]
    lo = float(agent.state["retnorm"]["lo"])
    assert m["ret"] == pytest.approx((m["tar"] - lo) / m["retnorm/scale"], rel=1e-4, abs=1e-6)
    assert 0.9 < m["rand/action"] <= 1.0  # the initial policy is near uniform
    assert m["dyn_ent"] > 0 and m["rep_ent"] > 0


def test_run_loop_writes_replay_epstats_and_usage(tmp_path):
    from fakes import FakeAgent

    from dreamerv3 import main

    logdir = tmp_path / "run"
    argv = [
        "--logdir",
        str(logdir),
        "--configs",
        "debug",
        "--run.steps",
        "130",
        "--env.dummy.length",
        "40",
        "--run.log_every",
        "0",
    ]
    assert main.main(argv, agent_cls=FakeAgent) == 0
    rows = [json.loads(x) for x in (logdir / "metrics.jsonl").read_text().splitlines()]
    keys = set().union(*rows)
    assert {f"replay/{k}" for k in OFFICIAL_REPLAY_KEYS} <= keys
    assert {"usage/psutil/proc_ram_gb", "usage/psutil/total_cpu_frac"} <= keys
    rates = [r["epstats/reward_rate"] for r in rows if "epstats/reward_rate" in r]
    assert rates and all(0 <= r <= 1 for r in rates)


def test_toolkit_reads_runs_written_before_the_rename(tmp_path):

    run = tmp_path / "atari100k_alien_baseline" / "seed0"
    run.mkdir(parents=True)
    old = [
        {"step": 100, "train/loss/rec": 5.0, "train/ent/policy": 2.8, "train/loss/dyn": 1.0},
        {"step": 200, "report/loss/rec": 4.0},
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old))
    (run / "scores.jsonl").write_text(json.dumps({"step": 100, "episode/score": 1.0}) + "\n")
    _, table, _ = ingest.read_run(run)
    values = dict(zip(table["key"].cast(str), table["value"]))
    assert values == {"train/loss/image": 5.0, "train/ent/action": 2.8, "train/loss/dyn": 1.0, "report/loss/image": 4.0}
