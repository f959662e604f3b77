"""The population's training loop: run.train for M members in lock-step.

Every member has what a solo run has (run.py): its envs and driver, replay,
step counter, bookkeeping, logger and checkpoint in its own run dir. The agent
is shared (popagent.PopulationAgent): one policy call acts for all members'
envs, one update trains all members on their own replayed batches. Members
share the schedule, so their step counters, update budgets and clocks move
together; logs and checkpoints are written member by member.

Resume: each member keeps its last two complete checkpoints. A kill between
two members' saves leaves some members one checkpoint ahead; the loop resumes
every member from the newest step that all of them hold, removes the newer
folders, and trims the logs to that step, so the population stays in
lock-step and no episode is written twice. A step at which one member's
checkpoint does not load (damaged, another model size) is skipped with one
warning line, as a solo run skips its damaged newest checkpoint.
"""

import concurrent.futures
import os
import pathlib
import sys
import time

import elements

from dreamerv3 import checkpoint as ckptlib
from dreamerv3 import envs as envlib
from dreamerv3 import logs
from dreamerv3 import memory
from dreamerv3 import popagent
from dreamerv3 import replay as replaylib
from dreamerv3 import run as runlib
from dreamerv3.errors import UsageError

KEEP = 2  # complete checkpoints each member keeps (see the module doc)


class Member:
  """One run of the population: everything run.train keeps per run, but the agent."""

  def __init__(self, config, index):
    self.config, self.index = config, index
    self.logdir = pathlib.Path(config.logdir)
    self.logdir.mkdir(parents=True, exist_ok=True)
    self.repeat = envlib.frames_per_step(config.task, config)
    self.envs = runlib.make_envs(config, config.run.envs)
    K, T = int(config.replay_context), int(config.batch_length)
    self.replay = replaylib.Replay(
        config.replay.size, config.replay.chunksize, len(self.envs), config.seed,
        length=T + K, online=config.replay.online)
    self.step = elements.Counter()
    self.book = runlib.Bookkeeping()
    self.ckpt = ckptlib.Checkpoint(self.logdir / 'ckpt', keep=KEEP)
    self.agg = elements.Agg()
    self.epstats = elements.Agg()
    self.logger = None
    self.driver = None
    self.on_episode = None

  def start(self, act_space):
    # The terminal shows the first member's lines; every member writes its files.
    self.logger = runlib.make_logger(
        self.config, self.logdir, self.step, self.repeat, terminal=self.index == 0)
    self.driver = runlib.Driver(self.envs, act_space)
    self.on_episode = runlib.episode_callback(self.logger, self.book, self.driver, self.epstats)


def train(configs, agent_cls=popagent.PopulationAgent):
  """Train the population whose members' configs are `configs` (population.py)."""
  base = configs[0]
  try:
    obs_space, act_space = envlib.spaces(base.task, base)
  except ValueError as e:
    raise UsageError(str(e))
  act_space = {k: v for k, v in act_space.items() if k != 'reset'}
  problem = memory.check_population(configs, obs_space, act_space)
  if problem:
    raise UsageError(problem)
  members = [Member(c, k) for k, c in enumerate(configs)]
  try:
    agent = agent_cls(obs_space, act_space, configs)
  except ValueError as e:
    raise UsageError(str(e).strip().splitlines()[0] if str(e).strip() else repr(e))
  runlib.print_params(agent)
  print(f'Population of {len(members)} members; run dirs: '
        f'{members[0].logdir} ... {members[-1].logdir}')
  for k, m in enumerate(members):
    for name, obj in (('step', m.step), ('agent', agent.member(k)),
                      ('replay', m.replay), ('book', m.book)):
      m.ckpt.register(name, obj)
  resume(members)
  for m in members:
    envlib.fast_forward(m.envs, int(m.step))
    m.start(act_space)

  B, T, K = base.batch_size, base.batch_length, int(base.replay_context)
  fill = base.run.train_fill or B * T
  E = len(members[0].envs)
  clocks = {k: elements.when.Clock(base.run[k]) for k in (
      'log_every', 'report_every', 'save_every')}
  usage = elements.Usage(**base.usage)
  timer = elements.Timer()
  fps = {'policy': [time.time(), int(members[0].step)], 'train': [time.time(), 0]}
  policy_carry = agent.init_policy(E)
  train_carry = agent.init_train(B)
  lead = members[0]  # every member's counters equal the lead's
  threads = int(base.run.env_threads) or min(len(members), os.cpu_count() or 1)
  pool = concurrent.futures.ThreadPoolExecutor(threads) if threads > 1 else None

  def step_member(k, acts):  # one member's envs, replay and episode logs (a thread's task)
    m = members[k]
    m.step.increment(E)
    m.driver.step({key: v[k] for key, v in acts.items()}, m.replay.add, m.on_episode)
  start = time.time()

  iteration = 0
  while int(lead.step) < base.run.steps:
    if base.run.duration and time.time() - start >= base.run.duration:
      print(f'Stopping: run.duration of {base.run.duration}s reached.')
      break
    with timer.section('policy'):
      obs = popagent.stack([m.driver.batch() for m in members])
      policy_carry, acts, outs = agent.policy(policy_carry, obs)
      acts = {**outs, **acts}
    with timer.section('env'):
      if pool:
        list(pool.map(step_member, range(len(members)), [acts] * len(members)))
      else:
        for k in range(len(members)):
          step_member(k, acts)

    if int(lead.step) >= fill and lead.replay.ready(T + K):
      for m in members:
        m.book.budget += E * base.run.train_ratio / (B * T)
      while lead.book.budget >= 1:
        with timer.section('sample'):
          batch = popagent.stack([m.replay.sample(B) for m in members])
        with timer.section('train'):
          train_carry, outs, metrics = agent.train(train_carry, batch)
        with timer.section('writeback'):
          for k, m in enumerate(members):
            m.agg.add({key: v[k] for key, v in metrics.items()})
            if 'replay' in outs:
              m.replay.update({key: v[k] for key, v in outs['replay'].items()})
            m.book.budget -= 1
            m.book.updates += 1
        fps['train'][1] += B * T

    iteration += 1
    if iteration % runlib.OPPORTUNITY:
      continue
    if lead.book.updates and clocks['report_every']():
      for k, m in enumerate(members):
        report(agent, k, m)
    if clocks['log_every']():
      log_all(members, fps, usage, timer)
    if clocks['save_every']():
      save_all(members, agent)

  if int(lead.step) != fps['policy'][1]:
    log_all(members, fps, usage, timer)
  if lead.ckpt.latest() is None or lead.ckpt.saved_step != int(lead.step):
    save_all(members, agent)
  pool and pool.shutdown()
  for m in members:
    logs.close(m.logger)
    m.driver.close()
  repeat = lead.repeat
  print(f'Finished at agent step {int(lead.step)} ({int(lead.step) * repeat} env frames) '
        f'in each of {len(members)} members.')


