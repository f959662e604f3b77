"""The run loops: `train`, `train_eval` and `eval_only` (SCRIPTS).

Envs are stepped in lock-step; every agent step adds one transition per env
to replay (obs plus the action chosen at that obs, the official convention,
and with `replay_context` the policy's latent state after that obs). Each
update samples batch_length + replay_context steps per sequence; the agent
returns the batch's fresh posteriors, which are written back into replay.
Updates are interleaved at `run.train_ratio` replayed steps per agent step:
one update of batch_size x batch_length steps every
batch_size * batch_length / train_ratio agent steps, once `run.train_fill`
steps are collected. Logging, reports and checkpoints are checked at
"opportunities", every OPPORTUNITY loop iterations, against their clocks in
seconds (0 = at every opportunity). A checkpoint is also written at the end.

Resume: when `<logdir>/ckpt` holds a complete checkpoint, the step counter,
agent, replay and bookkeeping are restored, and the logs are trimmed to the
checkpoint's step so no episode is written twice (see logs.trim).
"""

import pathlib
import time

import elements
import numpy as np

from dreamerv3 import checkpoint as ckptlib
from dreamerv3 import envs as envlib
from dreamerv3 import logs
from dreamerv3 import metrics as metricslib
from dreamerv3 import replay as replaylib
from dreamerv3.errors import UsageError
from dreamerv3.restore import build_agent

OPPORTUNITY = 10  # loop iterations between checks of the log/report/save clocks


def make_envs(config, count, offset=0):
  """Envs `offset..offset+count-1`; a bad env.* setting becomes a UsageError."""
  try:
    return [envlib.make_env(config.task, config, offset + i) for i in range(count)]
  except ValueError as e:
    raise UsageError(str(e))


def make_logger(config, logdir, step, repeat, terminal=True):
  try:
    return logs.make_logger(logdir, step, repeat, terminal=terminal, cfg=config.logger)
  except ValueError as e:
    raise UsageError(str(e))


class Bookkeeping:
  """Loop state that must survive a resume, saved in the checkpoint."""

  def __init__(self):
    self.budget = 0.0     # fractional updates owed to the train ratio
    self.updates = 0      # gradient updates done
    self.episodes = 0     # training episodes written to scores.jsonl

  def save(self):
    return {'budget': self.budget, 'updates': self.updates, 'episodes': self.episodes}

  def load(self, data):
    self.budget = data['budget']
    self.updates = data['updates']
    self.episodes = data['episodes']


class Driver:
  """Steps a list of envs in lock-step and tracks their episodes."""

  def __init__(self, envs, act_space):
    self.envs = envs
    self.act_space = {k: v for k, v in act_space.items() if k != 'reset'}
    self.score = np.zeros(len(envs), np.float64)
    self.length = np.zeros(len(envs), np.int64)
    self.rewards = [[] for _ in envs]  # rewards of each env's current episode
    self.restart()

  def restart(self):
    """Start a fresh episode in every env."""
    reset = {k: np.zeros(v.shape, v.dtype) for k, v in self.act_space.items()}
    self.obs = [env.step({**reset, 'reset': True}) for env in self.envs]
    self.score[:], self.length[:] = 0.0, 0
    self.rewards = [[] for _ in self.envs]

  def batch(self):
    return {k: np.stack([o[k] for o in self.obs]) for k in self.obs[0]}

  def step(self, acts, on_transition=None, on_episode=None):
    """Apply acts [n_envs, ...]; returns nothing, calls the callbacks. Keys of
    acts that are not actions (the policy's outputs) go to on_transition only."""
    for i, env in enumerate(self.envs):
      obs = self.obs[i]
      act = {k: np.asarray(acts[k][i]) for k in self.act_space}
      if obs['is_last']:
        act = {k: np.zeros_like(v) for k, v in act.items()}
      extra = {k: np.asarray(v[i]) for k, v in acts.items() if k not in self.act_space}
      on_transition and on_transition({**obs, **act, **extra}, i)
      new = env.step({**act, 'reset': False})
      if new['is_first']:
        self.score[i], self.length[i] = 0.0, 0
        self.rewards[i] = []
      else:
        self.score[i] += float(new['reward'])
        self.length[i] += 1
        self.rewards[i].append(float(new['reward']))
      if new['is_last'] and on_episode:
        on_episode(self.score[i], int(self.length[i]), i)
      self.obs[i] = new

  def close(self):
    for env in self.envs:
      env.close()


def policy_acts(agent, carry, obs, mode):
  """Actions plus the policy's outputs (with replay_context, the latent state
  that replay stores with each step)."""
  carry, act, outs = agent.policy(carry, obs, mode=mode)
  return carry, {k: np.asarray(v) for k, v in {**outs, **act}.items()}


def scalars(metrics):
  return {k: np.asarray(v) for k, v in metrics.items() if np.asarray(v).ndim == 0}


def run_eval_episodes(agent, driver, episodes, mode='eval'):
  """Play until `episodes` episodes finish; returns [(score, length)]."""
  results = []
  driver.restart()
  carry = agent.init_policy(len(driver.envs))
  collect = lambda score, length, i: results.append((float(score), length))
  while len(results) < episodes:
    carry, acts = policy_acts(agent, carry, driver.batch(), mode)
    driver.step(acts, on_episode=collect)
  return results[:episodes]


