"""Environments by task name `<suite>_<name>`.

Every env follows one protocol: `obs_space` and `act_space` (dicts of
elements.Space; the act space has a bool 'reset'), and `step(action) -> obs`
with 'reward', 'is_first', 'is_last', 'is_terminal'. The env resets when
`action['reset']` is set or after an obs with `is_last`; the first obs of an
episode has `is_first` and reward 0.
"""

import elements
import numpy as np

SUITES = ("atari100k", "gym", "dummy")


def step_spaces():
    """The per-step signals every env adds to its observations (the protocol above)."""
    return {
        "reward": elements.Space(np.float32),
        "is_first": elements.Space(bool),
        "is_last": elements.Space(bool),
        "is_terminal": elements.Space(bool),
    }


def split_task(task):
    """'atari100k_bank_heist' -> ('atari100k', 'bank_heist'); errors name the choices."""
    suite, _, name = task.partition("_")
    if suite not in SUITES or not name:
        raise ValueError(
            f"unknown task '{task}': expected <suite>_<name> with suite one of "
            f"{', '.join(SUITES)} (e.g. atari100k_alien, gym_CartPole-v1, dummy_disc)"
        )
    return suite, name


def check_task(task):
    """Raise ValueError with the known names if `task` cannot be built."""
    suite, name = split_task(task)
    if suite == "atari100k":
        from . import atari

        if name not in atari.GAMES:
            raise ValueError(
                f"unknown task '{task}': Atari100k games are " + ", ".join(f"atari100k_{g}" for g in atari.GAMES)
            )
    elif suite == "dummy":
        from . import dummy

        if name not in dummy.NAMES:
            raise ValueError(f"unknown task '{task}': dummy tasks are " + ", ".join(f"dummy_{n}" for n in dummy.NAMES))
    elif suite == "gym":
        import gymnasium

        if name not in gymnasium.registry:
            raise ValueError(f"unknown task '{task}': no gymnasium env id '{name}'")


class ClipAction:
    """Continuous actions as the official's env wrappers give them to the agent:
    the agent acts in [-1, 1] (its normal policy samples are not clipped); here
    the action is clipped to [-1, 1] and mapped linearly onto the env's bounds
    where they are finite (official ClipAction + NormalizeAction)."""

    def __init__(self, env, key="action"):
        self.env, self.key = env, key
        space = env.act_space[key]
        self.low = np.broadcast_to(space.low, space.shape).astype(np.float64)
        self.high = np.broadcast_to(space.high, space.shape).astype(np.float64)
        self.finite = np.isfinite(self.low) & np.isfinite(self.high)

    @property
    def obs_space(self):
        return self.env.obs_space

    @property
    def act_space(self):
        space = self.env.act_space[self.key]
        low = np.where(self.finite, -1.0, self.low).astype(space.dtype)
        high = np.where(self.finite, 1.0, self.high).astype(space.dtype)
        return {**self.env.act_space, self.key: elements.Space(space.dtype, space.shape, low, high)}

    def step(self, action):
        act = np.clip(np.asarray(action[self.key], np.float64), -1.0, 1.0)
        low, high = np.where(self.finite, self.low, -1.0), np.where(self.finite, self.high, 1.0)
        act = low + (act + 1) / 2 * (high - low)  # identity where unbounded
        return self.env.step({**action, self.key: act.astype(np.float32)})

    def close(self):
        self.env.close()


def make_env(task, config, index=0):
    """Build env number `index` of the run; each index gets its own seed.
    Continuous-action envs come wrapped in ClipAction; with env.gym.shift.step > 0
    a gym env changes its physics at that step, with env.atari100k.shift.step > 0
    an Atari game its mode or difficulty (envs/shift.py)."""
    env = _make_env(task, config, index)
    inner = env
    if not env.act_space["action"].discrete:
        env = ClipAction(env)
    suite = split_task(task)[0]
    shift_cfg = config.env.gym.shift
    if suite == "gym" and shift_cfg.step > 0:
        from . import shift

        problem = shift.check(shift_cfg)
        if problem:
            raise ValueError(problem)
        env = shift.Shift(
            env, inner.env.unwrapped, shift_cfg.step, shift_cfg.gravity, shift_cfg.length, name=f" (env {index})"
        )
    mode_cfg = config.env.atari100k.shift
    if suite == "atari100k" and mode_cfg.step > 0:
        from . import shift

        problem = shift.check_mode(mode_cfg)
        if problem:
            raise ValueError(problem)
        env = shift.ModeShift(env, inner.ale, mode_cfg.step, mode_cfg.mode, mode_cfg.difficulty, name=f" (env {index})")
    return env


def fast_forward(envs, step):
    """On resume: tell each env how many transitions it has made (agent step / envs),
    so a dynamics shift (envs/shift.py) that was due has happened."""
    for env in envs:
        if hasattr(env, "fast_forward"):
            env.fast_forward(int(step) // len(envs))


def _make_env(task, config, index):
    suite, name = split_task(task)
    seed = hash((int(config.seed), int(index))) % (2**31)
    if suite == "atari100k":
        from . import atari

        cfg = config.env.atari100k
        return atari.Atari(
            name,
            size=tuple(cfg.size),
            repeat=cfg.repeat,
            sticky=cfg.sticky,
            gray=cfg.gray,
            actions=cfg.actions,
            lives=cfg.lives,
            noops=cfg.noops,
            pooling=cfg.pooling,
            resize=cfg.resize,
            seed=seed,
        )
    if suite == "gym":
        from . import gym

        return gym.Gym(name, obs_key=config.env.gym.obs_key, seed=seed)
    if suite == "dummy":
        from . import dummy

        cfg = config.env.dummy
        return dummy.Dummy(name, size=tuple(cfg.size), length=cfg.length, seed=seed)
    raise ValueError(f"task '{task}': suite '{suite}' has no constructor (known: {', '.join(SUITES)})")


def frames_per_step(task, config):
    """Env frames per agent step: the logger's step unit."""
    suite, _ = split_task(task)
    if suite == "atari100k":
        return int(config.env.atari100k.repeat)
    return 1


def spaces(task, config):
    """(obs_space, act_space) of a task; builds the env once and closes it."""
    env = make_env(task, config, 0)
    try:
        return env.obs_space, env.act_space
    finally:
        env.close()
