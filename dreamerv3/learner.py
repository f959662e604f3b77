"""What the training loop trains: M members' agents behind one interface.

The loop (run.py) hands every call a leading member axis: observations [M, E, ...],
batches [M, B, K + T, ...]; it gets actions, replay entries and metrics back the same way.
Two learners implement it:

- `Solo` (M = 1) wraps one `Agent` and calls its own update: the plain, data-parallel
  DreamerV3 computation (batch sharded over `jax.train_devices`), unchanged by the axis.
- `Population` (M >= 1) runs the agent's pure functions (`Agent.init_state`,
  `policy_step`, `update`) under one jitted `jax.vmap` for all members, whose states are
  the solo state with a leading member axis M on every leaf. Their per-run scalars
  (agent.run_scalars: seed, lr, imag_adapt) are stacked the same way, so member k
  computes what a solo agent with member k's config computes (random keys included:
  agent.stream_key). The member axis is sharded over `jax.train_devices`: with D
  devices each holds M / D members (M must be a multiple of D).

Shape letters: M members, E envs per member, B batch, K replay context, T time.
"""

import contextlib

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from dreamerv3 import agent as agentlib


def stack(trees):
    """[tree] -> one tree whose leaves have a leading member axis."""
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *trees)


def unstack(tree, k):
    return jax.tree.map(lambda x: x[k], tree)


class Solo:
    """One member: an Agent (or anything with its interface) behind the member axis."""

    def __init__(self, agent):
        self.agent = agent
        self.size = 1
        self.param_counts = getattr(agent, "param_counts", {})

    def init_policy(self, envs):
        return self.agent.init_policy(envs)

    def init_train(self, batch_size):
        return self.agent.init_train(batch_size)

    def policy(self, carry, obs):
        carry, act, outs = self.agent.policy(carry, unstack(obs, 0), mode="train")
        return carry, add_axis(act), add_axis(outs)

    def train(self, carry, data):
        carry, outs, metrics = self.agent.train(carry, unstack(data, 0))
        return carry, add_axis(outs), add_axis(metrics)

    def report(self, k, data):
        B = np.asarray(data["is_first"]).shape[0]
        return self.agent.report(self.agent.init_report(B), data)[1]

    def member(self, k):
        return self.agent

    def on_host(self):
        return contextlib.nullcontext()


def add_axis(tree):
    return jax.tree.map(lambda x: np.asarray(x)[None], tree)


class Population:
    def __init__(self, obs_space, act_space, configs):
        """configs: the members' configs (population.member_configs), alike in
        everything but their run scalars."""
        self.configs = list(configs)
        self.size = len(self.configs)
        # The template: networks, jitted functions and settings, without a state of its own
        # (the members' states live in self.state; reports pass a member's parameters in).
        self.solo = agentlib.Agent(obs_space, act_space, self.configs[0], init_state=False)
        self.param_counts = self.solo.param_counts
        self.sharding = member_sharding(self.configs[0], self.size)
        put = lambda tree: jax.device_put(tree, self.sharding)
        self.state = put(stack([self.solo.init_state(c.seed) for c in self.configs]))
        self.scalars = put(stack([agentlib.run_scalars(c) for c in self.configs]))
        self.put = put
        self.policy_calls = np.zeros(self.size, np.int64)
        self._host = None  # the state on the host while on_host() saves the members
        shard = self.sharding
        self._train_fn = self.solo.jit(
            jax.vmap(self.solo.update), donate_argnums=(0,), in_shardings=(shard,) * 4, out_shardings=(shard,) * 4
        )
        self._policy_fn = self.solo.jit(
            jax.vmap(self.solo.policy_step), in_shardings=(shard,) * 5, out_shardings=(shard,) * 3
        )

    @property
    def ext_space(self):
        return self.solo.ext_space

    @property
    def context(self):
        return self.solo.context

    # ---- acting and training, all members at once --------------------------------

    def init_policy(self, envs):
        return self.put(stack([self.solo.zero_carry(envs)] * self.size))

    def init_train(self, batch_size):
        return self.init_policy(batch_size)

    def policy(self, carry, obs):
        """obs {key: [M, E, ...]} -> (carry, {'action': [M, E, ...]}, entries [M, E, ...])."""
        obs = {k: np.asarray(obs[k]) for k in (*self.solo.obskeys, "is_first")}
        count = (self.policy_calls & 0xFFFFFFFF).astype(np.uint32)
        self.policy_calls += 1
        carry, action, entries = self._policy_fn(self.state["params"], carry, obs, self.scalars["seed"], count)
        action = np.asarray(action)
        if self.solo.model.discrete:
            action = action.astype(np.int32)
        return carry, {"action": action}, {k: np.asarray(v) for k, v in entries.items()}

    def train_step(self, carry, data):
        """data {key: [M, B, K + T, ...]} -> (carry, outs [M, ...], metrics {key: [M]})."""
        data = self.put(self.solo.host_data(data))
        self.state, carry, metrics, outs = self._train_fn(self.state, carry, data, self.scalars)
        metrics = {k: np.asarray(v, np.float64) for k, v in jax.device_get(metrics).items()}
        return carry, jax.device_get(outs), metrics

    def train(self, carry, data):
        """Like Agent.train for every member: outs['replay'] [M, B, T, ...] holds the fresh
        posteriors (and 'stepid') for each member's replay.update()."""
        carry, outs, metrics = self.train_step(carry, data)
        return carry, agentlib.writeback(outs, data, self.context, members=True), metrics

    # ---- one member at a time: reports and checkpoints -----------------------------

    def member_params(self, k):
        return unstack(self.state["params"], k)

    def report(self, k, data):
        """Member k's world-model report (losses and open-loop video), as Agent.report."""
        solo = self.solo
        _, metrics = solo.report(
            solo.init_report(np.asarray(data["is_first"]).shape[0]),
            data,
            self.member_params(k),
            self.scalars["seed"][k],
        )
        return metrics

    def member(self, k):
        """A view with save()/load() of member k in the solo agent's checkpoint format,
        so each member's ckpt/ is an ordinary run's."""
        return MemberView(self, k)

    @contextlib.contextmanager
    def on_host(self):
        """While saving every member: the stacked state copied to the host once, so each
        member's save slices NumPy arrays (slicing the device arrays dispatched one op per
        leaf and member, about ten times slower)."""
        self._host = jax.device_get(self.state)
        try:
            yield
        finally:
            self._host = None


def member_sharding(config, members):
    """The member axis split over `jax.train_devices`, which population.check_members has
    found equal to policy_devices (one mesh acts and trains) and dividing `members`."""
    devices = [jax.devices()[i] for i in config.jax.train_devices]
    assert members % len(devices) == 0, (members, len(devices))
    return NamedSharding(Mesh(np.array(devices), ("m",)), P("m"))


class MemberView:
    def __init__(self, population, k):
        self.population, self.k = population, k

    def save(self):
        pop, k = self.population, self.k
        state = unstack(pop._host, k) if pop._host is not None else jax.device_get(unstack(pop.state, k))
        return agentlib.to_saved(state, pop.policy_calls[k])

    def load(self, data):
        pop, k = self.population, self.k
        like = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), pop.state)
        state, pop.policy_calls[k] = agentlib.from_saved(data, like)
        pop.state = pop.put(jax.tree.map(lambda full, new: full.at[k].set(new), pop.state, state))