def train(config, agent_cls=None, with_eval=False):
  logdir = pathlib.Path(config.logdir)
  logdir.mkdir(parents=True, exist_ok=True)
  repeat = envlib.frames_per_step(config.task, config)
  envs = make_envs(config, config.run.envs)
  obs_space, act_space = envs[0].obs_space, envs[0].act_space
  agent = build_agent(obs_space, act_space, config, agent_cls)
  print_params(agent)

  B, T = config.batch_size, config.batch_length
  step = elements.Counter()
  K = int(config.replay_context)
  replay = replaylib.Replay(
      config.replay.size, config.replay.chunksize, len(envs), config.seed,
      length=T + K, online=config.replay.online)
  book = Bookkeeping()
  ckpt = ckptlib.Checkpoint(logdir / 'ckpt')
  for name, obj in (('step', step), ('agent', agent), ('replay', replay), ('book', book)):
    ckpt.register(name, obj)
  resume(ckpt, config, logdir, agent, step, book, repeat)
  envlib.fast_forward(envs, int(step))  # a dynamics shift that was due stays applied

  logger = make_logger(config, logdir, step, repeat)
  driver = Driver(envs, act_space)
  eval_driver = None
  if with_eval:
    eval_driver = Driver(make_envs(config, config.run.eval_envs, 1000), act_space)

  fill = config.run.train_fill or B * T
  clocks = {k: elements.when.Clock(config.run[k]) for k in (
      'log_every', 'report_every', 'save_every')}
  eval_clock = elements.when.Clock(config.run.eval_every, first=False)
  agg = elements.Agg()
  epstats = elements.Agg()  # per-episode statistics, logged as epstats/*
  usage = elements.Usage(**config.usage)
  timer = elements.Timer()  # wall time per part of the loop, logged as timer/<part>/*
  fps = {'policy': [time.time(), int(step)], 'train': [time.time(), 0]}
  policy_carry = agent.init_policy(len(envs))
  train_carry = agent.init_train(B)
  start = time.time()
  on_episode = episode_callback(logger, book, driver, epstats)

  iteration = 0
  while int(step) < config.run.steps:
    if config.run.duration and time.time() - start >= config.run.duration:
      print(f'Stopping: run.duration of {config.run.duration}s reached.')
      break
    with timer.section('policy'):
      policy_carry, acts = policy_acts(agent, policy_carry, driver.batch(), 'train')
    step.increment(len(envs))  # before the callbacks: episodes log the step they end at
    with timer.section('env'):
      driver.step(acts, replay.add, on_episode)

    if int(step) >= fill and replay.ready(T + K):
      book.budget += len(envs) * config.run.train_ratio / (B * T)
      while book.budget >= 1:
        with timer.section('sample'):
          batch = replay.sample(B)
        with timer.section('train'):  # scalars() waits for the update to finish
          train_carry, outs, metrics = agent.train(train_carry, batch)
          agg.add(scalars(metrics))
        if 'replay' in outs:
          with timer.section('writeback'):
            replay.update(outs['replay'])
        book.budget -= 1
        book.updates += 1
        fps['train'][1] += B * T

    iteration += 1
    if iteration % OPPORTUNITY:
      continue
    if book.updates and clocks['report_every']():
      report(agent, replay, config, logger)
    if eval_driver and eval_clock():
      log_eval(agent, eval_driver, config, logger)
    if clocks['log_every']():
      log_train(logger, agg, replay, fps, step, epstats, usage, timer)
    if clocks['save_every']():
      save(ckpt, logger, step)

  if eval_driver:
    log_eval(agent, eval_driver, config, logger)
    eval_driver.close()
  if int(step) != fps['policy'][1]:
    log_train(logger, agg, replay, fps, step, epstats, usage, timer)
  if ckpt.latest() is None or ckpt.saved_step != int(step):
    save(ckpt, logger, step)
  logs.close(logger)
  driver.close()
  print(f'Finished at agent step {int(step)} ({int(step) * repeat} env frames).')


def episode_callback(logger, book, driver, epstats):
  """The driver's on_episode of a training run (solo or population member): one episode/*
  line per episode, the count the checkpoint keeps, the episode's reward rate."""

  def on_episode(score, length, index):
    logger.add({'score': score, 'length': length}, prefix='episode')
    logger.write()  # one line per episode, even when two end at one step
    book.episodes += 1
    rate = metricslib.reward_rate(driver.rewards[index])
    if rate is not None:
      epstats.add({'reward_rate': rate})
  return on_episode


def resume(ckpt, config, logdir, agent, step, book, repeat):
  if ckpt.latest():
    path = ckpt.load()
    print(f'Resumed from {path} at agent step {int(step)}.')
    rewind_logs(config, logdir, int(step), repeat, book)
  elif config.run.from_checkpoint:
    source = ckptlib.resolve(config.run.from_checkpoint)
    ckptlib.load_item(agent, source, 'agent')
    print(f'Loaded agent weights from {source}.')


