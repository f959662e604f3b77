"""dreamer-sweep: run a sweep file (tasks x arms x seeds of the trainer) locally or on SLURM.

    dreamer-sweep run studies/shift_cartpole/sweep.yaml                  # local pool
    dreamer-sweep run studies/shift_cartpole/sweep.yaml --backend slurm  # one SLURM job array
    dreamer-sweep run studies/shift_cartpole/sweep.yaml --dry-run        # the commands, none run
    dreamer-sweep pack studies/shift_cartpole/sweep.yaml --out runs.tgz  # run dirs without ckpt/
    dreamer-sweep pack studies/shift_cartpole/sweep.yaml --out small.tgz --gzip-logs --scope best

docs/sweeps.md describes the file. This module parses options and prints; the work lives
in sweep/launch.py. Exit codes: 0 every run finished, 1 a run failed, 2 bad input.
"""

import os
import signal
import sys

import typer

from dreamerv3 import safefile
from sweep import launch, pack, summary
from sweep.spec import SweepError

app = typer.Typer(help=__doc__.splitlines()[0].split(": ", 1)[1], no_args_is_help=True, add_completion=False)

SWEEP = typer.Argument(..., help="The sweep file (YAML, docs/sweeps.md).")
ROOT = typer.Option(None, "--root", help="Where the run dirs go (default: the file's root:).")
SET = typer.Option(
    [],
    "--set",
    help="Override a value of the file, KEY=VALUE with VALUE in "
    "YAML, e.g. --set budget.steps=40 --set flags.jax.platform=cuda "
    "--set seeds=[0]. Repeatable.",
)
ARMS = typer.Option(None, "--arms", help="Only these arms, comma-separated.")


def _fail(message):
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _prepare(path, overrides, root, arms, commit=None, population=None):
    try:
        return launch.prepare(
            path,
            overrides,
            root=root,
            commit=commit,
            population=population,
            arms=[a for a in arms.split(",") if a] if arms else None,
        )
    except SweepError as e:
        _fail(e)


@app.command("run")
def run_cli(
    path: str = SWEEP,
    root: str = ROOT,
    overrides: list[str] = SET,
    arms: str = ARMS,
    backend: str = typer.Option(
        "local", "--backend", help="local (a process pool) or slurm (one job array through submitit)."
    ),
    jobs: int = typer.Option(
        0, "--jobs", min=0, help="Local pool size (default: the file's backend.local.jobs, else the cores)."
    ),
    commit: str = typer.Option(
        None,
        "--commit",
        help="Run the trainer code of this commit (exported with git archive), not the checkout as it is.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print each run and its command; run none."),
    no_wait: bool = typer.Option(False, "--no-wait", help="slurm: submit and return."),
    population: bool = typer.Option(
        None,
        "--population/--solo",
        help="Train the runs that "
        "differ only in seed, lr, imag_adapt.* or the env shift "
        "in one population process per task and shape (default: "
        "the file's population:).",
    ),
):
    """Make every run of the sweep not finished yet; resume the ones with a checkpoint."""
    if backend not in ("local", "slurm"):
        _fail(f"--backend {backend}: expected local or slurm")
    prepared = _prepare(path, overrides, root, arms, None if dry_run else commit, population)
    if dry_run:
        for line in launch.dry_run(prepared):
            typer.echo(line)
        return
    typer.echo(
        f"sweep: {len(prepared.runs)} runs, {len(prepared.runs) - len(prepared.todo)} "
        f"finished, {len(prepared.todo)} to make in {len(prepared.jobs)} processes on {backend}"
        + (f" (commit {prepared.jobs[0].commit})" if prepared.jobs else "")
    )
    # SIGTERM (kill, a scheduler) stops the running trainers too; their runs resume next time.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        results = launch.run(prepared, backend, workers=jobs or None, wait=not no_wait, out=sys.stdout)
    except SweepError as e:
        _fail(e)
    except KeyboardInterrupt:
        typer.echo("sweep: interrupted; the same command resumes the unfinished runs", err=True)
        raise typer.Exit(code=130)
    if no_wait:
        typer.echo(
            f"sweep: submitted SLURM job {', '.join(sorted(set(j.split('_')[0] for j in results)))}; "
            "run the same command again later: it skips what is finished"
        )
        return
    lines, code = summary.report(prepared, results)
    typer.echo("\n".join(lines))
    raise typer.Exit(code=code)


@app.command("pack")
def pack_cli(
    path: str = SWEEP,
    out: str = typer.Option(..., "--out", help="The .tgz to write: a local path, or s3://, gs://, az://."),
    root: str = ROOT,
    overrides: list[str] = SET,
    arms: str = ARMS,
    gzip_logs: bool = typer.Option(
        False,
        "--gzip-logs",
        help="Store metrics.jsonl and scores.jsonl gzipped (.jsonl.gz; dreamer-report reads them).",
    ),
    scope: str = typer.Option(
        "all",
        "--scope",
        help="Which runs keep scope/: all, best (the best seed of each task and arm by final score) or none.",
    ),
):
    """Pack the sweep's run dirs (no ckpt/ or replay/) and logs into one .tgz."""
    if scope not in pack.SCOPES:
        _fail(f"--scope {scope}: expected one of {', '.join(pack.SCOPES)}")
    prepared = _prepare(path, overrides, root, arms)
    keep, best = None, {}
    try:
        if scope == "best":
            best = pack.best_seeds(prepared.runs)
            keep = {logdir for logdir in best.values() if logdir}
        elif scope == "none":
            keep = set()
        count = pack.pack(prepared.runs, prepared.root, out, gzip_logs=gzip_logs, keep_scope=keep, sources=[path])
    except (SweepError, safefile.UnsafeTarget) as e:
        _fail(e)
    except OSError as e:
        _fail(f"--out {out}: cannot write it ({e.strerror or e})")
    for (task, arm), logdir in sorted(best.items()):
        typer.echo(
            f"scope/ of {task}_{arm}: "
            + (os.path.relpath(logdir, prepared.root) if logdir else "no run has episode scores; none kept")
        )
    typer.echo(f"packed {count} run dirs into {out}")


if __name__ == "__main__":
    app()
