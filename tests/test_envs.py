"""Env protocol and episode semantics: dummy, gym CartPole, Atari100k Alien."""

import elements
import numpy as np
import pytest
from ruamel.yaml import YAML

from dreamerv3 import envs
from dreamerv3.envs import atari

CONFIGS = YAML(typ="safe").load(open(envs.__file__.rsplit("/", 2)[0] + "/configs.yaml"))
CONFIG = elements.Config(CONFIGS["defaults"])


def rollout(env, steps, rng, first_reset=True):
    obs = [env.step({"action": 0, "reset": True})] if first_reset else []
    space = env.act_space["action"]
    for _ in range(steps):
        obs.append(env.step({"action": rng.integers(0, space.high), "reset": False}))
    return obs


def check_obs(env, obs):
    for key, space in env.obs_space.items():
        value = np.asarray(obs[key])
        assert value.shape == space.shape, (key, value.shape, space.shape)
        assert value.dtype == space.dtype, (key, value.dtype, space.dtype)


def test_dummy_spaces_and_episodes():
    config = CONFIG.update({"env.dummy.length": 5})
    env = envs.make_env("dummy_disc", config)
    assert set(env.obs_space) == {"image", "vector", "reward", "is_first", "is_last", "is_terminal"}
    assert env.act_space["reset"].dtype == bool
    obs = rollout(env, 13, np.random.default_rng(0))
    for o in obs:
        check_obs(env, o)
    firsts = [i for i, o in enumerate(obs) if o["is_first"]]
    lasts = [i for i, o in enumerate(obs) if o["is_last"]]
    # 5 steps per episode, then the step after is_last resets.
    assert firsts == [0, 6, 12] and lasts == [5, 11]
    assert all(obs[i]["reward"] == 0 for i in firsts)


def test_dummy_continuous_and_vector_only():
    env = envs.make_env("dummy_cont", CONFIG)
    assert env.act_space["action"].shape == (2,)
    obs = env.step({"action": np.zeros(2, np.float32), "reset": True})
    obs = env.step({"action": np.ones(2, np.float32), "reset": False})
    check_obs(env, obs)
    env = envs.make_env("dummy_vector", CONFIG)
    assert "image" not in env.obs_space


def test_gym_cartpole_vector_obs():
    env = envs.make_env("gym_CartPole-v1", CONFIG)
    assert env.obs_space["vector"].shape == (4,)
    assert env.act_space["action"].high == 2
    obs = rollout(env, 200, np.random.default_rng(0))
    for o in obs:
        check_obs(env, o)
    # A random CartPole policy falls within 200 steps: terminal, not truncated.
    ends = [o for o in obs if o["is_last"]]
    assert ends and all(o["is_terminal"] for o in ends)
    env.close()


@pytest.mark.parametrize("task", ["atari100k_nogame", "pong", "mujoco_walker", "dummy_x", "gym_NoSuchEnv-v0"])
def test_unknown_task_names_choices(task):
    with pytest.raises(ValueError, match="unknown task"):
        envs.check_task(task)


def test_atari_alien_protocol():
    env = envs.make_env("atari100k_alien", CONFIG)
    assert env.obs_space["image"].shape == (64, 64, 3)
    assert env.act_space["action"].high == 18  # Alien's minimal action set
    assert envs.frames_per_step("atari100k_alien", CONFIG) == 4
    rng = np.random.default_rng(0)
    obs = rollout(env, 300, rng)
    for o in obs:
        check_obs(env, o)
        assert o["image"].dtype == np.uint8
    assert obs[0]["is_first"] and not any(o["is_first"] for o in obs[1:])
    assert len({o["image"].tobytes() for o in obs}) > 50  # frames change


def test_atari_unclipped_reward_and_game_over_only():
    """Alien scores 10 per egg: rewards above 1 show they are not clipped,
    and the episode only ends at game over (Alien has 3 lives)."""
    env = envs.make_env("atari100k_alien", CONFIG)
    rng = np.random.default_rng(1)
    env.step({"action": 0, "reset": True})
    rewards, lives = [], []
    while True:
        obs = env.step({"action": rng.integers(0, 18), "reset": False})
        rewards.append(float(obs["reward"]))
        lives.append(env.ale.lives())
        if obs["is_last"]:
            break
    assert obs["is_terminal"] and env.ale.game_over()
    assert max(rewards) > 1
    assert min(lives[:-1]) < max(lives)  # lives were lost without ending the episode


