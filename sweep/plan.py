"""A sweep expanded into runs and the processes (jobs) that make them.

Layout under the sweep's root (every run dir an ordinary trainer run dir):

    <root>/<task>_<arm>/seed<k>/              the run (--logdir; no timestamp, so a second
                                              start resumes from its ckpt/)
    <root>/logs/<task>_<arm>_seed<k>.log      its terminal output, each start headed by a
                                              line 'commit <sha>: python dreamerv3/main.py ...'
    <root>/.sweep/done/<task>_<arm>/seed<k>.json   written after the trainer exited 0: the
                                              flags it ran with; a run is finished when this
                                              names the flags the sweep would run now

A job is one trainer process. Today every job holds one run; `groups` already says which
runs could share one population process (members that differ only in values a population
may vary), the seam for starting one process per (task, shape) instead.
"""

import dataclasses
import fnmatch
import json
import os

from dreamerv3 import configs as configlib
from sweep.spec import SweepError

# Trainer flags members of one population may differ in (dreamerv3/population.py VARYING).
VARYING = ('seed', 'logdir', 'method', 'agent.opt.lr', 'agent.imag_adapt.*',
           'env.gym.shift.*', 'env.atari100k.shift.*')


@dataclasses.dataclass(frozen=True)
class Run:
  task: str            # folder label
  arm: str
  seed: int
  logdir: str          # <root>/<task>_<arm>/seed<k>
  flags: tuple         # trainer flags without --logdir
  log: str
  marker: str

  @property
  def name(self):
    return f'{self.task}_{self.arm}/seed{self.seed}'

  @property
  def argv(self):
    return ('--logdir', self.logdir) + self.flags


@dataclasses.dataclass(frozen=True)
class Job:
  """One trainer process: what execute.py needs, in plain values (it is pickled for SLURM)."""
  name: str
  runs: tuple          # the Runs this process makes
  argv: tuple          # the trainer's flags
  log: str
  env: tuple           # (name, value) pairs set for the process
  time_limit: float    # seconds, 0 = none
  cwd: str             # where the process starts (relative logdirs are relative to it)
  code: str            # folder holding the dreamerv3 package that runs
  commit: str          # what the log header names


def value_text(value):
  """A YAML value as the trainer's flag parser reads it."""
  if isinstance(value, bool):
    return 'True' if value else 'False'
  if isinstance(value, list):
    return '[' + ','.join(value_text(v) for v in value) + ']'
  return str(value)


def flag_args(flags):
  return tuple(a for key, value in flags.items() for a in (f'--{key}', value_text(value)))


def runs(sweep, root=None):
  """Every run of the sweep, task by task, arm by arm, seed by seed; each arm's command
  checked by the trainer's own parser (SweepError names the line of the file)."""
  root = root or sweep.root
  budget = {}
  if sweep.steps:
    budget['run.steps'] = sweep.steps
  if sweep.duration:
    budget['run.duration'] = sweep.duration
  out = []
  for label, task in sweep.tasks.items():
    for arm, spec in sweep.arms.items():
      presets = sweep.configs + spec['configs']
      flags = (('--configs', *presets) if presets else ()) + (
          '--task', task, '--method', arm) + flag_args(budget) + flag_args(
          sweep.flags) + flag_args(spec['flags'])
      _check(sweep, label, arm, flags)
      for seed in sweep.seeds:
        folder = f'{label}_{arm}'
        out.append(Run(
            task=label, arm=arm, seed=seed,
            logdir=os.path.join(root, folder, f'seed{seed}'),
            flags=flags + ('--seed', str(seed)),
            log=os.path.join(root, 'logs', f'{folder}_seed{seed}.log'),
            marker=os.path.join(root, '.sweep', 'done', folder, f'seed{seed}.json')))
  return out


def _check(sweep, label, arm, flags):
  """The trainer's parser on this arm's flags; a bad value is blamed on the line that set it."""
  try:
    configlib.parse(('--logdir', 'x') + flags)
  except configlib.BadInput as e:
    spec = sweep.arms[arm]
    own = any(k in str(e) for k in spec['flags']) or any(p in str(e) for p in spec['configs'])
    key = f'arms.{arm}' if own else ('tasks' if label in str(e) or sweep.tasks[label] in str(e)
                                     else 'flags')
    line = sweep.lines.get(key) or sweep.lines.get('flags') or sweep.lines.get('arms')
    where = f', line {line}' if line else ''
    raise SweepError(f'{sweep.path}{where}: task {label}, arm {arm}: {e}')


def is_finished(run):
  """True when the marker of a clean exit names the flags this run would start with now."""
  try:
    with open(run.marker) as f:
      done = json.load(f)
  except (OSError, ValueError):
    return False
  return isinstance(done, dict) and done.get('flags') == list(run.flags)


def has_checkpoint(run):
  """A start of this run resumes (the trainer restores <logdir>/ckpt when it holds one)."""
  return os.path.isfile(os.path.join(run.logdir, 'ckpt', 'latest'))


def solo_jobs(runs, env, time_limit, cwd, code, commit):
  """One process per run."""
  return [Job(name=r.name, runs=(r,), argv=r.argv, log=r.log, env=tuple(sorted(env.items())),
              time_limit=time_limit, cwd=cwd, code=code, commit=commit) for r in runs]


def _varies(key):
  return any(fnmatch.fnmatchcase(key, pattern) for pattern in VARYING)


def shape_key(run):
  """What must be equal for two runs to be members of one population: the task and every
  flag outside VARYING (presets included), in order."""
  args, fixed = list(run.flags), []
  i = 0
  while i < len(args):
    if args[i] == '--configs':
      j = i + 1
      while j < len(args) and not args[j].startswith('--'):
        j += 1
      fixed.append(tuple(args[i:j]))
      i = j
      continue
    key = args[i][2:]
    if not _varies(key):
      fixed.append((key, args[i + 1]))
    i += 2
  return (run.task, tuple(fixed))


def groups(runs):
  """Runs that one population process could train together: [[Run]], in sweep order."""
  out = {}
  for run in runs:
    out.setdefault(shape_key(run), []).append(run)
  return list(out.values())
