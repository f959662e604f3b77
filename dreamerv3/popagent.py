"""N DreamerV3 agents of one shape in one process: the population's agent.

The members' states are the solo agent's state (agent.py) with a leading member
axis M on every leaf: parameters, optimizer state, slow critic, return
normaliser, the adaptive rule's state, update counter. Their per-run scalars
(agent.run_scalars: seed, lr, imag_adapt) are stacked the same way. One jitted
`jax.vmap` of the solo update trains every member, one of the solo policy step
acts for every member's envs, so member k computes what a solo agent with
member k's config computes (random keys included: agent.stream_key).

Shape letters: M members, E envs per member, B batch, T time.
"""

import contextlib

import jax
import numpy as np

from dreamerv3 import agent as agentlib


def stack(trees):
  """[tree] -> one tree whose leaves have a leading member axis."""
  return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *trees)


def unstack(tree, k):
  return jax.tree.map(lambda x: x[k], tree)


class PopulationAgent:

  def __init__(self, obs_space, act_space, configs):
    """configs: the members' configs (population.member_configs), alike in
    everything but their run scalars."""
    self.configs = list(configs)
    self.size = len(self.configs)
    # The template: networks, jitted functions and settings, without a state of its own
    # (the members' states live in self.state; reports pass a member's parameters in).
    self.solo = agentlib.Agent(obs_space, act_space, self.configs[0], init_state=False)
    self.param_counts = self.solo.param_counts
    self.state = jax.device_put(stack([self.solo._init_state(c.seed) for c in self.configs]))
    self.scalars = jax.device_put(stack([agentlib.run_scalars(c) for c in self.configs]))
    self.policy_calls = np.zeros(self.size, np.int64)
    self._host = None  # the state on the host while on_host() saves the members
    # Members alike in agent.imag_adapt.enabled take the solo update's path for it
    # (fixed when traced); a mix computes both actor-critic gradients and selects.
    enabled = {bool(c.agent.imag_adapt.enabled) for c in self.configs}
    self.hook = 'config' if len(enabled) == 1 else 'mixed'
    self._train_fns = {}
    self._policy_fn = self.solo._jit(jax.vmap(self.solo._policy))

  @property
  def ext_space(self):
    return self.solo.ext_space

  @property
  def context(self):
    return self.solo.context

  # ---- acting and training, all members at once --------------------------------

  def init_policy(self, envs):
    return jax.device_put(stack([self.solo._zero_carry(envs)] * self.size))

  def init_train(self, batch_size):
    return self.init_policy(batch_size)

  def policy(self, carry, obs):
    """obs {key: [M, E, ...]} -> (carry, {'action': [M, E, ...]}, entries [M, E, ...])."""
    obs = {k: np.asarray(obs[k]) for k in (*self.solo.obskeys, 'is_first')}
    count = (self.policy_calls & 0xFFFFFFFF).astype(np.uint32)
    self.policy_calls += 1
    carry, action, entries = self._policy_fn(
        self.state['params'], carry, obs, self.scalars['seed'], count)
    action = np.asarray(action)
    if self.solo.model.discrete:
      action = action.astype(np.int32)
    return carry, {'action': action}, {k: np.asarray(v) for k, v in entries.items()}

  def _train_fn(self, hook):
    if hook not in self._train_fns:
      solo = self.solo
      update = lambda state, carry, data, scalars: solo._update(state, carry, data, scalars, hook)
      self._train_fns[hook] = solo._jit(jax.vmap(update), donate_argnums=(0,))
    return self._train_fns[hook]

  def train_step(self, carry, data, hook=None):
    """data {key: [M, B, K + T, ...]} -> (carry, outs [M, ...], metrics {key: [M]})."""
    data = jax.device_put(self.solo._host_data(data))
    fn = self._train_fn(hook or self.hook)
    self.state, carry, metrics, outs = fn(self.state, carry, data, self.scalars)
    metrics = {k: np.asarray(v, np.float64) for k, v in jax.device_get(metrics).items()}
    return carry, jax.device_get(outs), metrics

  def train(self, carry, data):
    """Like Agent.train for every member: outs['replay'] [M, B, T, ...] holds the fresh
    posteriors (and 'stepid') for each member's replay.update()."""
    carry, outs, metrics = self.train_step(carry, data)
    if not self.context:
      return carry, {}, metrics
    replay = dict(outs['replay'])
    if 'stepid' in data:
      replay['stepid'] = np.asarray(data['stepid'])[:, :, self.context:]
    return carry, {'replay': replay}, metrics

  # ---- one member at a time: reports and checkpoints -----------------------------

  def member_params(self, k):
    return unstack(self.state['params'], k)

  def report(self, k, data):
    """Member k's world-model report (losses and open-loop video), as Agent.report."""
    solo = self.solo
    _, metrics = solo.report(solo.init_report(np.asarray(data['is_first']).shape[0]), data,
                             self.member_params(k), self.scalars['seed'][k])
    return metrics

  def member(self, k):
    """A view with save()/load() of member k in the solo agent's checkpoint format,
    so each member's ckpt/ is an ordinary run's."""
    return MemberView(self, k)

  @contextlib.contextmanager
  def on_host(self):
    """While saving every member: the stacked state copied to the host once, so each
    member's save slices NumPy arrays (slicing the device arrays dispatched one op per
    leaf and member: 1.2 s for 16 debug members, against about 0.1 s)."""
    self._host = jax.device_get(self.state)
    try:
      yield
    finally:
      self._host = None


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
    pop.state = jax.tree.map(lambda full, new: full.at[k].set(new), pop.state, state)
