"""Adapter from a gymnasium env with vector observations (e.g. CartPole-v1)."""

import elements
import numpy as np

from dreamerv3 import envs


class Gym:
    def __init__(self, name, obs_key="vector", seed=0):
        import gymnasium

        if name not in gymnasium.registry:  # never 'module:Env', which gymnasium would import
            raise ValueError(f"unknown gym task 'gym_{name}': no registered gymnasium env of that id")
        try:
            self.env = gymnasium.make(name)
        except gymnasium.error.Error as e:
            raise ValueError(f"unknown gym task 'gym_{name}': {e}") from None
        self.obs_key = obs_key
        self.seed = seed
        self.episode = 0
        self.done = True
        space = self.env.action_space
        if isinstance(space, gymnasium.spaces.Discrete):
            self.action = elements.Space(np.int32, (), 0, int(space.n))
        elif isinstance(space, gymnasium.spaces.Box):
            self.action = elements.Space(np.float32, space.shape, space.low, space.high)
        else:
            raise ValueError(f"gym task 'gym_{name}' has an unsupported action space {space}")
        obs = self.env.observation_space
        if not isinstance(obs, gymnasium.spaces.Box) or len(obs.shape) != 1:
            raise ValueError(f"gym task 'gym_{name}' needs a 1-D Box observation, got {obs}")
        self.obs_shape = obs.shape

    @property
    def obs_space(self):
        return {
            self.obs_key: elements.Space(np.float32, self.obs_shape),
            **envs.step_spaces(),
        }

    @property
    def act_space(self):
        return {"action": self.action, "reset": elements.Space(bool)}

    def step(self, action):
        if action["reset"] or self.done:
            # Each episode gets its own seed so runs are reproducible per env index.
            obs, _ = self.env.reset(seed=self.seed * 100003 + self.episode)
            self.episode += 1
            self.done = False
            return self._obs(obs, 0.0, is_first=True)
        act = action["action"]
        act = int(act) if self.action.discrete else np.asarray(act, np.float32)
        obs, reward, terminated, truncated, _ = self.env.step(act)
        self.done = bool(terminated or truncated)
        return self._obs(obs, reward, is_last=self.done, is_terminal=bool(terminated))

    def close(self):
        self.env.close()

    def _obs(self, obs, reward, is_first=False, is_last=False, is_terminal=False):
        return {
            self.obs_key: np.asarray(obs, np.float32),
            "reward": np.float32(reward),
            "is_first": is_first,
            "is_last": is_last,
            "is_terminal": is_terminal,
        }