def test_atari_max_pool_of_last_two_frames():
    env = atari.Atari("alien", seed=0, noops=0)
    env.step({"action": 0, "reset": True})
    env.step({"action": 3, "reset": False})
    a, b = (f.copy() for f in env.frames)
    pooled = envs.atari.Image.fromarray(np.maximum(a, b)).resize((64, 64), envs.atari.Image.BILINEAR)
    assert np.array_equal(env._obs(0.0)["image"], np.asarray(pooled))
    # Without pooling the image is the last frame only.
    env.pooling = False
    last = envs.atari.Image.fromarray(b).resize((64, 64), envs.atari.Image.BILINEAR)
    assert np.array_equal(env._obs(0.0)["image"], np.asarray(last))


class RecordingEnv:
    """A continuous-action env that records what it is given."""

    def __init__(self, low, high):
        self.given = []
        self.act_space = {"action": elements.Space(np.float32, (3,), low, high), "reset": elements.Space(bool)}
        self.obs_space = envs.step_spaces()

    def step(self, action):
        self.given.append(np.asarray(action["action"]))
        return {"reward": np.float32(0), "is_first": False, "is_last": False, "is_terminal": False}


def test_clip_action_wrapper_clips_and_maps_to_the_env_bounds():
    """The agent's unclipped normal samples are clipped in the env wrapper
    (official ClipAction), after mapping [-1, 1] to finite bounds (NormalizeAction)."""
    inner = RecordingEnv(np.array([-1.0, -2.0, -np.inf]), np.array([1.0, 4.0, np.inf]))
    env = envs.ClipAction(inner)
    space = env.act_space["action"]
    np.testing.assert_array_equal(space.low, [-1, -1, -np.inf])
    np.testing.assert_array_equal(space.high, [1, 1, np.inf])
    env.step({"action": np.array([3.0, -7.0, 0.5], np.float32), "reset": False})
    env.step({"action": np.array([-0.5, 0.5, 9.0], np.float32), "reset": False})
    np.testing.assert_allclose(inner.given[0], [1.0, -2.0, 0.5])
    np.testing.assert_allclose(inner.given[1], [-0.5, 2.5, 1.0])
    wrapped = envs.make_env("dummy_cont", CONFIG)
    assert isinstance(wrapped, envs.ClipAction)
    assert not isinstance(envs.make_env("dummy_disc", CONFIG), envs.ClipAction)


# ---- dynamics shift (envs/shift.py) ------------------------------------------------


def shift_config(step, gravity=1.0, length=1.0):
    return CONFIG.update({"env.gym.shift.step": step, "env.gym.shift.gravity": gravity, "env.gym.shift.length": length})


def vectors(env, actions):
    """The observations of one episode under a fixed action sequence (no resets)."""
    out = [env.step({"action": 0, "reset": True})["vector"]]
    for a in actions:
        obs = env.step({"action": int(a), "reset": False})
        assert not obs["is_last"], "the test's action sequence must not end the episode"
        out.append(obs["vector"])
    return np.array(out)


# Alternating pushes keep the pole up for the 12 steps the tests take.
ACTIONS = [0, 1] * 6


@pytest.mark.parametrize("gravity, length", [(1.0, 0.5), (2.0, 1.0), (2.0, 0.5)])
def test_shift_changes_the_physics_at_its_step_and_not_before(gravity, length):
    plain = vectors(envs.make_env("gym_CartPole-v1", shift_config(0)), ACTIONS)
    shifted = vectors(envs.make_env("gym_CartPole-v1", shift_config(5, gravity, length)), ACTIONS)
    # Row i is the obs after transition i; transitions 1..5 run the old physics.
    np.testing.assert_array_equal(shifted[:6], plain[:6])
    assert np.abs(shifted[6] - plain[6]).max() > 1e-3
    assert np.all(np.abs(shifted[6:] - plain[6:]).max(1) > 0)


def test_shift_off_is_the_plain_env_bit_for_bit():
    from dreamerv3.envs import gym

    env = envs.make_env("gym_CartPole-v1", CONFIG)
    assert isinstance(env, gym.Gym)  # no wrapper at all with step 0
    seed = hash((int(CONFIG.seed), 0)) % (2**31)
    np.testing.assert_array_equal(vectors(env, ACTIONS), vectors(gym.Gym("CartPole-v1", seed=seed), ACTIONS))


def test_shift_stays_for_later_episodes_and_sets_cartpole_physics():
    env = envs.make_env("gym_CartPole-v1", shift_config(3, gravity=2.0, length=0.5))
    physics = env.physics
    rollout(env, 3, np.random.default_rng(0))
    assert physics.gravity == 9.8 and physics.length == 0.5
    rollout(env, 60, np.random.default_rng(0), first_reset=False)  # several episodes
    assert physics.gravity == pytest.approx(19.6) and physics.length == pytest.approx(0.25)
    assert physics.polemass_length == pytest.approx(physics.masspole * 0.25)


