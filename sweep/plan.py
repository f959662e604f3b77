"""A sweep expanded into runs and the processes (jobs) that make them.

Layout under the sweep's root (every run dir an ordinary trainer run dir):

    <root>/<task>_<arm>/seed<k>/              the run (--logdir; no timestamp, so a second
                                              start resumes from its ckpt/)
    <root>/logs/<task>_<arm>_seed<k>.log      its terminal output, each start headed by a
                                              line 'commit <sha>: python dreamerv3/main.py ...'
    <root>/.sweep/done/<task>_<arm>/seed<k>.json   written after the trainer exited 0: the
                                              flags it ran with; a run is finished when this
                                              names the flags the sweep would run now

A job is one trainer process: one run (`solo_jobs`), or with `population: true` the runs
that one population process can train together (`population_jobs`: members of one task
that differ only in values a population may vary, dreamerv3/population.py), started as

    python dreamerv3/main.py --logdir <root>/<task>_{arm}/seed{seed} ... \
      --population.seeds 0,1,2 --population.arms <root>/.sweep/population/<name>.yaml

so that each member still writes its ordinary run dir, marker and (shared) log.
"""

import dataclasses
import fnmatch
import hashlib
import io
import json
import os

import ruamel.yaml

from dreamerv3 import configs as configlib
from dreamerv3 import errors, population, safefile
from sweep.spec import SweepError

# Trainer flags members of one population may differ in (with the sweep's own per-run ones).
VARYING = population.VARYING
PER_RUN = ("--seed", "--method")  # set per member by the population itself


@dataclasses.dataclass(frozen=True)
class Run:
    task: str  # folder label
    arm: str
    seed: int
    logdir: str  # <root>/<task>_<arm>/seed<k>
    flags: tuple  # trainer flags without --logdir
    log: str
    marker: str

    @property
    def name(self):
        return f"{self.task}_{self.arm}/seed{self.seed}"

    @property
    def argv(self):
        return ("--logdir", self.logdir) + self.flags


@dataclasses.dataclass(frozen=True)
class Job:
    """One trainer process: what execute.py needs, in plain values (it is pickled for SLURM)."""

    name: str
    runs: tuple  # the Runs this process makes
    argv: tuple  # the trainer's flags
    log: str
    env: tuple  # (name, value) pairs set for the process
    time_limit: float  # seconds, 0 = none
    cwd: str  # where the process starts (relative logdirs are relative to it)
    code: str  # folder holding the dreamerv3 package that runs
    commit: str  # what the log header names


def value_text(value):
    """A YAML value as the trainer's flag parser reads it."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list):
        return "[" + ",".join(value_text(v) for v in value) + "]"
    return str(value)


def flag_args(flags):
    return tuple(a for key, value in flags.items() for a in (f"--{key}", value_text(value)))


def runs(sweep, root=None):
    """Every run of the sweep, task by task, arm by arm, seed by seed; each arm's command
    checked by the trainer's own parser (SweepError names the line of the file)."""
    root = root or sweep.root
    budget = {}
    if sweep.steps:
        budget["run.steps"] = sweep.steps
    if sweep.duration:
        budget["run.duration"] = sweep.duration
    out = []
    for label, task in sweep.tasks.items():
        for arm, spec in sweep.arms.items():
            presets = sweep.configs + spec["configs"]
            flags = (
                (("--configs", *presets) if presets else ())
                + ("--task", task, "--method", arm)
                + flag_args(budget)
                + flag_args(sweep.flags)
                + flag_args(spec["flags"])
            )
            _check(sweep, label, arm, flags)
            for seed in sweep.seeds:
                folder = f"{label}_{arm}"
                out.append(
                    Run(
                        task=label,
                        arm=arm,
                        seed=seed,
                        logdir=os.path.join(root, folder, f"seed{seed}"),
                        flags=flags + ("--seed", str(seed)),
                        log=os.path.join(root, "logs", f"{folder}_seed{seed}.log"),
                        marker=os.path.join(root, ".sweep", "done", folder, f"seed{seed}.json"),
                    )
                )
    return out


def _check(sweep, label, arm, flags):
    """The trainer's parser on this arm's flags; a bad value is blamed on the line that set it."""
    try:
        configlib.parse(("--logdir", "x") + flags)
    except errors.BadInput as e:
        spec = sweep.arms[arm]
        own = any(k in str(e) for k in spec["flags"]) or any(p in str(e) for p in spec["configs"])
        key = f"arms.{arm}" if own else ("tasks" if label in str(e) or sweep.tasks[label] in str(e) else "flags")
        line = sweep.lines.get(key) or sweep.lines.get("flags") or sweep.lines.get("arms")
        where = f", line {line}" if line else ""
        raise SweepError(f"{sweep.path}{where}: task {label}, arm {arm}: {e}")


