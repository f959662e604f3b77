"""artifacts/make_shift_runs.sh: every command it would run parses
as a trainer config, the four arms differ only in the intended keys, and bad
options exit 2. `--dry-run` runs nothing, so this costs no compile."""

import pathlib
import shlex
import subprocess

import pytest

from dreamerv3 import configs as configlib

ROOT = pathlib.Path(__file__).parent.parent
SCRIPT = ROOT / "artifacts" / "make_shift_runs.sh"
ARMS = ("baseline", "adapt", "placebo", "fixed")


def dry_run(*options, **env):
    result = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", *options], capture_output=True, text=True,
        timeout=60, cwd=ROOT, env={"PATH": "/usr/bin:/bin", **env})
    assert result.returncode == 0, result.stderr
    return [shlex.split(line)[2:] for line in result.stdout.splitlines()]


def flat(config):
    """Dotted key -> value of a resolved config."""
    out = {}

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                out[prefix + key] = value
    walk(dict(config), "")
    return out


def test_dry_run_gives_four_arms_that_differ_only_in_the_method(tmp_path):
    commands = dry_run(SEEDS="0 1", PLACEBO_RATE="0.2", FIXED_LENGTH="8",
                       SHIFT_STEP="2500", SHIFT_LENGTH="0.4", OUT=str(tmp_path))
    assert len(commands) == 8
    configs = {}
    for argv in commands:
        config = configlib.parse(argv)
        arm = pathlib.Path(config.logdir).parent.name.removeprefix("shift_cartpole_")
        configs[(arm, config.seed)] = flat(config)
    assert {arm for arm, _ in configs} == set(ARMS) and {s for _, s in configs} == {0, 1}
    base = configs[("baseline", 0)]
    assert base["task"] == "gym_CartPole-v1" and base["agent.rssm.deter"] == 512  # size1m
    assert base["env.gym.shift.step"] == 2500 and base["env.gym.shift.length"] == 0.4
    assert base["agent.imag_adapt.enabled"] is False
    expected = {
        "adapt": {"agent.imag_adapt.enabled": True},
        "placebo": {"agent.imag_adapt.enabled": True, "agent.imag_adapt.mode": "placebo",
                    "agent.imag_adapt.placebo_rate": 0.2,
                    "agent.imag_adapt.placebo_severity": 0.2},
        "fixed": {"agent.imag_length": 8},
    }
    for arm, want in expected.items():
        other = configs[(arm, 0)]
        differs = {k: v for k, v in other.items() if base[k] != v and k != "logdir"}
        assert differs == want, (arm, differs)
    # Seeds differ in the seed (and the logdir) only.
    differs = {k for k, v in configs[("adapt", 1)].items() if configs[("adapt", 0)][k] != v}
    assert differs == {"seed", "logdir"}


def test_tiny_mode_is_the_debug_model_for_a_few_steps():
    (argv, *_) = dry_run("--tiny", ARMS="placebo")
    config = configlib.parse(argv)
    assert config.agent.rssm.deter == 32 and config.run.steps == 80  # debug preset
    assert 0 < config.env.gym.shift.step < config.run.steps


@pytest.mark.parametrize("option, env, expected", [
    ("--bogus", {}, "unknown option '--bogus'"),
    ("--dry-run", {"ARMS": "baseline oracle"}, "unknown arm 'oracle'"),
])
def test_bad_options_exit_2(option, env, expected):
    result = subprocess.run(["bash", str(SCRIPT), option], capture_output=True, text=True,
                            timeout=60, cwd=ROOT, env={"PATH": "/usr/bin:/bin", **env})
    assert result.returncode == 2 and expected in result.stderr, result.stderr


def test_platform_and_extra_flags_reach_every_run():
    """bench/device_shift.sh runs the arms on cuda with a time budget through these."""
    commands = dry_run(SEEDS="3", PLATFORM="cuda",
                       FLAGS="--jax.compute_dtype float32 --run.duration 470 --run.log_every 5")
    assert len(commands) == 4
    for argv in commands:
        config = configlib.parse(argv)
        assert config.jax.platform == "cuda" and config.jax.compute_dtype == "float32"
        assert config.run.duration == 470 and config.run.log_every == 5 and config.seed == 3
