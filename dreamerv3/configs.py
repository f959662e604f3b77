"""The one home of the trainer's configs: presets, flags, saved configs.

A config is the `defaults` block of configs.yaml, then each `--configs` preset in
order, then the flags (`parse`). A run's saved config.yaml is read back against
today's defaults (`load_saved`), so keys added since the run was made take their
defaults and keys dropped since are ignored. Bad input raises BadInput with one
line; main.py prints it and exits with code 2.
"""

import fnmatch
import functools
import math
import os
import pathlib

import elements
import ruamel.yaml

from dreamerv3 import remotepath, validate
from dreamerv3.errors import BadInput, UsageError

CONFIGS = pathlib.Path(__file__).parent / "configs.yaml"


def load_presets():
    return ruamel.yaml.YAML(typ="safe").load(CONFIGS.read_text())


def from_presets(names, presets=None):
    """The `defaults` block updated by each named preset in order; BadInput names a bad one."""
    presets = presets or load_presets()
    config = elements.Config(presets["defaults"])
    for name in names:
        if name not in presets:
            known = ", ".join(k for k in presets if k != "defaults")
            raise BadInput(f"unknown preset '{name}' in --configs (known: {known})")
        try:
            config = config.update(presets[name])
        except KeyError as e:
            raise BadInput(f"preset '{name}' in {CONFIGS.name}: {_message(e)}")
    return config


def check(config):
    """BadInput (one line) for the first setting of `config` that cannot work: each check is
    owned by the module of its settings and imports no jax. A population member's config
    passes here as a solo config does."""
    from dreamerv3 import envs, logs, settings
    from dreamerv3.envs import shift

    try:
        validate.name(config.task, "--task")
        envs.check_task(config.task)
    except (ValueError, validate.Invalid) as e:
        raise BadInput(str(e))
    problem = (
        settings.validate(config.agent.imag_adapt)
        or shift.check_config(config)
        or settings.check_compute_dtype(config.jax.compute_dtype)
        or logs.check_outputs(config.logger.outputs)
    )
    if problem:  # each owner quotes the value it refuses: one line, however odd the value
        raise BadInput(validate.one_line(problem))
    if config.script not in ("train", "train_eval", "eval_only"):
        raise BadInput(f"unknown --script {validate.show(config.script)} (known: train, train_eval, eval_only)")
    problem = check_numbers(config)
    if problem:
        raise BadInput(problem)
    if not config.logdir:
        raise BadInput("--logdir is required")
    if remotepath.scheme(config.logdir) and not remotepath.is_remote(config.logdir):
        raise BadInput(
            f"--logdir {validate.show(config.logdir)}: expected a local folder or "
            f"object storage ({', '.join(s + '://' for s in remotepath.PROTOCOLS)})"
        )
    population = str(config.population.seeds).strip() or str(config.population.arms).strip()
    for field in ("{seed}", "{arm}"):
        if field in str(config.logdir) and not population:
            raise BadInput(
                f"--logdir {validate.show(config.logdir)}: '{field}' is filled in only for a "
                "population; give --population.seeds (and --population.arms)"
            )


def parse(argv):
    """argv -> resolved elements.Config; raises BadInput with one line."""
    presets = load_presets()
    argv = [_unbracket(arg) for arg in argv]
    for arg in argv:
        if arg.startswith("--"):  # a flag name: a dotted key, or one of elements' small patterns
            try:
                validate.pattern_key(arg.split("=", 1)[0], "flag")
            except validate.Invalid as e:
                raise BadInput(str(e))
    wants_help = "--help" in argv
    argv = [arg for arg in argv if arg != "--help"]
    try:
        chosen, rest = elements.Flags(configs=["defaults"]).parse_known(argv)
    except (KeyError, ValueError, TypeError) as e:
        raise BadInput(f"bad --configs: {validate.clip(_message(e), 200)}")
    config = from_presets(chosen.configs, presets)
    if wants_help:
        rest = rest + ["--help"]  # elements prints every key of this config, then exits
    try:
        config = elements.Flags(config).parse(rest)
    except (KeyError, ValueError, TypeError) as e:
        raise BadInput(validate.clip(_message(e), 200) + " (see --help for the known keys)")
    check(config)
    logdir = config.logdir.replace("{timestamp}", elements.timestamp())
    if os.path.exists(logdir) and not os.path.isdir(logdir):
        raise BadInput(f"--logdir {logdir}: exists and is not a folder")
    return config.update(logdir=logdir)


