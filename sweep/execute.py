"""One trainer process of a sweep: started, logged, timed, and marked when it exits 0.

The same code runs a job on every backend: the local pool calls `start` and polls, a
SLURM array task calls `run_job` (which blocks). The log is appended to, so a resumed
run keeps the output of its earlier starts; each start writes its header line first:

    commit 1a2b3c4: python dreamerv3/main.py --logdir ... (resume from its checkpoint)
"""

import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import time

from dreamerv3 import safefile
from sweep import plan
from sweep.spec import SweepError

KILL_GRACE = 10  # seconds between SIGTERM and SIGKILL when a run overstays its time limit


@dataclasses.dataclass(frozen=True)
class Result:
    name: str
    status: str  # ok | failed | timed out | skipped | not started
    code: int | None  # the process's exit code (None: it did not exit by itself)
    seconds: float
    resumed: bool
    log: str


def header(job, resumed):
    """The first line of a start in the log: the commit and the command, without machine paths."""
    command = shlex.join(("python", "dreamerv3/main.py") + tuple(job.argv))
    return f"commit {job.commit}: {command}" + (" (resume from its checkpoint)" if resumed else "")


def environment(job):
    env = dict(os.environ)
    env.update(dict(job.env))
    env["PYTHONPATH"] = job.code + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    if os.path.exists(os.path.join(job.code, ".complete")):  # pinned code (sweep/code.py), checked
        # file by file against its commit: no bytecode cache may appear beside it
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class Process:
    """A started job; `poll()` is None while it runs, then its Result."""

    def __init__(self, job):
        self.job = job
        self.resumed = any(plan.has_checkpoint(r) for r in job.runs)
        os.makedirs(os.path.dirname(job.log) or ".", exist_ok=True)
        try:  # appended to, never through a link planted at the log's path
            self._log = safefile.open_append(job.log)
        except OSError as e:
            raise SweepError(
                f"{job.log}: cannot append to the log ({e.strerror or e}); a link or "
                "another kind of file there is refused"
            )
        self._log.write((header(job, self.resumed) + "\n").encode())
        self._log.flush()
        self.started = time.time()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(job.code, "dreamerv3", "main.py"), *job.argv],
            cwd=job.cwd,
            env=environment(job),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.timed_out = False

    def poll(self):
        code = self.proc.poll()
        elapsed = time.time() - self.started
        if code is None and self.job.time_limit and elapsed > self.job.time_limit:
            self.timed_out = True
            self.stop()
            code = self.proc.returncode
        if code is None:
            return None
        self._log.close()
        return self._finish(code, elapsed)

    def stop(self):
        """SIGTERM to the process group, SIGKILL after KILL_GRACE seconds."""
        for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue

    def _finish(self, code, elapsed):
        if self.timed_out:
            status = "timed out"
            safefile.append(
                self.job.log, f"sweep: stopped after the time limit of {self.job.time_limit:g} s\n".encode()
            )
        else:
            status = "ok" if code == 0 else "failed"
        if status == "ok":
            for run in self.job.runs:
                mark_finished(run, self.job.commit, elapsed)
        return Result(self.job.name, status, None if self.timed_out else code, elapsed, self.resumed, self.job.log)


def mark_finished(run, commit, seconds):
    os.makedirs(os.path.dirname(run.marker), exist_ok=True)
    safefile.write_replace(
        run.marker,
        json.dumps(  # a link planted there is replaced, not followed
            {
                "flags": list(run.flags),
                "logdir": run.logdir,
                "commit": commit,
                "seconds": round(seconds, 1),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=1,
        ).encode(),
    )


def run_job(job, poll=1.0):
    """Start `job` and wait for it (the body of a SLURM array task)."""
    process = Process(job)
    try:
        while (result := process.poll()) is None:
            time.sleep(poll)
    except BaseException:
        process.stop()
        raise
    return result
