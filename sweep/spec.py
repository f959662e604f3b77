"""The sweep file: tasks x arms x seeds of the trainer, read and checked (docs/sweeps.md).

    tasks: {shift_cartpole: gym_CartPole-v1}   # folder label -> trainer task (or a list of tasks)
    configs: [cartpole, size1m]                # --configs presets of every run
    flags: {env.gym.shift.step: 9500}          # trainer flags of every run (dotted names)
    arms:                                      # arm -> its own flags (and `configs` presets)
      baseline: {agent.imag_adapt.enabled: false}
      adapt: {agent.imag_adapt.enabled: true}
    seeds: [0, 1, 2]                           # or '0-4', '0-2,7'
    budget: {steps: 13000, duration: 0, time_limit: 3600}
    env: {XLA_PYTHON_CLIENT_PREALLOCATE: 'false'}
    root: artifacts                            # where the run dirs go
    population: false                          # true: one process per (task, shape)
    population_seeds: 0                        # at most N seeds per population process (0 = all)
    backend:
      local: {jobs: auto}
      slurm: {partition: gpu, gpus_per_job: 1, cpus_per_job: 4, time_limit_min: 70}

`load(path, overrides)` returns a `Sweep`; anything wrong raises SweepError with one line
naming the file, the line and what was expected. The trainer's own checks of every flag
run later, in plan.py, where each run's command line exists.
"""

import dataclasses
import re

from ruamel.yaml.comments import CommentedMap

from dreamerv3 import remotepath, validate

ENV_NAME = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]*\Z")
PARTITION = re.compile(r"\A[A-Za-z0-9_.,-]+\Z")  # one SLURM partition or a comma list
TOP = (
    "tasks",
    "configs",
    "flags",
    "arms",
    "seeds",
    "budget",
    "env",
    "root",
    "backend",
    "population",
    "population_seeds",
)
# Set by the sweep for each run: a sweep file may not set them itself.
OWNED = {
    "logdir": "the sweep sets it: <root>/<task>_<arm>/seed<k>",
    "seed": "use seeds:",
    "task": "use tasks:",
    "method": "the sweep sets it to the arm name",
    "run.steps": "use budget.steps",
    "run.duration": "use budget.duration",
    "configs": "use configs: (or an arm's configs:)",
}
MAX_RUNS = 100_000
# Upper bounds of the SLURM settings (far above any cluster's, below sbatch's overflows).
SLURM_MAX = {
    "gpus_per_job": 64,
    "cpus_per_job": 4096,
    "mem_gb": 100_000,
    "time_limit_min": 60 * 24 * 366,
    "array_parallelism": 100_000,
}


class SweepError(Exception):
    """A bad sweep file or option: one line for the user (exit code 2)."""


@dataclasses.dataclass(frozen=True)
class Slurm:
    partition: str = ""
    gpus_per_job: int = 0
    cpus_per_job: int = 1
    mem_gb: float = 0.0  # 0 = the partition's default
    time_limit_min: int = 0  # 0 = from budget.time_limit (else 60)
    array_parallelism: int = 256


@dataclasses.dataclass(frozen=True)
class Sweep:
    path: str
    tasks: dict  # folder label -> trainer task
    configs: tuple  # presets of every run
    flags: dict  # dotted flag -> value, every run
    arms: dict  # arm -> {'configs': tuple, 'flags': {dotted flag: value}}
    seeds: tuple
    steps: int  # run.steps (0 = the presets' value)
    duration: float  # run.duration, seconds (0 = none): the trainer stops itself
    time_limit: float  # seconds a run may take before the backend kills it (0 = none)
    env: dict  # environment variables of every run
    root: str
    jobs: int  # local pool size (0 = the machine's cores)
    population: bool  # runs that can share one population process do
    population_seeds: int  # at most this many seeds per population process (0 = all)
    slurm: Slurm
    lines: dict  # 'arms.<arm>', 'flags', 'tasks', ... -> line (for messages)


def load(path, overrides=()):
    """The sweep file at `path`, with `overrides` ('KEY=VALUE', VALUE in YAML) applied."""
    data = _read(path)
    where = Where(path, data)
    for text in overrides:
        _override(data, text, where)
    unknown = [k for k in data if k not in TOP]
    if unknown:
        name = validate.clip(unknown[0])
        raise SweepError(where(name, f"unknown key '{name}' (known: {', '.join(TOP)})"))
    for key in ("tasks", "arms", "seeds"):
        if key not in data:
            raise SweepError(f"{path}: no {key}: given (a sweep needs tasks, arms and seeds)")
    budget = _mapping(data.get("budget") or {}, "budget", where)
    backend = _mapping(data.get("backend") or {}, "backend", where)
    _known(backend, ("local", "slurm"), "backend", where)
    local = _mapping(backend.get("local") or {}, "backend.local", where)
    _known(local, ("jobs",), "backend.local", where)
    _known(budget, ("steps", "duration", "time_limit"), "budget", where)
    sweep = Sweep(
        path=str(path),
        tasks=_tasks(data["tasks"], where),
        configs=_names(data.get("configs") or [], "configs", where),
        flags=_flags(data.get("flags") or {}, "flags", where),
        arms=_arms(data["arms"], where),
        seeds=_seeds(data["seeds"], where),
        steps=_number(budget.get("steps", 0), "budget.steps", where, whole=True),
        duration=_number(budget.get("duration", 0), "budget.duration", where),
        time_limit=_number(budget.get("time_limit", 0), "budget.time_limit", where),
        env=_env(data.get("env") or {}, where),
        root=_root(data.get("root", "runs"), where),
        jobs=_jobs(local.get("jobs", "auto"), where),
        population=_flag(data.get("population", False), "population", where),
        population_seeds=_number(data.get("population_seeds", 0), "population_seeds", where, whole=True),
        slurm=_slurm(backend.get("slurm") or {}, where),
        lines=where.lines(),
    )
    runs = len(sweep.tasks) * len(sweep.arms) * len(sweep.seeds)
    if runs > MAX_RUNS:
        raise SweepError(f"{path}: {runs} runs; expected at most {MAX_RUNS}")
    return sweep


