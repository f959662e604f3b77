"""Shared fixtures: ONE `debug`-config agent per pytest process, compiled once.

Compiles dominate on 2 CPU cores, so tests use XLA with its backend
optimisation passes off (the same math, about 4x faster to compile; set
DREAMER_TEST_FULL_XLA=1 to keep XLA's defaults).
"""

import atexit
import os
import shutil
import tempfile

_FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
if not os.environ.get("DREAMER_TEST_FULL_XLA"):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FAST_COMPILE).strip()

# XLA's persistent compilation cache, for this pytest process only: agents of one config
# with other seeds, learning rates or imag_adapt values trace to the same program (those
# are arguments of the update), so after the first such compile the rest load it from
# disk. Environment variables, so the trainer's subprocesses share the cache too.
_CACHE = tempfile.mkdtemp(prefix="dreamer-test-xla-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import pathlib  # noqa: E402

import elements  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dreamerv3 import configs as configlib  # noqa: E402
from dreamerv3 import envs  # noqa: E402

# The toolkit's ingest cache goes to a folder of this pytest process, not the user's cache.
os.environ["DREAMER_REPORT_CACHE"] = tempfile.mkdtemp(prefix="dreamer-report-test-cache-")
atexit.register(shutil.rmtree, os.environ["DREAMER_REPORT_CACHE"], ignore_errors=True)

IMAGE = (16, 16, 3)  # small images keep compiles short; the env gives 64x64
VECTOR = 5
ACTIONS = 6


# ops/device_run.sh runs the agent tests on a GPU with DREAMER_TEST_PLATFORM=cuda:
# every test config then names that platform (bfloat16 compute, XLA's convs).
TEST_PLATFORM = os.environ.get("DREAMER_TEST_PLATFORM", "")


def load_config(*presets):
    config = configlib.from_presets(presets)
    return config.update({"jax.platform": TEST_PLATFORM}) if TEST_PLATFORM else config


def spaces(image=IMAGE, vector=VECTOR, actions=ACTIONS):
    obs = envs.step_spaces()
    if image:
        obs["image"] = elements.Space(np.uint8, image)
    if vector:
        obs["vector"] = elements.Space(np.float32, (vector,))
    act = {"action": elements.Space(np.int32, (), 0, actions)}
    return obs, act


def make_batch(B, T, seed=0, image=IMAGE, vector=VECTOR, actions=ACTIONS, config=None):
    """A random replay batch [B, T]. With a `config` whose replay_context K > 0,
    K context steps more in front, and the latent state replay stores per step."""
    K = int(config.replay_context) if config is not None else 0
    T = T + K
    rng = np.random.default_rng(seed)
    data = {
        "action": rng.integers(0, actions, (B, T)).astype(np.int32),
        "reward": rng.normal(size=(B, T)).astype(np.float32),
        "is_first": np.zeros((B, T), bool),
        "is_last": np.zeros((B, T), bool),
        "is_terminal": np.zeros((B, T), bool),
    }
    data["is_first"][:, 0] = True
    if image:
        data["image"] = rng.integers(0, 256, (B, T, *image), dtype=np.uint8)
    if vector:
        data["vector"] = rng.normal(size=(B, T, vector)).astype(np.float32)
    if K:
        rssm = config.agent.rssm
        data["dyn/deter"] = rng.normal(size=(B, T, rssm.deter)).astype(np.float32)
        data["dyn/stoch"] = rng.integers(0, rssm.classes, (B, T, rssm.stoch)).astype(np.uint8)
    return data


@pytest.fixture(scope="session")
def debug_config():
    return load_config("debug")


@pytest.fixture(scope="session")
def shared_debug_agent(debug_config):
    """The one compiled debug agent of the pytest process; tests get it through `debug_agent`."""
    from dreamerv3.agent import Agent

    obs_space, act_space = spaces()
    agent = Agent(obs_space, act_space, debug_config)
    agent.initial_save = agent.save()
    return agent


def reset_agent(agent):
    """The shared agent as it was built: its state (with the policy-call counter) and its
    run scalars (seed, lr, imag_adapt), which tests may swap for another run's."""
    from dreamerv3 import agent as agentlib

    agent.load(agent.initial_save)
    agent.scalars = agentlib.run_scalars(agent.config)


@pytest.fixture
def debug_agent(shared_debug_agent):
    """The shared agent in its initial state (`agent.initial_save`), put back in that state
    after the test whatever the test did or however it ended."""
    reset_agent(shared_debug_agent)
    try:
        yield shared_debug_agent
    finally:
        reset_agent(shared_debug_agent)


@pytest.fixture
def debug_batch(debug_config):
    return make_batch(debug_config.batch_size, debug_config.batch_length, config=debug_config)


@pytest.fixture(scope="session")
def real_run(tmp_path_factory):
    """ONE end-to-end run of main.py (debug preset, real agent) shared by every test
    that needs a real run directory: the reference commands' shape, as a subprocess."""
    import subprocess
    import sys

    root = pathlib.Path(__file__).parent.parent
    base = tmp_path_factory.mktemp("e2e") / "dummy_disc_adapt"
    result = subprocess.run(
        [
            sys.executable,
            str(root / "dreamerv3" / "main.py"),
            "--logdir",
            str(base / "seed0_{timestamp}"),
            "--configs",
            "debug",
            "--task",
            "dummy_disc",
            "--script",
            "train",
            "--jax.platform",
            "cpu",
            "--jax.train_devices",
            "[0]",
            "--jax.policy_devices",
            "[0]",
            "--run.steps",
            "80",
            "--run.envs",
            "1",
            "--run.train_ratio",
            "8",
            "--agent.imag_adapt.enabled",
            "True",
            "--env.dummy.length",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (logdir,) = base.iterdir()
    return logdir, result.stdout
