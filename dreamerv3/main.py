"""DreamerV3 trainer entry point (SPEC s.2).

  python dreamerv3/main.py --logdir DIR/{timestamp} --configs atari100k size200m \
    --task atari100k_alien --script train --jax.platform cpu ...

Config = `defaults` of configs.yaml, then each `--configs` preset in order,
then the flags. Bad input (unknown flag, preset, task or an invalid
`agent.imag_adapt` value) prints one line to stderr and exits with code 2.
"""

import os
import pathlib
import sys

# Run as a script, Python puts this folder first on sys.path, where our
# modules (logs.py, replay.py, ...) could shadow top-level packages.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or '.') != _HERE]

import elements  # noqa: E402
import ruamel.yaml  # noqa: E402

CONFIGS = pathlib.Path(__file__).parent / 'configs.yaml'


class BadInput(Exception):
  pass


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
  problem = shift.check(config.env.gym.shift)
  if problem:
    raise BadInput(problem)
  if config.env.gym.shift.step > 0 and not config.task.startswith('gym_'):
    raise BadInput(f"env.gym.shift.step ({config.env.gym.shift.step}) is set but task "
                   f"'{config.task}' is not a gym task (the shift changes gym physics)")
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


def jax_platforms(platform):
  """The backends jax may start: the chosen one, plus the CPU off CPU, where
  host callbacks (the parameter init draws on the host) need a CPU device."""
  return platform if platform == 'cpu' else f'{platform},cpu'


def setup_jax(config):
  """Apply jax.* before any jax computation."""
  import jax
  jax.config.update('jax_platforms', jax_platforms(config.jax.platform))
  jax.config.update('jax_debug_nans', bool(config.jax.debug_nans))
  jax.config.update('jax_disable_jit', not config.jax.jit)
  if not config.jax.prealloc:
    os.environ['XLA_PYTHON_CLIENT_PREALLOCATE'] = 'false'
  try:
    jax.devices()
  except (RuntimeError, AssertionError) as e:
    # jax raises RuntimeError or a bare AssertionError when a backend is missing.
    detail = str(e).strip().splitlines()[0] if str(e).strip() else 'jax found no such backend'
    raise BadInput(f"jax.platform '{config.jax.platform}' is not available here ({detail})")


def main(argv=None, agent_cls=None):
  """Returns the exit code: 0 ok, 2 bad input."""
  argv = sys.argv[1:] if argv is None else list(argv)
  try:
    config = parse(argv)
  except BadInput as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  try:
    setup_jax(config)
  except BadInput as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  from dreamerv3 import run
  logdir = elements.Path(config.logdir)
  try:
    logdir.mkdir(parents=True)
    config.save(logdir / 'config.yaml')
  except OSError as e:  # a parent that is a file, no permission, a full disk
    print(f'error: --logdir {config.logdir}: cannot write there ({e.strerror or e})', file=sys.stderr)
    return 2
  print('Logdir:', logdir)
  try:
    run.SCRIPTS[config.script](config, agent_cls)
  except run.UsageError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


def _unbracket(arg):
  """'[0]' or '[0,1]' -> '0' or '0,1': the seed writes list flags in brackets,
  elements.Flags takes comma-separated values."""
  if arg.startswith('[') and arg.endswith(']') and not arg.startswith('--'):
    return arg[1:-1].replace(' ', '')
  return arg


def _message(error):
  # KeyError wraps its message in quotes; show the plain sentence.
  return str(error.args[0]) if error.args else repr(error)


if __name__ == '__main__':
  sys.exit(main())
