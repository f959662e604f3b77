"""The local backend: a pool of trainer processes on this machine, `workers` at a time.

Each job gets its own log and time limit (execute.py); a job that fails does not stop
the others. Ctrl-C (or SIGTERM to the sweep) stops every running job, whose runs resume
from their checkpoints when the sweep is started again.
"""

import os
import sys
import time

from sweep import execute


def default_workers():
    """The machine's cores (those this process may use)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_pool(jobs, workers, on_tick=None, poll=0.5, out=sys.stdout):
    """Run `jobs`, at most `workers` at once; returns their Results in job order.
    on_tick(running): called every `poll` seconds with {job name: execute.Process}."""
    waiting, running, results = list(jobs), {}, {}
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                job = waiting.pop(0)
                running[job.name] = execute.Process(job)
                print(f"start {job.name}" + (" (resume)" if running[job.name].resumed else ""), file=out, flush=True)
            time.sleep(poll)
            if on_tick:
                on_tick(dict(running))
            for name, process in list(running.items()):
                result = process.poll()
                if result is not None:
                    del running[name]
                    results[name] = result
                    print(f"{result.status} {name} ({result.seconds:.0f} s)", file=out, flush=True)
    except BaseException:
        for process in running.values():
            process.stop()
        raise
    return [results[job.name] for job in jobs]
