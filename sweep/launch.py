"""A sweep from file to finished runs: plan, skip what is finished, run the rest on a backend.

    from sweep import launch
    plan = launch.prepare('studies/shift_cartpole/sweep.yaml', overrides=['budget.steps=40'])
    results = launch.run(plan, backend='local')

Finished runs (plan.is_finished) are skipped; every other run is started, and one whose
run dir holds a checkpoint resumes from it (the trainer's own resume). With population
(the file's `population: true` or population=True here) the runs to make are grouped into
population processes (plan.population_jobs); each run still gets its own Result.
"""

import dataclasses
import os
import shlex

from dreamerv3 import runlock
from sweep import code, execute, local, plan, slurm, spec
from sweep.spec import SweepError


@dataclasses.dataclass(frozen=True)
class Prepared:
    sweep: spec.Sweep
    root: str
    runs: list  # every run of the sweep (after --arms), in order
    todo: list  # the runs still to make
    jobs: list  # the processes that make them


def prepare(path, overrides=(), root=None, arms=None, commit=None, cwd=None, population=None):
    """Read, check and expand a sweep; SweepError (one line) for anything wrong.
    root: overrides the file's; arms: run only these; commit: run the code of this commit;
    population: True/False overrides the file's `population:`."""
    sweep = spec.load(path, overrides)
    root = root or sweep.root
    if arms:
        unknown = [a for a in arms if a not in sweep.arms]
        if unknown:
            raise SweepError(f"--arms: no arm '{unknown[0]}' in {path} (arms: {', '.join(sweep.arms)})")
    runs = [r for r in plan.runs(sweep, root) if not arms or r.arm in arms]
    todo = [r for r in runs if not plan.is_finished(r)]
    if commit:
        folder, sha = code.pinned(commit, root) if todo else ("", commit)
    else:
        folder, sha = str(code.REPO), code.tree_commit()
    grouped = sweep.population if population is None else population
    if todo and grouped:
        writable(root)
    where = (sweep.env, sweep.time_limit, os.path.abspath(cwd or os.getcwd()), folder, sha)
    jobs = (
        plan.population_jobs(todo, root, *where, seeds_per_job=sweep.population_seeds)
        if grouped
        else plan.solo_jobs(todo, *where)
    )
    return Prepared(sweep, root, runs, todo, jobs)


def writable(root):
    """SweepError (one line) unless the sweep can write under `root`."""
    try:
        os.makedirs(os.path.join(root, ".sweep"), exist_ok=True)
        os.makedirs(os.path.join(root, "logs"), exist_ok=True)
    except OSError as e:
        raise SweepError(f"root {root}: cannot write there ({e.strerror or e})")


def dry_run(prepared):
    """One line per finished run and per process to start: its state and its command."""
    lines = [f"finished {run.name}" for run in prepared.runs if run not in prepared.todo]
    for job in prepared.jobs:
        state = "resume" if any(plan.has_checkpoint(r) for r in job.runs) else "start"
        lines.append(f"{state:8s} " + shlex.join(("python", "dreamerv3/main.py") + job.argv))
    return lines


def run(prepared, backend="local", workers=None, on_tick=None, out=None, wait=True):
    """Make the runs still to make; returns one Result per run of the sweep (finished ones
    'skipped', ones an earlier call's SLURM task still makes 'in queue'), or the submitted
    SLURM job ids when wait is False."""
    skipped = {
        r.name: execute.Result(r.name, "skipped", 0, 0.0, False, r.log) for r in prepared.runs if r not in prepared.todo
    }
    if prepared.todo:
        writable(prepared.root)
        busy = runlock.claim(prepared.root, "root")  # a second sweep on this root refuses
        if busy:
            raise SweepError(busy)
    if backend == "local":
        workers = workers or prepared.sweep.jobs or local.default_workers()
        kwargs = {"out": out} if out else {}
        made = local.run_pool(prepared.jobs, workers, on_tick=on_tick, **kwargs)
        jobs = prepared.jobs
    elif backend == "slurm":
        folder = os.path.join(prepared.root, ".sweep", "slurm")
        running = slurm.busy(folder)
        jobs = [j for j in prepared.jobs if not any(r.name in running for r in j.runs)]
        skipped.update(
            {
                r.name: execute.Result(r.name, "in queue", None, 0.0, False, r.log)
                for j in prepared.jobs
                if j not in jobs
                for r in j.runs
            }
        )
        try:
            submitted = slurm.submit(jobs, prepared.sweep.slurm, folder)
        except slurm.SubmitError as e:
            raise SweepError(f"sbatch refused the sweep: {e}")
        if not wait:
            return [s.job_id for s in submitted]
        made = slurm.wait(submitted, jobs)
    else:
        raise SweepError(f"--backend {backend}: expected local or slurm")
    by_name = dict(skipped)
    for job, result in zip(jobs, made):
        for run in job.runs:
            by_name[run.name] = dataclasses.replace(result, name=run.name)
    return [by_name[r.name] for r in prepared.runs]
