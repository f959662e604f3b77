"""A population: many runs of DreamerV3 trained in one process, one vmapped update.

A training command, plus two flags, starts one:

  python dreamerv3/main.py --logdir runs/cartpole_{arm}/seed{seed} \\
    --configs cartpole size1m --population.seeds 0-3 --population.arms arms.yaml

Every (arm, seed) pair is a member: the config of the command line, then the arm's
values (arms.yaml: arm name -> {dotted flag: value}), then its seed; `{arm}` and
`{seed}` in --logdir give each member its own ordinary run dir. Members share the
schedule and every value that fixes array shapes; they may differ only in the
values the update reads as arrays (agent.run_scalars: seed, learning rate,
`agent.imag_adapt.*`) and in what only their own envs, replay and logs read
(VARYING). Members that differ in anything else are separate populations: start
one command for each (the message names the keys).

This module turns a parsed config into the member configs and refuses what a
population cannot be, with one line (BadInput). The vmapped learner is learner.py,
the training loop (the same for one member or many) run.py.
"""

import fnmatch
import os

from dreamerv3 import configs, settings, validate
from dreamerv3.envs import shift
from dreamerv3.errors import BadInput

# Config keys (fnmatch patterns) in which members may differ.
VARYING = (
    "seed",
    "logdir",
    "method",
    "population.*",
    "agent.opt.lr",
    "agent.imag_adapt.*",  # read as arrays by the update
    "env.gym.shift.*",
    "env.atari100k.shift.*",  # read by each member's own envs
)
ALLOWED = "the seed, agent.opt.lr, agent.imag_adapt.* and env.*.shift.*"
MAX_MEMBERS = 4096


def is_population(config):
    return bool(str(config.population.seeds).strip() or str(config.population.arms).strip())


def parse_seeds(text):
    """'0,1,2' or '0-7' or '0-3,8' (ranges inclusive) -> [int]; '' or blank -> []. Counted
    before a range is expanded (validate.seeds)."""
    if not str(text).strip():
        return []
    try:
        return validate.seeds(str(text), "--population.seeds", MAX_MEMBERS)
    except validate.Invalid as e:
        raise BadInput(str(e))


def load_arms(path):
    """The arms file -> {arm name: {dotted key: value}} in file order. Keys are taken
    literally (a dotted flag name, never a pattern); values are numbers, true/false, texts or
    lists of them; the file is read within validate.load_yaml's bounds."""
    what = f"--population.arms {path}"
    try:
        raw = validate.read_bounded(path)  # a FIFO or a device: one line, never a read that blocks
    except OSError as e:
        raise BadInput(f"{what}: cannot read it ({e.strerror or e})")
    try:
        data = validate.load_yaml(raw, what)
        if not isinstance(data, dict) or not data:
            raise validate.Invalid(
                f"{what}: expected a mapping of arm name -> {{dotted flag: value}}, "
                'e.g. "adapt: {agent.imag_adapt.enabled: True}"'
            )
        if len(data) > MAX_MEMBERS:
            raise validate.Invalid(f"{what}: {len(data)} arms; expected at most {MAX_MEMBERS}")
        arms = {}
        for name, values in data.items():
            validate.name(name, f"{what}: arm name")
            values = {} if values is None else values
            if not isinstance(values, dict):
                raise validate.Invalid(
                    f"{what}: arm '{name}' must map dotted flags to values, got {validate.show(values)}"
                )
            arms[name] = {
                validate.flag_key(k, f"{what}: arm '{name}': key"): _value(
                    v, f"{what}: arm '{name}': {validate.show(k)}"
                )
                for k, v in values.items()
            }
    except validate.Invalid as e:
        line = f" (line {e.line})" if e.line else ""
        raise BadInput(f"{e}{line}")
    return arms


