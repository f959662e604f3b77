"""A dynamics shift: the env's physics change at a set env step.

The adaptive horizon is meant for the moment the world model becomes
unreliable; a model that learns a fixed world never gets there. This wrapper
makes that moment on purpose: after `step` transitions of this env, its
gravity and/or pole length are multiplied by the configured factors, and stay
so (episodes after it reset into the new world). Config: `env.gym.shift`
(`step: 0` = off, the env is returned unwrapped).

Atari (`env.atari100k.shift: {step, mode, difficulty}`, the visual case): at
`step` the ALE game mode and/or difficulty switch are set (-1 = unchanged). ALE
applies a mode when the game is reset, so the new world starts with the next
episode; the difficulty is a console switch that a game may read at any time
(measured: Freeway mode 3 changes every frame of the next episode and none of
the current one; Pong difficulty 1 changed 2 of 60 noop frames at once).
`ModeShift` below; values a game lacks are refused with the ones it has.

The step counts this env's transitions, i.e. the steps taken without the
`reset` flag, which is the run's agent step when `run.envs` is 1 (with N envs
each counts its own, so the world changes at agent step N x step). The
counter is not checkpointed: the trainer calls `fast_forward` on resume.
"""

# Physics attribute names per factor, as gymnasium's classic-control envs call them
# (CartPole: gravity, length; Pendulum: g, l).
ATTRS = {"gravity": ("gravity", "g"), "length": ("length", "l")}


def check(cfg):
    """An error line for settings the shift cannot mean, or None."""
    if int(cfg["step"]) != cfg["step"] or cfg["step"] < 0:
        return f"env.gym.shift.step ({cfg['step']}) must be an integer >= 0 (0 = off)"
    for key in ATTRS:
        if not cfg[key] > 0:
            return f"env.gym.shift.{key} ({cfg[key]}) must be > 0 (a factor; 1 = unchanged)"
    return None


def find_attr(physics, key):
    """The physics attribute a factor applies to; ValueError if the env has none."""
    for name in ATTRS[key]:
        if hasattr(physics, name):
            return name
    raise ValueError(f"env.gym.shift.{key}: {type(physics).__name__} has no " + " or ".join(ATTRS[key]) + " to change")


def apply(physics, gravity, length):
    """Multiply the physics' gravity and length in place; CartPole also keeps its
    derived pole mass x length in step. Returns the new values."""
    changed = {}
    for key, factor in (("gravity", gravity), ("length", length)):
        if factor != 1.0:
            name = find_attr(physics, key)
            setattr(physics, name, getattr(physics, name) * factor)
            changed[name] = getattr(physics, name)
    if "length" in changed and hasattr(physics, "polemass_length"):
        physics.polemass_length = physics.masspole * physics.length
    return changed


class AtStep:
    """An env of the protocol in envs/__init__ that changes once, after `step` of its
    transitions (steps without the `reset` flag): subclasses say what changes in
    `change()`, which returns the changed settings for the printed line."""

    def __init__(self, env, step, name=""):
        self.env, self.at, self.name = env, int(step), name
        self.count = 0
        self.shifted = False

    @property
    def obs_space(self):
        return self.env.obs_space

    @property
    def act_space(self):
        return self.env.act_space

    def fast_forward(self, count):
        """Set the transition counter (on resume); the shift applies at the next step."""
        self.count = int(count)

    def step(self, action):
        if not action["reset"]:
            if self.count >= self.at and not self.shifted:
                changed, note = self.change()
                self.shifted = True
                print(
                    f"Dynamics shift{self.name} at env step {self.count}: "
                    + ", ".join(f"{k} = {v:g}" for k, v in changed.items())
                    + note,
                    flush=True,
                )
            self.count += 1
        return self.env.step(action)

    def change(self):
        raise NotImplementedError

    def close(self):
        self.env.close()


class Shift(AtStep):
    """Gravity and pole length; `physics` is the object whose attributes change
    (gymnasium's unwrapped env)."""

    def __init__(self, env, physics, step, gravity, length, name=""):
        super().__init__(env, step, name)
        self.physics, self.gravity, self.length = physics, float(gravity), float(length)
        for key, factor in (("gravity", gravity), ("length", length)):
            if factor != 1.0:
                find_attr(physics, key)  # fail at construction, not at the shift

    def change(self):
        return apply(self.physics, self.gravity, self.length), ""


def check_mode(cfg):
    """An error line for Atari shift settings that cannot mean anything, or None."""
    if int(cfg["step"]) != cfg["step"] or cfg["step"] < 0:
        return f"env.atari100k.shift.step ({cfg['step']}) must be an integer >= 0 (0 = off)"
    for key in ("mode", "difficulty"):
        if int(cfg[key]) != cfg[key] or cfg[key] < -1:
            return f"env.atari100k.shift.{key} ({cfg[key]}) must be an integer >= 0, or -1 (unchanged)"
    if cfg["step"] > 0 and cfg["mode"] == -1 and cfg["difficulty"] == -1:
        return "env.atari100k.shift: step is set but mode and difficulty are both -1 (nothing would change)"
    return None


def check_config(config):
    """An error line for a shift (env.gym.shift, env.atari100k.shift) that is malformed or
    set for another suite than config.task's, or None: parse() calls it before a run starts."""
    for suite, checker, noun, what in (
        ("gym", check, "a gym task", "the shift changes gym physics"),
        ("atari100k", check_mode, "an atari100k task", "the shift sets an ALE mode or difficulty"),
    ):
        cfg = config.env[suite].shift
        problem = checker(cfg)
        if problem:
            return problem
        if cfg.step > 0 and not config.task.startswith(suite + "_"):
            return f"env.{suite}.shift.step ({cfg.step}) is set but task '{config.task}' is not {noun} ({what})"
    return None


class ModeShift(AtStep):
    """Wraps an Atari env (envs/atari.py): after `step` transitions, sets the ALE game
    `mode` and/or `difficulty` (-1 = unchanged); a mode applies from the next episode
    on. Values the game lacks are refused at construction, naming the ones it has."""

    def __init__(self, env, ale, step, mode=-1, difficulty=-1, name=""):
        super().__init__(env, step, name)
        self.ale, self.mode, self.difficulty = ale, int(mode), int(difficulty)
        for key, value, available in (
            ("mode", self.mode, ale.getAvailableModes()),
            ("difficulty", self.difficulty, ale.getAvailableDifficulties()),
        ):
            available = [int(v) for v in available]
            if value != -1 and value not in available:
                raise ValueError(
                    f"env.atari100k.shift.{key} {value}: this game has "
                    + {"mode": "modes ", "difficulty": "difficulties "}[key]
                    + ", ".join(map(str, available))
                )

    def change(self):
        changed = {}
        if self.mode != -1:
            self.ale.setMode(self.mode)
            changed["mode"] = self.mode
        if self.difficulty != -1:
            self.ale.setDifficulty(self.difficulty)
            changed["difficulty"] = self.difficulty
        return changed, " (a mode from the next episode)"