def test_fast_forward_on_resume_applies_a_due_shift():
    env = envs.make_env("gym_CartPole-v1", shift_config(100, length=0.5))
    envs.fast_forward([env], 250)
    env.step({"action": 0, "reset": True})
    assert env.physics.length == 0.5  # resets do not count as transitions
    env.step({"action": 0, "reset": False})
    assert env.physics.length == 0.25 and env.count == 251


@pytest.mark.parametrize(
    "cfg, expected",
    [
        ({"step": -1, "gravity": 1.0, "length": 1.0}, "env.gym.shift.step"),
        ({"step": 2.5, "gravity": 1.0, "length": 1.0}, "env.gym.shift.step"),
        ({"step": 10, "gravity": 0.0, "length": 1.0}, "env.gym.shift.gravity"),
        ({"step": 10, "gravity": 1.0, "length": -2.0}, "env.gym.shift.length"),
    ],
)
def test_shift_check_refuses_meaningless_settings(cfg, expected):
    from dreamerv3.envs import shift

    assert expected in shift.check(cfg)
    assert shift.check({"step": 0, "gravity": 1.0, "length": 1.0}) is None


def test_shift_of_a_missing_physics_attribute_is_refused_when_built():
    # MountainCar has a gravity but no pole length.
    with pytest.raises(ValueError, match="env.gym.shift.length: .* no length or l"):
        envs.make_env("gym_MountainCar-v0", shift_config(10, length=0.5))


# ---- the Atari case: ALE game mode / difficulty (envs/shift.ModeShift) ----------------


def mode_config(step, mode=-1, difficulty=-1):
    return CONFIG.update(
        {
            "env.atari100k.shift.step": step,
            "env.atari100k.shift.mode": mode,
            "env.atari100k.shift.difficulty": difficulty,
        }
    )


def freeway_images(config, steps=8):
    """Two episodes of Freeway under noops: `steps` steps, a reset, `steps` more."""
    env = envs.make_env("atari100k_freeway", config)
    images = [env.step({"action": 0, "reset": True})["image"]]
    for i in range(2 * steps):
        images.append(env.step({"action": 0, "reset": i == steps})["image"])
    return np.array(images), env


def test_atari_mode_shift_changes_the_game_from_the_next_episode(capsys):
    """Freeway mode 3 (other traffic): the same frames as the plain game before the shift
    and for the rest of that episode, different ones from the next episode on."""
    plain, _ = freeway_images(mode_config(0))
    shifted, env = freeway_images(mode_config(4, mode=3))
    np.testing.assert_array_equal(shifted[:9], plain[:9])  # first episode: unchanged
    assert all(np.abs(shifted[i].astype(int) - plain[i]).sum() > 0 for i in range(11, 17))
    assert "Dynamics shift (env 0) at env step 4: mode = 3 (a mode from the next episode)" in capsys.readouterr().out
    env.fast_forward(0)  # the counter is what resume sets; the shift happens once
    assert env.shifted


@pytest.mark.parametrize(
    "task, cfg, expected",
    [
        ("atari100k_road_runner", {"mode": 2}, "env.atari100k.shift.mode 2: this game has modes 0"),
        (
            "atari100k_pong",
            {"difficulty": 7},
            "env.atari100k.shift.difficulty 7: this game has difficulties 0, 1, 2, 3",
        ),
    ],
)
def test_atari_mode_shift_refuses_values_the_game_lacks(task, cfg, expected):
    with pytest.raises(ValueError, match=expected):
        envs.make_env(task, mode_config(10, **cfg))


@pytest.mark.parametrize(
    "cfg, expected",
    [
        ({"step": -3, "mode": 1, "difficulty": -1}, "env.atari100k.shift.step"),
        ({"step": 10, "mode": 1.5, "difficulty": -1}, "env.atari100k.shift.mode"),
        ({"step": 10, "mode": -1, "difficulty": -2}, "env.atari100k.shift.difficulty"),
        ({"step": 10, "mode": -1, "difficulty": -1}, "nothing would change"),
    ],
)
def test_atari_mode_shift_check(cfg, expected):
    from dreamerv3.envs import shift

    assert expected in shift.check_mode(cfg)
    assert shift.check_mode({"step": 0, "mode": 1, "difficulty": -1}) is None
    assert shift.check_mode({"step": 0, "mode": -1, "difficulty": -1}) is None  # off