# The range of every numeric setting (first matching pattern wins); lists are checked item by
# item. Counts and sizes are whole numbers >= 1; times in seconds and warmups may be 0 ("every
# time" / "off"; run.duration 0 = no limit). env.*.shift and agent.imag_adapt have their own
# checks (envs/shift.py, imag_adapt.validate) and are only required to be finite here.
WHOLE, POSITIVE, NONNEG, FRACTION, ANY, SEED = "whole", "positive", "nonneg", "fraction", "any", "seed"
NUMBER_RULES = (
    ("env.*.shift.*", ANY),
    ("agent.imag_adapt.*", ANY),
    ("seed", SEED),
    ("jax.*_devices", NONNEG),
    ("batch_size", WHOLE),
    ("batch_length", WHOLE),
    ("report_length", WHOLE),
    ("replay_context", NONNEG),
    ("run.steps", WHOLE),
    ("run.envs", WHOLE),
    ("run.eval_envs", WHOLE),
    ("run.eval_eps", WHOLE),
    ("run.train_ratio", POSITIVE),
    ("run.*", NONNEG),
    ("logger.fps", WHOLE),
    ("replay.size", WHOLE),
    ("replay.chunksize", WHOLE),
    ("env.*.size", WHOLE),
    ("env.atari100k.repeat", WHOLE),
    ("env.dummy.length", WHOLE),
    ("env.*", NONNEG),
    ("agent.*.unimix", FRACTION),
    ("agent.*layers", NONNEG),
    ("agent.*.outscale", NONNEG),
    ("agent.rssm.free_nats", NONNEG),
    ("agent.rssm.*", WHOLE),
    ("agent.enc.*", WHOLE),
    ("agent.dec.*", WHOLE),
    ("agent.*.units", WHOLE),
    ("agent.*.bins", WHOLE),
    ("agent.policy.*std", POSITIVE),
    ("agent.imag_length", WHOLE),
    ("agent.horizon", POSITIVE),
    ("agent.return_lambda", FRACTION),
    ("agent.slow_rate", FRACTION),
    ("agent.retnorm.rate", FRACTION),
    ("agent.retnorm.limit", POSITIVE),
    ("agent.opt.lr", NONNEG),
    ("agent.opt.eps", POSITIVE),
    ("agent.opt.beta*", FRACTION),
    ("agent.report_openloop", WHOLE),
    ("*", NONNEG),
)
EXPECTED = {
    WHOLE: "a whole number >= 1",
    POSITIVE: "a number > 0",
    NONNEG: "a number >= 0",
    FRACTION: "a number in [0, 1]",
    ANY: "a finite number",
    SEED: f"a whole number in 0 .. {validate.MAX_SEED}",
}


def check_numbers(config):
    """None, or one line naming the first numeric setting out of its range (NUMBER_RULES), a
    percentile pair out of order, or a --run.from_checkpoint with no checkpoint there."""
    for key, value in config.flat.items():
        rule = _rule(key)
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                continue
            if not _in_range(item, rule):
                return f"--{key} {_show(value)}: expected {EXPECTED[rule]}"
    plo, phi = config.agent.retnorm.plo, config.agent.retnorm.phi
    if not 0 <= plo < phi <= 100:
        return f"--agent.retnorm.plo {plo} / phi {phi}: expected percentiles 0 <= plo < phi <= 100"
    source = config.run.from_checkpoint
    if source and "://" not in str(source):
        from dreamerv3 import checkpoint

        try:
            checkpoint.resolve(source)
        except UsageError as e:
            return f"--run.from_checkpoint {source}: {e}"
    return None


@functools.cache
def _rule(key):
    return next(r for pattern, r in NUMBER_RULES if fnmatch.fnmatchcase(key, pattern))


def _in_range(value, rule):
    if isinstance(value, int) and value.bit_length() > 62:  # past a C integer (and a float's 53 bits)
        return False
    if not math.isfinite(value):
        return False
    if rule == WHOLE:
        return value >= 1 and float(value).is_integer()
    if rule == SEED:
        return 0 <= value <= validate.MAX_SEED and float(value).is_integer()
    return {POSITIVE: value > 0, NONNEG: value >= 0, FRACTION: 0 <= value <= 1, ANY: True}[rule]


def _show(value):
    """A setting's value for a message: a short list item by item, anything long cut short."""
    items = value if isinstance(value, (tuple, list)) else (value,)
    if len(items) > 16:
        return validate.show(value)
    return ",".join(validate.show(item) for item in items)


def load_saved(path):
    """A run's saved config.yaml, merged into today's `defaults` (see the module doc)."""
    try:
        data = validate.load_yaml(elements.Path(path).read_bytes(), str(path))
        if not isinstance(data, dict):
            raise validate.Invalid(f"{path}: expected a mapping of settings")
        saved = elements.Config(data)
    except validate.Invalid as e:
        raise UsageError(str(e) + (f" (line {e.line})" if e.line else ""))
    defaults = from_presets([])
    return defaults.update({k: v for k, v in saved.flat.items() if k in defaults.flat})


def _unbracket(arg):
    """'[0]' or '[0,1]' -> '0' or '0,1': the reference commands write list flags in brackets,
    elements.Flags takes comma-separated values."""
    if arg.startswith("[") and arg.endswith("]") and not arg.startswith("--"):
        return arg[1:-1].replace(" ", "")
    return arg


def _message(error):
    # KeyError wraps its message in quotes; show the plain sentence.
    return str(error.args[0]) if error.args else repr(error)