def rewind_logs(config, logdir, step, repeat, book, named=False):
  """After a resume at `step`: trim the logs to it (no episode is written twice), and warn in
  one line when scores.jsonl still disagrees with the checkpoint's episode count (a log lost
  or edited by hand; the run goes on). `named`: the line names the run dir (populations)."""
  logs.trim(logdir, step * repeat)
  written = logs.count_lines(logdir / 'scores.jsonl')
  if 'jsonl' in config.logger.outputs and written != book.episodes:
    where = f'{logdir}/scores.jsonl' if named else 'scores.jsonl'
    print(f'Warning: {where} has {written} episodes, checkpoint counted {book.episodes}.')


def report(agent, replay, config, logger):
  B = config.batch_size
  write_report(replay, config, logger, lambda batch: agent.report(agent.init_report(B), batch)[1])


def write_report(replay, config, logger, report_fn):
  """report/* from one report batch of `replay`; report_fn(batch) -> the agent's metrics
  (a solo agent's, or one population member's)."""
  length = config.report_length + config.replay_context
  batch = replay.sample(config.batch_size, length, mode='report')
  metrics = {k: np.asarray(v) for k, v in report_fn(batch).items()}
  logger.add(logs.scope_safe(metrics), prefix='report')


def log_eval(agent, driver, config, logger):
  for score, length in run_eval_episodes(agent, driver, config.run.eval_eps):
    logger.add({'score': score, 'length': length}, prefix='eval_episode')
    logger.write()


def log_train(logger, agg, replay, fps, step, epstats, usage, timer):
  """train/*, epstats/*, fps/*, replay/*, usage/* as the official logs them, and
  timer/<part>/{mean,frac,count}: seconds per call, share of the interval's wall time
  and calls of each part of the loop (policy, env, sample, train, writeback)."""
  now = time.time()
  logger.add(agg.result(), prefix='train')
  logger.add(epstats.result(), prefix='epstats')
  logger.add(usage.stats(), prefix='usage')
  logger.add(timer_stats(timer), prefix='timer')
  logger.add(take_rates(fps, int(step), now), prefix='fps')
  logger.add(replay.stats(), prefix='replay')
  logger.write()


def timer_stats(timer):
  """timer/<part>/{mean,frac,count} of the loop's timer (its other statistics are not logged)."""
  return {k: v for k, v in timer.stats().items()
          if k.rsplit('/', 1)[-1] in ('mean', 'frac', 'count')}


def take_rates(fps, step, now):
  """fps/policy (agent steps/s) and fps/train (replayed steps/s) since the last call, and
  both clocks restarted at `now`. fps: {'policy': [time, step], 'train': [time, steps]}."""
  policy_time, policy_step = fps['policy']
  rates = {'policy': (step - policy_step) / max(1e-9, now - policy_time),
           'train': fps['train'][1] / max(1e-9, now - fps['train'][0])}
  fps['policy'] = [now, step]
  fps['train'] = [now, 0]
  return rates


def save(ckpt, logger, step):
  # Flush episodes first: the checkpoint promises scores.jsonl is complete
  # up to its step, which is what makes resume exact.
  logger.write()
  for output in logger.outputs:
    hasattr(output, 'wait') and output.wait()
  ckpt.save(int(step))


def eval_only(config, agent_cls=None):
  if not config.run.from_checkpoint:
    raise UsageError('script eval_only needs --run.from_checkpoint <run dir or checkpoint>')
  logdir = pathlib.Path(config.logdir)
  logdir.mkdir(parents=True, exist_ok=True)
  repeat = envlib.frames_per_step(config.task, config)
  envs = make_envs(config, config.run.envs)
  agent = build_agent(envs[0].obs_space, envs[0].act_space, config, agent_cls)
  print_params(agent)
  source = ckptlib.resolve(config.run.from_checkpoint)
  ckptlib.load_item(agent, source, 'agent')
  print(f'Loaded agent weights from {source}.')
  step = elements.Counter()
  logger = make_logger(config, logdir, step, repeat)
  driver = Driver(envs, envs[0].act_space)
  carry = agent.init_policy(len(envs))
  start = time.time()

  def on_episode(score, length, index):
    logger.add({'score': score, 'length': length}, prefix='episode')
    logger.write()

  while int(step) < config.run.steps:
    if config.run.duration and time.time() - start >= config.run.duration:
      break
    carry, acts = policy_acts(agent, carry, driver.batch(), 'eval')
    step.increment(len(envs))
    driver.step(acts, on_episode=on_episode)
  logs.close(logger)
  driver.close()


def print_params(agent):
  counts = dict(getattr(agent, 'param_counts', {}) or {})
  total = counts.pop('total', sum(counts.values()))
  parts = ', '.join(f'{k} {int(v):,}' for k, v in counts.items())
  print(f'Parameter count: total {int(total):,}' + (f' ({parts})' if parts else ''))


SCRIPTS = {
    'train': lambda config, agent_cls=None: train(config, agent_cls),
    'train_eval': lambda config, agent_cls=None: train(config, agent_cls, with_eval=True),
    'eval_only': eval_only,
}