class Where:
    """'<file>, line N: ' for a dotted position in the file, or '--set KEY: ' for an override."""

    def __init__(self, path, data):
        self.path, self.data, self.overridden = str(path), data, set()

    def __call__(self, position, message):
        return f"{self.prefix(position)}: {message}"

    def prefix(self, position):
        parts = tuple(position) if isinstance(position, tuple) else split(position)
        for i in range(len(parts), 0, -1):
            if parts[:i] in self.overridden:
                return f"--set {'.'.join(parts[:i])}"
        line = self.line(parts)
        return f"{self.path}, line {line}" if line else self.path

    def line(self, parts):
        node, line = self.data, None
        for part in parts:
            if not isinstance(node, CommentedMap) or part not in node:
                break
            try:
                line = node.lc.key(part)[0] + 1
            except (KeyError, TypeError):  # a key an override added has no position in the file
                break
            node = node[part]
        return line

    def lines(self):
        out = {key: self.line([key]) for key in TOP}
        for arm in (self.data.get("arms") or {}) if isinstance(self.data.get("arms"), dict) else {}:
            out[f"arms.{arm}"] = self.line(["arms", arm])
        return out


def split(key):
    """A dotted position -> its parts; a flag name (after flags., env. or arms.<arm>.) is one part."""
    head = key.split(".", 1)[0]
    if head in ("flags", "env"):
        return tuple(key.split(".", 1))
    if head == "arms":
        return tuple(key.split(".", 2))
    return tuple(key.split("."))


def _read(path):
    try:
        raw = validate.read_bounded(path)  # a FIFO or a device: one line, never a read that blocks
    except OSError as e:
        raise SweepError(f"{path}: cannot read it ({e.strerror or e})")
    try:
        data = validate.load_yaml(raw, str(path), kind="rt")
    except validate.Invalid as e:
        line = f", line {e.line}" if e.line else ""
        message = str(e).split(": ", 1)[-1]
        raise SweepError(f"{path}{line}: {message} (expected a YAML mapping, see docs/sweeps.md)")
    if not isinstance(data, CommentedMap):
        raise SweepError(f"{path}: expected a YAML mapping with tasks, arms and seeds")
    return data


def _override(data, text, where):
    """Apply one --set KEY=VALUE. KEY is a position: 'flags.run.envs', 'arms.adapt.agent.lr',
    'budget.steps', 'backend.local.jobs', 'configs'; VALUE is read as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SweepError(f"--set {validate.clip(text)}: expected KEY=VALUE, e.g. --set budget.steps=40")
    head = key.split(".", 1)[0]
    if head not in TOP:
        raise SweepError(f"--set {validate.clip(text)}: unknown key '{validate.clip(head)}' (known: {', '.join(TOP)})")
    parts = split(key)
    what = f"--set {validate.clip(key)}"
    try:  # every part taken literally (an arm name or a dotted key), never as a pattern
        for i, part in enumerate(parts):
            (validate.name if head == "arms" and i == 1 else validate.flag_key)(part, f"{what}: key")
        value = validate.load_yaml(value, what)
    except validate.Invalid as e:
        raise SweepError(str(e))
    node = data
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = CommentedMap()
        node = node[part]
    node[parts[-1]] = value
    where.overridden.add(parts)


def _mapping(value, position, where):
    if not isinstance(value, dict):
        raise SweepError(where(position, f"expected a mapping, got {_kind(value)}"))
    return value


def _known(mapping, known, position, where):
    for key in mapping:
        if key not in known:
            raise SweepError(
                where(f"{position}.{key}", f"unknown key '{key}' in {position} (known: {', '.join(known)})")
            )


def _kind(value):
    return "nothing" if value is None else f"{type(value).__name__} {validate.show(value)}"


def _check(position, where, check, *args, **kwargs):
    """validate's `check` on a value; its Invalid becomes a SweepError naming the line."""
    try:
        return check(*args, **kwargs)
    except validate.Invalid as e:
        raise SweepError(where(position, str(e)))


def _text(value, position, where):
    return _check(position, where, validate.text, value, str(position))


