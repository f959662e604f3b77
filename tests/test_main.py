"""main.py from the command line: bad input exits 2 with one line; one real
end-to-end `debug` run (the real agent, compiled once) writes a run directory's files."""

import json
import pathlib
import shutil
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
import ruamel.yaml
from fakes import IMAG_ADAPT_KEYS

ROOT = pathlib.Path(__file__).parent.parent
MAIN = ROOT / "dreamerv3" / "main.py"


def run_main(*argv, timeout=60):
    return subprocess.run([sys.executable, str(MAIN), *argv], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--run.stepz", "10"], "run.stepz"),
        (["--task", "atari100k_zelda"], "atari100k_alien"),
        (["--task", "mujoco_cheetah"], "suite one of atari100k, gym, dummy"),
        (["--configs", "debug", "size3m"], "unknown preset 'size3m'"),
        (["--agent.imag_adapt.rel_max", "1.0"], "agent.imag_adapt.rel_max"),
        (["--agent.imag_adapt.enabled", "maybe"], "Expected bool"),
        (["--script", "play"], "unknown --script 'play'"),
        (["--task", "atari100k_pong", "--env.atari100k.lives", "discount"], "env.atari100k.lives"),
        (["--agent.imag_adapt.mode", "oracle"], "agent.imag_adapt.mode"),
        (["--agent.imag_adapt.placebo_rate", "1.5"], "agent.imag_adapt.placebo_rate"),
        (["--task", "gym_CartPole-v1", "--env.gym.shift.length", "0"], "env.gym.shift.length"),
        (["--env.gym.shift.step", "100"], "is not a gym task"),
        (["--task", "atari100k_pong", "--env.atari100k.shift.step", "100"], "nothing would change"),
        (
            ["--task", "gym_CartPole-v1", "--env.atari100k.shift.step", "100", "--env.atari100k.shift.mode", "1"],
            "is not an atari100k task",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, extra, expected):
    result = run_main("--logdir", str(tmp_path / "run"), *extra)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    if "env.atari100k" not in expected:  # env settings are checked when the env is built
        assert not (tmp_path / "run").exists()  # nothing written for bad input


@pytest.mark.parametrize(
    "where, expected",
    [
        ("file", "exists and is not a folder"),
        ("file/run", "cannot write there"),
    ],
)
def test_logdir_on_an_existing_file_is_one_line(tmp_path, where, expected):
    (tmp_path / "file").write_text("keep me")
    result = run_main("--logdir", str(tmp_path / where), "--configs", "debug", "--jax.platform", "cpu")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "--logdir" in lines[0] and expected in lines[0], result.stderr
    assert "Traceback" not in result.stderr and (tmp_path / "file").read_text() == "keep me"


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_real_run_writes_spec_files(real_run):
    logdir, stdout = real_run
    assert logdir.name.startswith("seed0_2") and "{" not in logdir.name  # {timestamp} replaced
    assert "total" in stdout  # parameter counts printed
    config = (logdir / "config.yaml").read_text()
    assert "dummy_disc" in config
    keys = set().union(*read_jsonl(logdir / "metrics.jsonl"))
    assert {
        "train/loss/dyn",
        "train/loss/rep",
        "train/loss/policy",
        "train/loss/value",
        "fps/policy",
        "fps/train",
    } <= keys
    assert {f"train/imag_adapt/{k}" for k in IMAG_ADAPT_KEYS} <= keys
    scores = read_jsonl(logdir / "scores.jsonl")
    assert scores and all({"episode/score", "episode/length"} <= set(s) for s in scores)
    assert all(s["episode/length"] == 20 for s in scores)
    scope = logdir / "scope"
    assert (scope / "train-loss-dyn.float").stat().st_size >= 16
    assert (scope / "episode-score.float").exists()
    videos = list((scope / "report-openloop-image.mp4").glob("*.mp4"))
    assert videos
    frames = iio.imread(videos[-1])
    assert frames.ndim == 4 and frames.shape[-1] == 3
    done = sorted((logdir / "ckpt").glob("*/done"))
    assert len(done) == 2 and done[-1].parent.name.endswith("-000000000080")  # keeps two
    # replay_context: replay keeps the policy's latent state with every step
    from dreamerv3 import checkpoint

    header, *shards = checkpoint.read_item(done[-1].parent, "replay")
    deter = np.concatenate([s["chunk"]["dyn/deter"] for s in shards])[:80]
    assert deter.shape == (80, 32) and np.isfinite(deter).all()
    assert (np.abs(deter).sum(1) > 0).mean() > 0.9  # (a first step from zeros may stay 0)
    assert header["queue"] is not None  # replay.online's queue is checkpointed


def test_missing_platform_is_one_line(tmp_path):
    result = run_main("--logdir", str(tmp_path / "run"), "--jax.platform", "tpu")
    assert result.returncode == 2 and "jax.platform 'tpu'" in result.stderr
    assert "Traceback" not in result.stderr


def test_load_agent_rebuilds_the_real_agent(real_run):
    """The analysis toolkit's entry: config.yaml + newest checkpoint -> agent."""

    from dreamerv3 import checkpoint, envs, restore

    logdir, _ = real_run
    agent, config = restore.load_agent(logdir)
    assert config.task == "dummy_disc" and config.agent.imag_adapt.enabled
    saved = checkpoint.read_item(checkpoint.resolve(logdir), "agent")
    loaded = agent.save()
    flat_saved = {k: np.asarray(v) for k, v in _flatten(saved)}
    flat_loaded = {k: np.asarray(v) for k, v in _flatten(loaded)}
    assert flat_saved.keys() == flat_loaded.keys()
    assert all(np.array_equal(flat_saved[k], flat_loaded[k]) for k in flat_saved)
    env = envs.make_env(config.task, config)
    obs = {k: np.asarray(v)[None] for k, v in env.step({"action": 0, "reset": True}).items()}
    _, act, _ = agent.policy(agent.init_policy(1), obs, mode="eval")
    assert np.asarray(act["action"]).shape == (1,)


def _flatten(tree, prefix=""):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _flatten(value, f"{prefix}/{key}")
    else:
        yield prefix, tree


def test_load_agent_fills_keys_added_since_the_run_and_drops_removed_ones(real_run, tmp_path):
    """Runs outlive config changes: the shipped Alien runs predate jax.cpu_ynn_fusions."""

    from dreamerv3 import restore

    logdir = tmp_path / "old_run"
    shutil.copytree(real_run[0], logdir)
    yaml = ruamel.yaml.YAML(typ="safe")
    saved = yaml.load((logdir / "config.yaml").read_text())
    del saved["jax"]["cpu_ynn_fusions"]
    saved["run"]["episode_timeout"] = 0  # a key configs.yaml no longer has
    with open(logdir / "config.yaml", "w") as f:
        yaml.dump(saved, f)
    _, config = restore.load_agent(logdir)
    assert list(config.jax.cpu_ynn_fusions) == ["LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"]
    assert "run.episode_timeout" not in config.flat and config.task == "dummy_disc"
