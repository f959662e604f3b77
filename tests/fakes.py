"""A tiny random agent with the real Agent's interface (see dreamerv3/agent.py).

It lets the run loop, logging and resume be tested without compiling the
world model: the policy is random, `train` checks the batch it receives and
returns metrics under the real keys, `report` returns a small uint8 video.
With replay_context, the policy outputs a stand-in latent 'dyn/deter' (the
env's step count) and `train` returns it + 1000 for replay to write back.
"""

import contextlib

import numpy as np

IMAG_ADAPT_KEYS = ("active", "ratio", "ema", "severity", "gamma", "mask_mean", "horizon_eff")


class FakeAgent:
    def __init__(self, obs_space, act_space, config):
        if config.agent.imag_adapt.rel_max <= config.agent.imag_adapt.rel_thresh:
            raise ValueError("agent.imag_adapt.rel_max must exceed rel_thresh")
        self.obs_space = obs_space
        self.act_space = act_space
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.weights = {"w": np.zeros(3, np.float32)}
        self.param_counts = {"total": 3}
        self.batches = []  # shapes of the train batches seen

    def init_policy(self, batch_size):
        return {"steps": np.zeros(batch_size, np.int64)}

    def init_train(self, batch_size):
        return {}

    def init_report(self, batch_size):
        return {}

    def policy(self, carry, obs, mode="train"):
        batch = len(obs["is_first"])
        for key, space in self.obs_space.items():
            assert obs[key].shape == (batch,) + space.shape, (key, obs[key].shape)
        space = self.act_space["action"]
        if space.discrete:
            action = self.rng.integers(0, space.high, batch).astype(np.int32)
        else:
            action = self.rng.uniform(-1, 1, (batch,) + space.shape).astype(np.float32)
        carry = {"steps": carry["steps"] + 1}
        outs = {}
        if self.config.replay_context:
            outs["dyn/deter"] = carry["steps"].astype(np.float32)[:, None]
        return carry, {"action": action}, outs

    def train(self, carry, data):
        B, T = data["is_first"].shape
        for key in ("action", "reward", "is_first", "is_last", "is_terminal"):
            assert data[key].shape[:2] == (B, T), (key, data[key].shape)
        self.batches.append((B, T))
        K = self.config.replay_context
        outs = {}
        if K:
            outs["replay"] = {"stepid": data["stepid"][:, K:], "dyn/deter": data["dyn/deter"][:, K:] + 1000}
        self.weights["w"] += 1
        metrics = {"loss/dyn": 1.0 + self.rng.random(), "loss/rep": 0.5}
        metrics.update({f"imag_adapt/{k}": 0.0 for k in IMAG_ADAPT_KEYS})
        return carry, outs, metrics

    def report(self, carry, data):
        B, T = data["is_first"].shape
        video = np.zeros((T, 16, 32, 3), np.uint8)
        video[:, :, :16] = 200
        return carry, {"openloop/image": video, "loss/dyn": 1.0}

    def save(self):
        return {k: v.copy() for k, v in self.weights.items()}

    def load(self, state):
        self.weights = {k: np.array(v) for k, v in state.items()}


class FakePopulation:
    """A FakeAgent per member behind learner.Population's interface (dreamerv3/learner.py):
    arrays with a leading member axis in and out, member(k) saves and loads member k."""

    def __init__(self, obs_space, act_space, configs):
        self.members = [FakeAgent(obs_space, act_space, c) for c in configs]
        self.param_counts = {"total": 3}

    def member(self, k):
        return self.members[k]

    def on_host(self):
        return contextlib.nullcontext()

    def init_policy(self, envs):
        return [m.init_policy(envs) for m in self.members]

    def init_train(self, batch_size):
        return [m.init_train(batch_size) for m in self.members]

    def policy(self, carry, obs):
        steps = [
            m.policy(c, {key: v[k] for key, v in obs.items()}) for k, (m, c) in enumerate(zip(self.members, carry))
        ]
        return [s[0] for s in steps], _stack([s[1] for s in steps]), _stack([s[2] for s in steps])

    def train(self, carry, data):
        steps = [
            m.train(c, {key: v[k] for key, v in data.items()}) for k, (m, c) in enumerate(zip(self.members, carry))
        ]
        outs = [s[1] for s in steps]
        outs = {"replay": _stack([o["replay"] for o in outs])} if outs[0] else {}
        return [s[0] for s in steps], outs, _stack([s[2] for s in steps])

    def report(self, k, data):
        return self.members[k].report({}, data)[1]


def _stack(dicts):
    return {key: np.stack([np.asarray(d[key]) for d in dicts]) for key in dicts[0]}