def _value(value, what):
    """A flag value of an arms file: a number, true/false or a text, or a list of them."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, str):
            validate.text(item, what, empty=True)
        elif not isinstance(item, (bool, int, float)):
            raise validate.Invalid(
                f"{what}: expected a number, true/false, a text or a list of them, got {validate.show(item)}"
            )
    return value


def member_configs(config):
    """The members of the population that `config` asks for, as full configs,
    arm by arm and seed by seed; raises BadInput with one line."""
    seeds = parse_seeds(config.population.seeds) or [int(config.seed)]
    arms = load_arms(config.population.arms) if str(config.population.arms).strip() else {"": {}}
    if len(seeds) * len(arms) > MAX_MEMBERS:  # before any member exists
        raise BadInput(
            f"population: {len(arms)} arms x {len(seeds)} seeds = "
            f"{len(seeds) * len(arms)} members; expected at most {MAX_MEMBERS}"
        )
    pattern = str(config.logdir)
    if len(seeds) > 1 and "{seed}" not in pattern:
        raise BadInput(
            f"--logdir {pattern}: a population of several seeds needs '{{seed}}' "
            "in it, so that each member gets its own run dir"
        )
    if len(arms) > 1 and "{arm}" not in pattern:
        raise BadInput(
            f"--logdir {pattern}: a population of several arms needs '{{arm}}' "
            "in it, so that each member gets its own run dir"
        )
    members = []
    for arm, values in arms.items():
        for key in values:
            if key not in config.flat:
                raise BadInput(
                    f"--population.arms: arm '{arm}' sets {key}, which is not a setting of "
                    "the trainer (see --help for the known keys)"
                )
            if not _varies(key):
                raise BadInput(
                    f"--population.arms: arm '{arm}' sets {key}, which members of one "
                    f"population cannot differ in ({ALLOWED}); start a separate "
                    "population for it"
                )
        try:
            member = config.update(values)
        except (KeyError, ValueError, TypeError) as e:
            raise BadInput(f"--population.arms: arm '{arm}': {validate.clip(_message(e), 200)}")
        try:
            configs.check(member)  # the checks of a solo config: finite numbers, ranges, the task
        except BadInput as e:
            raise BadInput(f"--population.arms: arm '{arm}': {e}")
        for seed in seeds:
            logdir = pattern.replace("{seed}", str(seed)).replace("{arm}", arm)
            members.append(
                member.update(
                    {
                        "seed": seed,
                        "logdir": logdir,
                        "method": arm or member.method,
                        "population.seeds": "",
                        "population.arms": "",
                    }
                )
            )
    check_members(members)
    return members


def check_members(members):
    """Refuse members that one process cannot train together (one line)."""
    logdirs = [os.path.normpath(m.logdir) for m in members]
    if len(set(logdirs)) != len(logdirs):
        raise BadInput("population: two members would share one --logdir; put {seed} and {arm} in it")
    base = members[0]
    if int(base.run.env_threads) < 0:
        raise BadInput(f"--run.env_threads {base.run.env_threads}: expected 0 (one per CPU core) or a positive count")
    if base.script != "train":
        raise BadInput(
            f"population: --script {base.script} is not supported; a population "
            "runs --script train (evaluate members one by one with eval_only)"
        )
    if base.run.from_checkpoint:
        raise BadInput(
            "population: --run.from_checkpoint is not supported (each member "
            "resumes from its own run dir when the command is run again)"
        )
    devices = list(base.jax.train_devices)
    if devices != list(base.jax.policy_devices):
        raise BadInput(
            "population: give one and the same --jax.train_devices and "
            "--jax.policy_devices (the members act and train on one mesh)"
        )
    if len(members) % len(devices):
        raise BadInput(
            f"population: {len(members)} members do not divide evenly over the "
            f"{len(devices)} devices of --jax.train_devices; use a multiple of "
            f"{len(devices)} members or fewer devices"
        )
    for member in members:
        problem = settings.validate(member.agent.imag_adapt) or shift.check_config(member)
        if problem:
            raise BadInput(f"population member {member.logdir}: {problem}")
    for member in members[1:]:
        differ = [k for k, v in base.flat.items() if not _varies(k) and member.flat.get(k) != v]
        if differ:
            key = differ[0]
            raise BadInput(
                f"population: members {base.logdir} and {member.logdir} differ in {key} "
                f"({base.flat[key]!r} vs {member.flat.get(key)!r}); members of one population "
                f"may differ only in {ALLOWED}: start a separate population for each value"
            )


def _varies(key):
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in VARYING)


def _message(error):
    return str(error.args[0]) if getattr(error, "args", None) else repr(error)