def report(agent, k, member):
  runlib.write_report(member.replay, member.config, member.logger,
                      lambda batch: agent.report(k, batch))


def log_all(members, fps, usage, timer):
  """Each member's train/*, epstats/*, replay/* and the loop's shared usage/*,
  timer/* and fps/* (the population's rates: env steps of one member per second)."""
  stats = usage.stats()
  times = runlib.timer_stats(timer)
  rates = runlib.take_rates(fps, int(members[0].step), time.time())
  for m in members:
    m.logger.add(m.agg.result(), prefix='train')
    m.logger.add(m.epstats.result(), prefix='epstats')
    m.logger.add(stats, prefix='usage')
    m.logger.add(times, prefix='timer')
    m.logger.add(rates, prefix='fps')
    m.logger.add(m.replay.stats(), prefix='replay')
    m.logger.write()


def save_all(members, agent):
  with agent.on_host():
    for m in members:
      runlib.save(m.ckpt, m.logger, m.step)


def resume(members):
  """Load every member at the newest step at which all of them hold a complete checkpoint
  that loads (see the module doc); ResumeError (one line, exit 2) when there is none."""
  held = [{ckptlib.step_of(p): p for p in ckptlib.complete_folders(m.ckpt.directory)}
          for m in members]
  if not any(held):
    return
  common = sorted(set(held[0]).intersection(*held[1:]), reverse=True)
  if not common:
    found = ', '.join(f'{m.logdir}: {sorted(h) or "none"}' for m, h in zip(members, held))
    raise UsageError('population: the members hold no checkpoint of one same step, so they '
                     f'cannot resume in lock-step (steps held: {found}); remove the run dirs '
                     'to start again')
  for i, step in enumerate(common):
    problem = _load_all(members, held, step)
    if problem is None:
      break
    if i + 1 == len(common):
      raise ckptlib.ResumeError(
          f'population: {problem}, and no earlier step at which every member holds a '
          'complete checkpoint; remove the run dirs to start again')
    print(f'Warning: {problem}; resuming every member from step {common[i + 1]}, the newest '
          'step before it that all of them hold', file=sys.stderr)
  for m, h in zip(members, held):
    for later in sorted(s for s in h if s > step):
      ckptlib.remove_folder(h[later])  # saves of a step not resumed from: another timeline
    runlib.rewind_logs(m.config, m.logdir, int(m.step), m.repeat, m.book, named=True)
  print(f'Resumed {len(members)} members at agent step {step}.')


def _load_all(members, held, step):
  """Load every member's checkpoint of `step`; None, or why one of them does not load."""
  for m, h in zip(members, held):
    why = m.ckpt.try_load(h[step])
    if why is not None:
      return f'checkpoint {h[step]}: {why}'
  return None
