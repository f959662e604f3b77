"""The one home of the trainer's configs: presets, flags, saved configs.

A config is the `defaults` block of configs.yaml, then each `--configs` preset in
order, then the flags (`parse`). A run's saved config.yaml is read back against
today's defaults (`load_saved`), so keys added since the run was made take their
defaults and keys dropped since are ignored. Bad input raises BadInput with one
line; main.py prints it and exits with code 2.
"""

import os
import pathlib

import elements
import ruamel.yaml

CONFIGS = pathlib.Path(__file__).parent / 'configs.yaml'


class BadInput(Exception):
  """Bad flags, presets or settings, found before a run starts: one line for the user."""


class UsageError(Exception):
  """A bad setting found while building a run (env, agent, logger): one line, exit code 2."""


def load_presets():
  return ruamel.yaml.YAML(typ='safe').load(CONFIGS.read_text())


def from_presets(names, presets=None):
  """The `defaults` block updated by each named preset in order; BadInput names a bad one."""
  presets = presets or load_presets()
  config = elements.Config(presets['defaults'])
  for name in names:
    if name not in presets:
      known = ', '.join(k for k in presets if k != 'defaults')
      raise BadInput(f"unknown preset '{name}' in --configs (known: {known})")
    try:
      config = config.update(presets[name])
    except KeyError as e:
      raise BadInput(f"preset '{name}' in {CONFIGS.name}: {_message(e)}")
  return config


def parse(argv):
  """argv -> resolved elements.Config; raises BadInput with one line."""
  presets = load_presets()
  argv = [_unbracket(arg) for arg in argv]
  wants_help = '--help' in argv
  argv = [arg for arg in argv if arg != '--help']
  try:
    chosen, rest = elements.Flags(configs=['defaults']).parse_known(argv)
  except (KeyError, ValueError, TypeError) as e:
    raise BadInput(f'bad --configs: {e}')
  config = from_presets(chosen.configs, presets)
  if wants_help:
    rest = rest + ['--help']  # elements prints every key of this config, then exits
  try:
    config = elements.Flags(config).parse(rest)
  except (KeyError, ValueError, TypeError) as e:
    raise BadInput(_message(e) + ' (see --help for the known keys)')
  from dreamerv3 import envs
  try:
    envs.check_task(config.task)
  except ValueError as e:
    raise BadInput(str(e))
  from dreamerv3 import imag_adapt
  problem = imag_adapt.validate(config.agent.imag_adapt)
  if problem:
    raise BadInput(problem)
  from dreamerv3.envs import shift
  problem = shift.check_config(config)
  if problem:
    raise BadInput(problem)
  from dreamerv3 import agent
  if config.jax.compute_dtype not in agent.COMPUTE_DTYPES:
    raise BadInput(f"unknown --jax.compute_dtype '{config.jax.compute_dtype}' "
                   f"(known: {', '.join(agent.COMPUTE_DTYPES)})")
  from dreamerv3 import logs
  problem = logs.check_outputs(config.logger.outputs)
  if problem:
    raise BadInput(problem)
  if config.script not in ('train', 'train_eval', 'eval_only'):
    raise BadInput(f"unknown --script '{config.script}' (known: train, train_eval, eval_only)")
  if not config.logdir:
    raise BadInput('--logdir is required')
  logdir = config.logdir.replace('{timestamp}', elements.timestamp())
  if os.path.exists(logdir) and not os.path.isdir(logdir):
    raise BadInput(f'--logdir {logdir}: exists and is not a folder')
  return config.update(logdir=logdir)


def load_saved(path):
  """A run's saved config.yaml, merged into today's `defaults` (see the module doc)."""
  saved = elements.Config.load(elements.Path(path))
  defaults = from_presets([])
  return defaults.update({k: v for k, v in saved.flat.items() if k in defaults.flat})


def _unbracket(arg):
  """'[0]' or '[0,1]' -> '0' or '0,1': the seed writes list flags in brackets,
  elements.Flags takes comma-separated values."""
  if arg.startswith('[') and arg.endswith(']') and not arg.startswith('--'):
    return arg[1:-1].replace(' ', '')
  return arg


def _message(error):
  # KeyError wraps its message in quotes; show the plain sentence.
  return str(error.args[0]) if error.args else repr(error)