def _name(value, position, where, what):
    return _check(position, where, validate.name, value, what)


def _names(value, position, where):
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, list):
        raise SweepError(where(position, f"expected a list of preset names, got {_kind(value)}"))
    return tuple(_name(v, position, where, "preset") for v in value)


def _tasks(value, where):
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        value = {task: task for task in value}
    if not isinstance(value, dict) or not value:
        raise SweepError(
            where(
                "tasks",
                f"expected a list of trainer tasks or a mapping of folder label -> trainer task, got {_kind(value)}",
            )
        )
    return {
        _name(label, "tasks", where, "task label"): _name(task, ("tasks", label), where, "task")
        for label, task in value.items()
    }


def _scalar_ok(value):
    """A number (finite, within 62 bits), true/false, or a text without control characters."""
    try:
        if isinstance(value, str):
            validate.text(value, "value", empty=True)
        elif not isinstance(value, bool):
            validate.number(value, "value")
        return True
    except validate.Invalid:
        return False


def _flags(value, position, where):
    value = _mapping(value, position, where)
    flags = {}
    for key, item in value.items():
        at = (*(position if isinstance(position, tuple) else (position,)), key)
        key = _check(at, where, validate.flag_key, key, "flag")
        if key in OWNED:
            raise SweepError(where(at, f"{key} cannot be set here: {OWNED[key]}"))
        items = item if isinstance(item, list) else [item]
        if not all(_scalar_ok(v) for v in items):
            raise SweepError(
                where(at, f"flag {key}: expected a number, true/false, a text or a list of them, got {_kind(item)}")
            )
        flags[key] = list(item) if isinstance(item, list) else item
    return flags


def _arms(value, where):
    if not isinstance(value, dict) or not value:
        raise SweepError(
            where(
                "arms",
                "expected a mapping of arm name -> {dotted flag: value}, "
                f'e.g. "adapt: {{agent.imag_adapt.enabled: true}}", got {_kind(value)}',
            )
        )
    arms = {}
    for name, flags in value.items():
        _name(name, ("arms", name), where, "arm name")
        flags = dict(flags) if isinstance(flags, dict) else ({} if flags is None else flags)
        configs = (
            _names(flags.pop("configs", []) or [], ("arms", name, "configs"), where) if isinstance(flags, dict) else ()
        )
        arms[name] = {"configs": configs, "flags": _flags(flags, ("arms", name), where)}
    return arms


def _seeds(value, where):
    return tuple(_check("seeds", where, validate.seeds, value, "", MAX_RUNS))


def _number(value, position, where, whole=False, high=None):
    value = _check(position, where, validate.number, value, "", 0, high, whole=whole)
    return int(value) if whole else float(value)


def _env(value, where):
    value = _mapping(value, "env", where)
    env = {}
    for key, item in value.items():
        if not isinstance(key, str) or not ENV_NAME.match(key):
            raise SweepError(
                where(("env", key), f"environment variable {key!r}: expected a name of letters, digits and _")
            )
        if not _scalar_ok(item):
            raise SweepError(
                where(("env", key), f"{key}: expected a text (no control characters) or a number, got {_kind(item)}")
            )
        env[key] = ("true" if item else "false") if isinstance(item, bool) else str(item)
    return env


def _root(value, where):
    """The root folder: a text without control characters or placeholders such as {timestamp}
    (the sweep resumes its runs by their folders, so the root must name one folder)."""
    value = _text(value, "root", where)
    _check("root", where, remotepath.refuse_url, value, "root", validate.Invalid)
    if "{" in value or "}" in value:
        raise SweepError(
            where(
                "root",
                f"{validate.show(value)}: expected a plain folder, without "
                "'{' or '}' (a sweep's root is the same at every call)",
            )
        )
    return value


def _flag(value, position, where):
    if not isinstance(value, bool):
        raise SweepError(where(position, f"expected true or false, got {_kind(value)}"))
    return value


def _jobs(value, where):
    if value in ("auto", 0):
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SweepError(
            where(
                "backend.local.jobs",
                f"expected a whole number >= 1 or 'auto' (the machine's cores), got {_kind(value)}",
            )
        )
    return value


def _slurm(value, where):
    value = _mapping(value, "backend.slurm", where)
    fields = {f.name: f for f in dataclasses.fields(Slurm)}
    _known(value, tuple(fields), "backend.slurm", where)
    out = {}
    for key, item in value.items():
        at = f"backend.slurm.{key}"
        if key == "partition":
            out[key] = "" if item is None else _text(item, at, where)
            if out[key] and not PARTITION.match(out[key]):
                raise SweepError(
                    where(
                        at,
                        f"partition {validate.show(item)}: expected letters, digits, "
                        "'.', '_', '-' or a comma list of them",
                    )
                )
        elif key == "mem_gb":
            out[key] = _number(item, at, where, high=SLURM_MAX[key])
        else:
            out[key] = _number(item, at, where, whole=True, high=SLURM_MAX[key])
            if key in ("cpus_per_job", "array_parallelism") and out[key] < 1:
                raise SweepError(where(at, f"expected a whole number >= 1, got {item!r}"))
    return Slurm(**out)
