"""The SLURM backend: the sweep's jobs as one job array, submitted with submitit.

Each array task runs one job with execute.run_job (its log, time limit and marker as on
the local backend), on the resources the sweep file names (backend.slurm). submitit keeps
its own files (the pickled job, stdout/stderr of each task) in <root>/.sweep/slurm/.
`wait` polls for the results; a task that ended without one (killed by SLURM at its time
limit, a node lost) is reported as such once it has left the queue. submitted.json there
records which array task makes which run, so a second call does not submit a run again
while its task is still queued or running (`busy`).
"""

import json
import math
import os
import subprocess
import time

from dreamerv3 import safefile, validate
from sweep import execute
from sweep.spec import SweepError

GONE_GRACE = 30  # seconds a task may be out of the queue before its result file appears


def executor(settings, folder, time_limit):
    """A submitit executor for `settings` (spec.Slurm); SLURM's time limit in whole minutes:
    time_limit_min, else the run's time limit plus a minute of start-up, else 60."""
    import submitit  # here, not at the top: the local backend runs where submitit is not installed

    minutes = settings.time_limit_min or (math.ceil(time_limit / 60) + 1 if time_limit else 60)
    ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=0)
    params = {
        "time": minutes,
        "cpus_per_task": settings.cpus_per_job,
        "ntasks_per_node": 1,
        "array_parallelism": settings.array_parallelism,
        "job_name": "dreamer-sweep",
    }
    if settings.partition:
        params["partition"] = settings.partition
    if settings.gpus_per_job:
        params["gpus_per_node"] = settings.gpus_per_job
    if settings.mem_gb:
        params["mem"] = f"{max(1, round(settings.mem_gb * 1024))}M"
    for key, value in params.items():  # each becomes a '#SBATCH --key=value' line of the job script
        if isinstance(value, str) and validate.CONTROL.search(value):
            raise SweepError(
                f"backend.slurm {key} {validate.show(value)}: control characters would break the job script"
            )
    ex.update_parameters(**params)
    return ex


def submit(jobs, settings, folder):
    """One array of len(jobs) tasks; returns the submitit Jobs in order."""
    if not jobs:
        return []
    import submitit

    os.makedirs(folder, exist_ok=True)
    ex = executor(settings, folder, max(job.time_limit for job in jobs))
    try:
        submitted = ex.map_array(execute.run_job, jobs)
    except (subprocess.CalledProcessError, OSError, submitit.core.utils.FailedJobError) as e:
        detail = getattr(e, "stderr", None) or getattr(e, "output", None) or e
        if isinstance(detail, bytes):
            detail = detail.decode(errors="replace")
        raise SubmitError(" ".join(str(detail).split())[:300]) from None
    record = _record(folder)
    record.update({run.name: task.job_id for job, task in zip(jobs, submitted) for run in job.runs})
    safefile.write_replace(os.path.join(folder, "submitted.json"), json.dumps(record, indent=1).encode())
    return submitted


def _record(folder):
    raw = safefile.read_small(os.path.join(folder, "submitted.json"))
    try:
        record = json.loads(raw) if raw is not None else {}
    except ValueError:
        return {}
    if not isinstance(record, dict):
        return {}
    return {k: v for k, v in record.items() if isinstance(k, str) and isinstance(v, str)}


def busy(folder):
    """Names of the runs whose array task from an earlier call is still queued or running."""
    record = _record(folder)
    if not record:
        return set()
    in_queue = queued(list(record.values()))
    return {name for name, job_id in record.items() if job_id in in_queue}


class SubmitError(Exception):
    """sbatch refused the array (bad partition, too many GPUs, ...): one line."""


def queued(job_ids):
    """The ids among `job_ids` that squeue still lists (pending or running)."""
    if not job_ids:
        return set()
    ids = ",".join(sorted({j.split("_")[0] for j in job_ids}))
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-o", "%i", "-j", ids], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SweepError(
            f"squeue (to see which jobs {ids[:60]} are still queued) failed: "
            f"{getattr(e, 'strerror', None) or e}; the same command resumes later"
        )
    return set(out.stdout.split()) if out.returncode == 0 else set(job_ids)


def wait(submitted, jobs, poll=1.0, on_result=None):
    """Block until every task has a result or has left the queue without one."""
    results, gone = {}, {}
    while len(results) < len(submitted):
        time.sleep(poll)
        pending = [i for i in range(len(submitted)) if i not in results]
        in_queue = queued([submitted[i].job_id for i in pending])
        for i in pending:
            task = submitted[i]
            if task.paths.result_pickle.exists():  # not task.done(): that polls sacct
                results[i] = _outcome(task, jobs[i])
            elif task.job_id not in in_queue:
                gone.setdefault(i, time.time())
                if time.time() - gone[i] > GONE_GRACE:
                    results[i] = execute.Result(jobs[i].name, "failed", None, 0.0, False, jobs[i].log)
            else:
                continue
            if i in results and on_result:
                on_result(results[i], task.job_id)
    return [results[i] for i in range(len(submitted))]


def _outcome(task, job):
    try:
        return task.result()
    except Exception:  # submitit re-raises what failed in the task (or that it has no result)
        return execute.Result(job.name, "failed", None, 0.0, False, job.log)
