"""What a sweep did, for the terminal: one line per run, the totals, and, once every run
is finished, the `dreamer-report compare` command for each task's arms."""

import shlex

from sweep import plan

FAILED = ("failed", "timed out")


def table(results):
    """Lines: status, run, exit code, seconds, log."""
    lines = [f"{'status':10s} {'run':40s} {'exit':>4s} {'seconds':>8s}  log"]
    for r in results:
        code = "-" if r.code is None else str(r.code)
        status = r.status + (" (resumed)" if r.resumed and r.status == "ok" else "")
        lines.append(f"{status:10s} {r.name:40s} {code:>4s} {r.seconds:8.0f}  {r.log}")
    return lines


def totals(results):
    counts = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def compare_commands(runs, root):
    """One `dreamer-report compare` per task, its arms in sweep order (only arms of >= 1 run)."""
    commands, arms = [], {}
    for run in runs:
        arms.setdefault(run.task, [])
        if run.arm not in arms[run.task]:
            arms[run.task].append(run.arm)
    for task, names in arms.items():
        folders = [f"{root.rstrip('/')}/{task}_{arm}" for arm in names]
        if len(names) == 1:
            commands.append(shlex.join(["dreamer-report", "runs", *folders]))
        else:
            commands.append(shlex.join(["dreamer-report", "compare", *folders, "--names", ",".join(names)]))
    return commands


def report(prepared, results):
    """The lines printed at the end of `dreamer-sweep run`, and the exit code (1 if a run failed)."""
    lines = table(results) + [f"sweep: {len(results)} runs: {totals(results)}"]
    bad = [r for r in results if r.status in FAILED]
    if bad:
        lines.append(
            f"sweep: {len(bad)} runs did not finish; their logs say why. Run the same "
            "command again to resume them from their checkpoints."
        )
        return lines, 1
    queued = [r for r in results if r.status == "in queue"]
    if queued:
        lines.append(
            f"sweep: {len(queued)} runs are still queued or running from an earlier call "
            "(not submitted again); run the same command later."
        )
    if all(plan.is_finished(r) for r in prepared.runs):
        lines.append("sweep: finished. Compare the arms with:")
        lines += ["  " + c for c in compare_commands(prepared.runs, prepared.root)]
    return lines, 0
