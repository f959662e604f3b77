"""A tiny built-in environment for tests: fast, deterministic, no emulator.

Tasks: `dummy_disc` (image + vector obs, 4 discrete actions), `dummy_cont`
(image + vector obs, 2-D continuous action), `dummy_image` and `dummy_vector`
(one obs key each, discrete). Reward 1 when the action matches a target that
the observation shows, so a learning agent can improve; episodes last
`env.dummy.length` steps and end as truncation (is_terminal stays False).
"""

import elements
import numpy as np

from dreamerv3 import envs

NAMES = ("disc", "cont", "image", "vector")
ACTIONS = 4


class Dummy:
    def __init__(self, name, size=(64, 64), length=100, seed=0):
        if name not in NAMES:
            raise ValueError(
                f"unknown dummy task 'dummy_{name}' (known: " + ", ".join(f"dummy_{n}" for n in NAMES) + ")"
            )
        self.name = name
        self.size = tuple(size)
        self.length = int(length)
        self.rng = np.random.default_rng(seed)
        self.keys = {
            "disc": ("image", "vector"),
            "cont": ("image", "vector"),
            "image": ("image",),
            "vector": ("vector",),
        }[name]
        self.step_count = 0
        self.target = 0
        self.done = True

    @property
    def obs_space(self):
        spaces = {}
        if "image" in self.keys:
            spaces["image"] = elements.Space(np.uint8, self.size + (3,))
        if "vector" in self.keys:
            spaces["vector"] = elements.Space(np.float32, (ACTIONS + 1,))
        spaces.update(envs.step_spaces())
        return spaces

    @property
    def act_space(self):
        if self.name == "cont":
            action = elements.Space(np.float32, (2,), -1.0, 1.0)
        else:
            action = elements.Space(np.int32, (), 0, ACTIONS)
        return {"action": action, "reset": elements.Space(bool)}

    def step(self, action):
        if action["reset"] or self.done:
            self.step_count = 0
            self.done = False
            self.target = int(self.rng.integers(ACTIONS))
            return self._obs(0.0, is_first=True)
        reward = self._reward(action["action"])
        self.step_count += 1
        self.target = int(self.rng.integers(ACTIONS))
        self.done = self.step_count >= self.length
        return self._obs(reward, is_last=self.done)

    def close(self):
        pass

    def _reward(self, action):
        if self.name == "cont":
            chosen = int(np.asarray(action)[0] > 0) + 2 * int(np.asarray(action)[1] > 0)
        else:
            chosen = int(action)
        return float(chosen == self.target)

    def _obs(self, reward, is_first=False, is_last=False):
        obs = {}
        if "image" in self.keys:
            image = np.zeros(self.size + (3,), np.uint8)
            width = self.size[1] // ACTIONS
            image[:, self.target * width : (self.target + 1) * width, self.target % 3] = 255
            image[0, :, :] = min(255, self.step_count)
            obs["image"] = image
        if "vector" in self.keys:
            vector = np.zeros(ACTIONS + 1, np.float32)
            vector[self.target] = 1.0
            vector[-1] = self.step_count / self.length
            obs["vector"] = vector
        obs["reward"] = np.float32(reward)
        obs["is_first"] = is_first
        obs["is_last"] = is_last
        obs["is_terminal"] = False
        return obs