def is_finished(run):
    """True when the marker of a clean exit names the flags this run would start with now."""
    raw = safefile.read_small(run.marker)  # a link, FIFO or huge file there is no marker
    try:
        done = json.loads(raw) if raw is not None else None
    except ValueError:
        return False
    return isinstance(done, dict) and done.get("flags") == list(run.flags)


def has_checkpoint(run):
    """A start of this run resumes (the trainer restores <logdir>/ckpt when it holds one)."""
    return os.path.isfile(os.path.join(run.logdir, "ckpt", "latest"))


def solo_jobs(runs, env, time_limit, cwd, code, commit):
    """One process per run."""
    return [
        Job(
            name=r.name,
            runs=(r,),
            argv=r.argv,
            log=r.log,
            env=tuple(sorted(env.items())),
            time_limit=time_limit,
            cwd=cwd,
            code=code,
            commit=commit,
        )
        for r in runs
    ]


def _varies(key):
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in VARYING)


def population_jobs(runs, root, env, time_limit, cwd, code, commit, seeds_per_job=0):
    """One population process per group of runs (`groups`) whose arms share one seed list,
    split into processes of at most `seeds_per_job` seeds each (0: one process) so that one
    machine's cores step the members' envs side by side. Writes each population's arms file
    under <root>/.sweep/population/."""
    jobs = []
    for group in groups(runs):
        seeds_of = {}
        for run in group:
            seeds_of.setdefault(run.arm, []).append(run.seed)
        by_seeds = {}
        for arm, seeds in seeds_of.items():
            by_seeds.setdefault(tuple(seeds), []).append(arm)
        for seeds, arms in by_seeds.items():
            size = seeds_per_job or len(seeds)
            for start in range(0, len(seeds), size):
                chunk = seeds[start : start + size]
                members = [r for r in group if r.arm in arms and r.seed in chunk]
                jobs.append(_population_job(members, arms, chunk, root, env, time_limit, cwd, code, commit))
    return jobs


def population_prefix(task):
    """How the names of a task's population processes (their logs, arms files) begin."""
    return f"{task}_population_"


def _population_job(members, arms, seeds, root, env, time_limit, cwd, code, commit):
    task = members[0].task
    first = {arm: next(r for r in members if r.arm == arm) for arm in arms}
    resolved = {arm: configlib.parse(run.argv).flat for arm, run in first.items()}
    varying = sorted(
        k
        for k in resolved[arms[0]]
        if _varies(k)
        and k not in ("seed", "logdir", "method")
        and not k.startswith("population.")
        and len({repr(resolved[a].get(k)) for a in arms}) > 1
    )
    values = {arm: {k: resolved[arm][k] for k in varying} for arm in arms}
    key = hashlib.sha256(
        json.dumps([task, seeds, values, first[arms[0]].flags], sort_keys=True, default=str).encode()
    ).hexdigest()[:10]
    name = population_prefix(task) + key
    arms_file = os.path.join(root, ".sweep", "population", f"{name}.yaml")
    os.makedirs(os.path.dirname(arms_file), exist_ok=True)
    text = io.StringIO()
    ruamel.yaml.YAML(typ="safe", pure=True).dump(values, text)
    safefile.write_replace(arms_file, text.getvalue().encode())
    flags, args = [], list(first[arms[0]].flags)
    while args:
        flag = args.pop(0)
        if flag in PER_RUN:
            args.pop(0)
        else:
            flags.append(flag)
    argv = (
        "--logdir",
        os.path.join(root, f"{task}_{{arm}}", "seed{seed}"),
        *flags,
        "--population.seeds",
        ",".join(map(str, seeds)),
        "--population.arms",
        arms_file,
    )
    return Job(
        name=name,
        runs=tuple(members),
        argv=argv,
        log=os.path.join(root, "logs", f"{name}.log"),
        env=tuple(sorted(env.items())),
        time_limit=time_limit,
        cwd=cwd,
        code=code,
        commit=commit,
    )


def groups(runs):
    """Runs that one population process could train together: [[Run]], in sweep order. Two
    runs belong together when their task is the same and their resolved configs agree on
    every key outside VARYING (so presets, sizes, imag_length, the schedule)."""
    keys, out = {}, {}
    for run in runs:
        if (run.task, run.arm) not in keys:
            flat = configlib.parse(run.argv).flat
            keys[(run.task, run.arm)] = (
                run.task,
                tuple(sorted((k, repr(v)) for k, v in flat.items() if not _varies(k))),
            )
        out.setdefault(keys[(run.task, run.arm)], []).append(run)
    return list(out.values())
