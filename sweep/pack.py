"""A sweep's run dirs and logs in one .tgz, without checkpoints or replay: what comes back
from a machine that ran it (finished or not: the metrics say how far each run got).

Names in the archive start with the root's own folder name (`artifacts/<task>_<arm>/seed0/...`,
`artifacts/logs/...`), never with a path of the machine. For shipping many runs small, the
JSONL logs can go in gzipped (`metrics.jsonl.gz`: dreamer-report reads it as it reads the
plain file) and `scope/` (videos and scalars, most of a finished run's bytes) can be kept only
for the best seed of each task and arm, ranked by final score by dreamer-report's own
`analysis.ranking` (the seed `dreamer-report best-seed` picks).
"""

import gzip
import os
import shutil
import tarfile
import tempfile

from dreamerv3 import remotepath, safefile
from sweep import plan
from sweep.spec import SweepError

SKIP = ("ckpt", "replay", ".lock")  # what of a run dir stays behind (.lock: dreamerv3/runlock.py)
LOGS = ("scores.jsonl", "metrics.jsonl")
SCOPES = ("all", "best", "none")  # which runs keep scope/


def pack(runs, root, out, gzip_logs=False, keep_scope=None, sources=()):
    """Write `out` (.tgz) with every existing run dir of `runs` and its log; returns how many
    run dirs went in. `gzip_logs`: the JSONL logs stored as `<name>.gz`; `keep_scope`: the
    logdirs (normalised paths) whose `scope/` goes in (None: every run's); `sources`: more
    inputs (the sweep file) `out` may not be. Written through safefile.replacing: never into an
    input or through a link; run dirs reached through a link and links inside runs stay out."""
    if remotepath.is_remote(out):  # packed locally, then uploaded as one object
        with tempfile.TemporaryDirectory(prefix="dreamer-pack-") as folder:
            local = os.path.join(folder, "pack.tgz")
            count = pack(runs, root, local, gzip_logs, keep_scope, sources)
            remotepath.upload(local, out, SweepError)
        return count
    base = os.path.basename(os.path.normpath(root)) or "runs"
    count = 0
    inputs = [p for run in runs for p in (run.logdir, run.log)] + list(sources)
    with safefile.replacing(out, inputs, "--out") as file, tarfile.open(fileobj=file, mode="w:gz") as tar:
        for run in runs:
            if (
                os.path.isdir(run.logdir)
                and safefile.inside(run.logdir, root)
                and not any(os.path.islink(p) for p in _below(root, run.logdir))
            ):
                arcname = _member(base, run.logdir, root)
                scope = keep_scope is None or os.path.normpath(run.logdir) in keep_scope
                logs = _logs_to_gzip(run.logdir) if gzip_logs else []
                tar.add(run.logdir, arcname=arcname, filter=_leave_out(arcname, scope, logs))
                for name in logs:
                    _add_gzipped(tar, os.path.join(run.logdir, name), f"{arcname}/{name}.gz")
                count += 1
            if os.path.isfile(run.log) and not os.path.islink(run.log) and safefile.inside(run.log, root):
                tar.add(run.log, arcname=_member(base, run.log, root))
        for log in _population_logs(runs, root):
            tar.add(log, arcname=_member(base, log, root))
    return count


def _member(base, path, root):
    """The archive name of `path`: `<root's name>/<path relative to the root>`, never with `..`."""
    rel = os.path.relpath(path, root)
    if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        raise SweepError(f"{path}: outside the root {root}; an archive holds only what is inside it")
    return f"{base}/{rel}"


def _below(root, path):
    """The folders from below `root` down to `path` (each must be a real folder, not a link)."""
    rel = os.path.relpath(path, root).split(os.sep)
    return [os.path.join(root, *rel[:i]) for i in range(1, len(rel) + 1)]


def _population_logs(runs, root):
    """The terminal logs of population processes of the runs' tasks (<root>/logs/, named by
    plan.population_prefix; one process writes one log for all its members)."""
    folder = os.path.join(root, "logs")
    if not os.path.isdir(folder):
        return []
    prefixes = tuple(plan.population_prefix(task) for task in sorted({run.task for run in runs}))
    paths = (
        os.path.join(folder, name)
        for name in sorted(os.listdir(folder))
        if name.startswith(prefixes) and name.endswith(".log")
    )
    return [path for path in paths if os.path.isfile(path) and not os.path.islink(path)]


def _leave_out(arcname, scope, logs):
    """tarfile's filter: no ckpt/ or replay/, scope/ only if kept, the logs that go in gzipped."""
    skip = set(SKIP) | (set() if scope else {"scope"})

    def keep(info):
        if info.issym() or info.islnk() or not (info.isfile() or info.isdir()):
            return None  # a run holds real files and folders; a link or a device stays out
        rel = info.name[len(arcname) + 1 :] if info.name.startswith(arcname + "/") else ""
        top = rel.split("/")[0]
        if (top in skip and rel) or rel in logs:
            return None
        return info

    return keep


def _logs_to_gzip(logdir):
    """The plain logs of a run dir (regular files); a run already holding `<name>.gz` beside one
    is refused: the archive would hold two files of that name."""
    found = []
    for name in LOGS:
        path = os.path.join(logdir, name)
        if os.path.isfile(path) and not os.path.islink(path):
            if os.path.lexists(path + ".gz"):
                raise SweepError(f"{logdir}: holds both {name} and {name}.gz; expected one of them")
            found.append(name)
    return found


def _add_gzipped(tar, path, arcname):
    """`path` gzipped into the archive as `arcname`, through a temp file (logs can be large)."""
    info = tar.gettarinfo(path, arcname)
    with tempfile.TemporaryFile() as packed:
        with open(path, "rb") as src, gzip.GzipFile(filename="", fileobj=packed, mode="wb", mtime=0) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        info.size = packed.tell()
        packed.seek(0)
        tar.addfile(info, packed)


def best_seeds(runs):
    """{(task, arm): the logdir of its best seed by final score, or None when no run of it has
    a score}, over the runs whose dirs hold logs. Ranked by dreamer-report's `analysis.ranking`
    (imported here only: the trainer's machine needs it only for `--scope best`)."""
    from analysis import defaults, ranking
    from analysis.ingest import IngestError

    groups = {}
    for run in runs:
        if any(os.path.isfile(os.path.join(run.logdir, name)) for name in defaults.RUN_FILES):
            groups.setdefault((run.task, run.arm), []).append(run.logdir)
    best = {}
    for key, logdirs in groups.items():
        try:
            ranked = ranking.seed_table(logdirs, cache=False)
        except (IngestError, ValueError, OSError) as e:
            raise SweepError(f"--scope best: {e}") from None
        top = ranked[0] if ranked else None
        best[key] = os.path.normpath(top["path"]) if top and top["final_score"] is not None else None
    return best
