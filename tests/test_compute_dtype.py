"""The compute dtype: 'auto' is bfloat16 off CPU (the official's GPU setting), and a
bfloat16 update on the debug config stays close to the float32 one."""

import math

import jax.numpy as jnp
import pytest
from conftest import load_config, spaces

WORLD_MODEL_LOSSES = ("dyn", "rep", "rec", "image", "rew", "con")


def test_auto_is_bfloat16_off_cpu_and_float32_on_cpu():
    from dreamerv3 import agent as agentlib

    config = load_config("debug").update({"jax.platform": "cpu"})
    assert config.jax.compute_dtype == "auto"
    assert agentlib.compute_dtype(config) == jnp.float32
    assert agentlib.compute_dtype(config.update({"jax.platform": "cuda"})) == jnp.bfloat16
    assert (
        agentlib.compute_dtype(config.update({"jax.platform": "cuda", "jax.compute_dtype": "float32"})) == jnp.float32
    )


def test_unknown_compute_dtype_is_one_line_exit_2(capsys, tmp_path):
    from dreamerv3 import main

    code = main.main(["--logdir", str(tmp_path / "run"), "--configs", "debug", "--jax.compute_dtype", "float8"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown --jax.compute_dtype 'float8'"), err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_bfloat16_update_matches_float32_within_tolerance(debug_agent, debug_batch):
    """Same parameters, same batch, same keys: the first update's world-model
    losses agree to a few percent (bfloat16 keeps 8 bits of mantissa; norms,
    losses and outputs stay float32)."""
    from dreamerv3.agent import Agent, compute_dtype

    f32 = debug_agent
    if compute_dtype(f32.config) != jnp.float32:  # DREAMER_TEST_PLATFORM=cuda
        f32 = Agent(*spaces(), f32.config.update({"jax.compute_dtype": "float32"}))
        f32.initial_save = debug_agent.initial_save
    f32.load(f32.initial_save)
    config = f32.config.update({"jax.compute_dtype": "bfloat16"})
    bf16 = Agent(*spaces(), config)
    bf16.load(f32.initial_save)
    B = debug_batch["is_first"].shape[0]
    _, _, m32 = f32.train(f32.init_train(B), debug_batch)
    _, _, m16 = bf16.train(bf16.init_train(B), debug_batch)
    f32.load(f32.initial_save)
    keys = [f"loss/{k}" for k in WORLD_MODEL_LOSSES if f"loss/{k}" in m32]
    assert len(keys) >= 4, sorted(m32)
    for key in keys:
        a, b = m32[key], m16[key]
        assert math.isfinite(b), (key, b)
        assert b == pytest.approx(a, rel=0.05, abs=0.02), (key, a, b)
    assert all(math.isfinite(v) for v in m16.values()), m16
    # It did compute in bfloat16: the losses are close, not identical.
    assert any(m16[key] != m32[key] for key in keys), [(k, m32[k]) for k in keys]


def test_accelerator_platforms_keep_a_cpu_device_for_host_callbacks():
    """The parameter init draws on the host (jax.pure_callback), which needs a CPU
    device: the first GPU run failed with jax_platforms='cuda' alone."""
    from dreamerv3 import main

    assert main.jax_platforms("cpu") == "cpu"
    assert main.jax_platforms("cuda") == "cuda,cpu"
    assert main.jax_platforms("tpu") == "tpu,cpu"
