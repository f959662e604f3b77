"""Find run directories and read them into tidy long tables (docs/design.md, "The run directory").

A run dir holds `scores.jsonl` and/or `metrics.jsonl` (maybe `config.yaml`, `scope/`), as this
trainer and the official DreamerV3 write them; either log may be stored gzipped instead
(`metrics.jsonl.gz`: read as the plain file would be, problems named by the .gz). A run holding
both forms of one log is refused at discovery: which one holds the run is not for us to guess. `discover` finds runs and labels them with task /
method / seed; `ingest` reads them into two long tables (`scores`, `metrics`) with the columns
run, task, method, seed, step, key, value, plus a `problems` table. Damage that runs suffer
(torn last line, empty or missing file, NaN/inf, repeated steps after a resume, a short run) is
reported there and never silently changes a number. Parsed runs are cached as parquet in the
user's cache folder (analysis/cache.py), keyed by the content of the source files; nothing is
written into a run dir.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

from analysis import atari, confine, defaults, foreign, gzlog, jsonl, published, remote, runconfig
from analysis import cache as cache_lib
from analysis.jsonl import LONG_SCHEMA, IngestError, problem, read_jsonl  # noqa: F401 (re-exported)

LOGS = defaults.LOGS  # scores.jsonl, metrics.jsonl: each stored plain or gzipped
RUN_FILES = defaults.RUN_FILES  # the logs and their .gz forms: a folder holding one is a run
BATCH_RUNS = 64  # runs whose logs are parsed in one scan (a progress step; bounds memory)
SKIP_DIRS = {"ckpt", "replay", "scope"}
SHORT_RUN_FRACTION = 0.9  # a run ending before 90% of its task's longest run is reported
PROBLEM_SCHEMA = {"run": pl.String, "file": pl.String, "line": pl.Int64, "problem": pl.String}
# Metric keys the trainer wrote before it took the official DreamerV3's names: runs
# written before the rename are read under the current names.
KEY_ALIASES = {
    "train/loss/rec": "train/loss/image",
    "report/loss/rec": "report/loss/image",
    "train/ent/policy": "train/ent/action",
}


@dataclass(frozen=True)
class Run:
    path: Path
    task: str
    method: str
    seed: int
    name: str  # a short label unique among the runs discovered together
    notes: tuple[str, ...] = ()  # what discovery could not use (e.g. a bad seed in config.yaml), as problems
    seed_recorded: bool = True  # False: no seed in config.yaml or the folder name (numbered by discovery)


@dataclass
class Ingested:
    runs: list[Run]
    scores: pl.DataFrame
    metrics: pl.DataFrame
    problems: pl.DataFrame


# ---------------------------------------------------------------- discovery


def discover(paths: Sequence[str], names: Sequence[str] | None = None) -> list[Run]:
    """Runs under each path (a run dir, a folder of runs at any depth, or a glob).

    `names[i]`, when given, is the method label of every run found under `paths[i]`.
    A path `published:<agent>` stands for that agent's published runs (analysis/published.py).
    """
    if names is not None and len(names) != len(paths):
        raise IngestError(f"--names has {len(names)} labels for {len(paths)} paths; expected one per path")
    known_methods = [n for n in names or [] if n] + [Path(p.rstrip("/")).name for p in paths]
    found: list[tuple[Path, str | None]] = []
    shipped: list[Run] = []
    for i, spec in enumerate(paths):
        label = names[i] if names else None
        if published.is_spec(spec):
            shipped += _published_runs(spec, label)
            continue
        if remote.is_remote(spec) and spec.lower().endswith(foreign.CSV_SUFFIX) and not any(c in spec for c in "*?["):
            shipped += _csv_runs(remote.fetch_file(spec), label, known_methods)
            continue
        if foreign.is_csv(spec):
            shipped += _csv_runs(Path(spec), label, known_methods)
            continue
        dirs = _run_dirs(spec)
        if not dirs:
            raise IngestError(f"{spec}: no runs found (expected folders holding scores.jsonl or metrics.jsonl)")
        found += [(d, label) for d in dirs]
    runs, seen = [], {}
    for run_dir, label in found:
        one_form_of_each_log(run_dir)
        real = run_dir.resolve()
        if real in seen:
            if seen[real] != label:
                raise IngestError(
                    f"{run_dir}: found under both {seen[real]!r} and {label!r}; a run belongs to one method"
                )
            continue
        seen[real] = label
        runs.append(_label_run(run_dir, label, known_methods))
    return with_unique_names(_number_missing_seeds(runs) + shipped)


def input_runs(paths: list[str]) -> list[Path]:
    """Every local run folder under `paths` (found, not read): a command that works on one run of
    a folder (the best seed) still writes into none of the others."""
    try:
        return [run.path for run in discover([str(p) for p in paths if not remote.is_remote(str(p))])]
    except IngestError:
        return []


def _csv_runs(path: Path, label: str | None, known_methods: Sequence[str]) -> list[Run]:
    """The runs of a CSV export: one per distinct (task, method, seed) of its label columns (its
    path `<file>/run<i>`), or the file as one run; what no column says comes from the folders."""
    try:
        groups = foreign.csv_groups(path)
    except foreign.ForeignError as error:
        raise IngestError(str(error)) from None
    folder = _label_run(path.parent, label, known_methods)
    stem_seed = re.search(r"seed[_-]?(\d+)", path.stem)
    runs = []
    for i, group in enumerate(groups):
        seed = group.get("seed", stem_seed.group(1) if stem_seed else None)
        if seed is not None and not (str(seed).isdigit() and len(str(seed)) < 19):
            line = foreign.first_line_with(path, "seed", seed) if "seed" in group else None
            where = f"{remote.shown(path)}:{line}" if line else remote.shown(path)
            raise IngestError(f"{where}: seed {seed!r}; expected a whole number in the seed column")
        runs.append(
            Run(
                path / f"run{i}" if group else path,
                group.get("task") or folder.task,
                label or group.get("method") or folder.method,
                int(seed) if seed is not None else -1,
                "",
                seed_recorded=seed is not None,
            )
        )
    return _number_missing_seeds(runs)


def _csv_of(path: Path) -> tuple[Path, int | None] | None:
    """(CSV file, group index or None) when `path` is a CSV run (see `_csv_runs`), else None."""
    if path.suffix.lower() == foreign.CSV_SUFFIX and path.is_file():
        return path, None
    if path.parent.suffix.lower() == foreign.CSV_SUFFIX and path.name.startswith("run") and path.name[3:].isdigit():
        return (path.parent, int(path.name[3:])) if path.parent.is_file() else None
    return None


def _is_event_run(run_dir: Path) -> bool:
    """A TensorBoard run: event files, and neither JSONL log (a run writing both is read from its logs)."""
    listed = remote.listed(run_dir)
    names = listed if listed is not None else {p.name for p in _children(run_dir)}
    return any(defaults.is_event_file(n) for n in names) and not any(n in RUN_FILES for n in names)


def _children(folder: Path) -> list[Path]:
    try:
        return list(Path(folder).iterdir()) if Path(folder).is_dir() else []
    except OSError:
        return []


def _published_runs(spec: str, label: str | None) -> list[Run]:
    try:
        method = label or published.label(published.name_of(spec))
        return [Run(path, task, method, seed, "") for path, task, seed in published.entries(spec)]
    except published.PublishedError as error:
        raise IngestError(str(error)) from None


def one_form_of_each_log(run_dir: Path) -> None:
    """IngestError when a run holds a log both plain and gzipped (metrics.jsonl and
    metrics.jsonl.gz): they may differ, and reading either would silently drop the other."""
    names = remote.listed(run_dir)
    if names is None:
        names = {name for name in RUN_FILES if _present(run_dir / name)}
    for name in LOGS:
        if name in names and name + defaults.GZIP in names:
            raise IngestError(
                f"{remote.shown(run_dir)}: holds both {name} and {name}{defaults.GZIP}; expected "
                "one of them (remove the one that is not this run's log)"
            )


def log_file(run_dir: Path, name: str) -> Path:
    """Where a run's log `name` (scores.jsonl or metrics.jsonl) is: the plain file, else its .gz
    if that exists, else the plain name (absent)."""
    listed = remote.listed(run_dir)  # a run in object storage: its logs may not be fetched yet
    there = (lambda rel: rel in listed) if listed is not None else (lambda rel: _present(run_dir / rel))
    packed = name + defaults.GZIP
    return run_dir / (packed if not there(name) and there(packed) else name)


def _present(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def one_method_per_run(groups: dict[str, list[Run]]) -> None:
    """Refuse a run that two methods claim (the same folder on two sides compares runs with themselves)."""
    owner: dict[Path, str] = {}
    for method, runs in groups.items():
        for run in runs:
            other = owner.setdefault(run.path.resolve(), method)
            if other != method:
                raise IngestError(f"{run.path}: found under both {other!r} and {method!r}; a run belongs to one method")


def _run_dirs(spec: str) -> list[Path]:
    """Run dirs named by one command-line path: itself, below it, or matching a glob.

    A path that exists is that path, even with glob characters in its name (`exp?1`,
    `new [v2]`); only a path that does not exist is a glob. Globs and folder walks follow
    symlinks but enter each real folder once, so a link loop ends.
    """
    if remote.is_remote(spec):
        return remote.run_dirs(spec)
    root = Path(spec)
    if not root.exists():
        if not any(ch in spec for ch in "*?["):
            raise IngestError(f"{spec}: path does not exist")
        matches = _glob(spec)
        if not matches:
            raise IngestError(f"{spec}: no path matches this glob")
        return list(dict.fromkeys(d for m in matches for d in _walk(m)))
    return _walk(root)


def _walk(root: Path) -> list[Path]:
    """Run dirs at or below an existing path (a run file names its folder)."""
    if root.is_file():
        root = root.parent if defaults.is_run_file(root.name) else root
    if _is_run_dir(root):
        return [root]
    out, stack, entered = [], [root], set()
    while stack:
        folder = stack.pop()
        if not _enter(folder, entered):
            continue
        if _is_run_dir(folder):
            out.append(folder)
            continue
        children = sorted(c for c in _subdirs(folder) if c.name not in SKIP_DIRS)
        stack.extend(reversed(children))
    return out


def _enter(folder: Path, entered: set, state: int = 0) -> bool:
    """True the first time a real folder is seen (by device and inode), so symlink loops end.

    `state` tells apart visits by a glob `**` with different patterns left to match.
    """
    try:
        st = folder.stat()
    except OSError:  # a dangling link, a loop the OS refuses, no permission
        return False
    ident = (st.st_dev, st.st_ino, state)
    if ident in entered:
        return False
    entered.add(ident)
    return True


def _subdirs(folder: Path) -> list[Path]:
    """Visible folders (and links to folders) in `folder`; unreadable folders have none."""
    try:
        with os.scandir(folder) as entries:
            return [Path(e.path) for e in entries if not e.name.startswith(".") and _is_dir(e)]
    except OSError:
        return []


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _glob(spec: str) -> list[Path]:
    """Paths matching a glob (`*`, `?`, `[..]` within a name, `**` any folders); loop-safe."""
    parts = Path(spec).parts
    fixed = next(i for i, part in enumerate(parts) if any(ch in part for ch in "*?["))
    base = Path(*parts[:fixed]) if fixed else Path(".")
    found: dict[Path, None] = {}
    _expand(base, list(parts[fixed:]), set(), found)
    return sorted(found)


def _expand(folder: Path, parts: list[str], entered: set, found: dict) -> None:
    """Add to `found` the paths below `folder` matching the glob components `parts`."""
    if not parts:
        found[folder] = None
        return
    head, rest = parts[0], parts[1:]
    if head == "**":
        if not _enter(folder, entered, len(parts)):
            return
        _expand(folder, rest, entered, found)
        for child in sorted(_subdirs(folder)):
            _expand(child, parts, entered, found)
        return
    if not any(ch in head for ch in "*?["):
        child = folder / head
        if child.exists():
            _expand(child, rest, entered, found)
        return
    try:
        with os.scandir(folder) as entries:
            names = sorted(e.name for e in entries)
    except OSError:
        return
    for name in names:
        if fnmatch.fnmatchcase(name, head) and (not name.startswith(".") or head.startswith(".")):
            if not rest or (folder / name).is_dir():
                _expand(folder / name, rest, entered, found)


def _is_run_dir(folder: Path) -> bool:
    if any((folder / name).is_file() for name in RUN_FILES):
        return True
    return any(defaults.is_event_file(p.name) and p.is_file() for p in _children(folder))


def split_task_method(folder: str, known_methods: Sequence[str] = (), task: str | None = None):
    """Split a `<task>_<method>` folder name, or return None when nothing known fits.

    Uses, in order: the task from config.yaml, a known method suffix (from --names or the
    command line), the Atari100k task list (longest match). Never a blind underscore split.
    """
    if task and folder.startswith(task + "_"):
        return task, folder[len(task) + 1 :]
    for method in sorted(set(known_methods), key=len, reverse=True):
        if method and folder.endswith("_" + method) and len(folder) > len(method) + 1:
            return folder[: -len(method) - 1], method
    for known in sorted(atari.TASKS, key=len, reverse=True):
        if folder.startswith(known + "_"):
            return known, folder[len(known) + 1 :]
    return None


def _label_run(run_dir: Path, label: str | None, known_methods: Sequence[str]) -> Run:
    cfg, notes = runconfig.top_fields(run_dir)
    cfg_task = cfg.get("task")
    split = None
    for folder in (run_dir.parent.name, run_dir.name):
        split = split_task_method(folder, [label] if label else known_methods, cfg_task)
        if split:
            break
    if split:
        task, method = split
    else:
        task, method = run_dir.parent.name, cfg.get("method") or run_dir.parent.name
    task = cfg_task or task
    method = label or method
    seed_match = re.search(r"seed[_-]?(\d+)", run_dir.name)
    if runconfig.seed_of(cfg) is not None:
        seed = runconfig.seed_of(cfg)
    elif seed_match and len(seed_match.group(1)) < 19:
        seed = int(seed_match.group(1))
    else:
        seed = -1  # numbered below
    return Run(path=run_dir, task=task, method=method, seed=seed, name="", notes=tuple(notes))


def _number_missing_seeds(runs: list[Run]) -> list[Run]:
    """Runs with no seed in path or config get the next free number within (task, method)."""
    out = []
    for run in runs:
        if run.seed < 0:
            used = {r.seed for r in runs + out if (r.task, r.method) == (run.task, run.method)}
            run = replace(run, seed=next(i for i in range(len(used) + 1) if i not in used), seed_recorded=False)
        out.append(run)
    return out


def copies(runs: list[Run]) -> list[tuple[Run, Run]]:
    """Pairs (first, copy) of runs that are the same run in two folders: one method and task, the
    same recorded seed (or none recorded on either), the same config.yaml and byte-identical logs
    (a gzipped log compared unzipped: a packed copy of a run is the run). Two seeds whose logs
    happen to match (a game where every episode scores 0) are not copies. Runs without readable
    logs are skipped."""
    return _same_logs(runs)[0]


def _same_logs(runs: list[Run]) -> tuple[list[tuple[Run, Run]], list[tuple[Run, Run]]]:
    """(copies, twins): pairs of one method and task with byte-identical logs that are the same
    run (`copies`), and pairs that are not (another recorded seed or another config.yaml)."""
    first: dict[tuple, Run] = {}
    by_logs: dict[tuple, Run] = {}
    copied, twins = [], []
    for run in runs:
        logs = _unzipped_key(run.path)
        if logs is None:
            continue
        seed = run.seed if run.seed_recorded else None
        other = first.setdefault((run.method, run.task, seed, _config_key(run.path), logs), run)
        if other is not run:
            copied.append((other, run))
            continue
        twin = by_logs.setdefault((run.method, run.task, logs), run)
        if twin is not run:
            twins.append((twin, run))
    return copied, twins


def without_copies(runs: list[Run]) -> tuple[list[Run], list[str]]:
    """The runs with each copy (see `copies`) left out, and one warning line per copy left out
    and per pair of distinct runs whose logs are byte-identical (both kept)."""
    copied, twins = _same_logs(runs)
    dropped = {id(copy) for _, copy in copied}
    notes = [
        f"{remote.shown(copy.path)} is a copy of {remote.shown(run.path)} (same seed {run.seed}, config "
        "and logs): counted once"
        for run, copy in copied
    ]
    notes += [
        f"{remote.shown(a.path)} (seed {a.seed}) and {remote.shown(b.path)} (seed {b.seed}) have "
        "byte-identical logs but another seed or config: counted as two runs (expected only where "
        "every episode scores the same)"
        for a, b in twins
    ]
    return [r for r in runs if id(r) not in dropped], notes


def _config_key(run_dir: Path) -> str | None:
    """A hash of the run's config.yaml (None when it has none or it cannot be read)."""
    path = run_dir / "config.yaml"
    if not confine.run_file(run_dir, path):
        return None
    try:
        return hashlib.sha1(path.read_bytes()).hexdigest()
    except OSError:
        return None


def with_unique_names(runs: list[Run]) -> list[Run]:
    out, counts = [], {}
    for run in runs:
        base = f"{run.method}/{run.task.removeprefix(atari.PREFIX)}/s{run.seed}"
        counts[base] = counts.get(base, 0) + 1
        name = base if counts[base] == 1 else f"{base}#{counts[base]}"
        out.append(replace(run, name=name))
    return out


# ---------------------------------------------------------------- scope scalars


def read_scope_scalars(scope_dir: Path, problems: list[dict], run_dir: Path | None = None) -> pl.DataFrame:
    """scope `<key>.float` files: 16-byte rows of big-endian int64 step and float64 value.

    Only files inside `run_dir` (default: the scope folder's parent) are read."""
    run_dir = scope_dir.parent if run_dir is None else run_dir
    frames = []
    for path in sorted(scope_dir.glob("*.float")):
        why = _unread(run_dir, path)
        if why:
            problems.append(problem(path, None, why))
            continue
        size = path.stat().st_size  # before reading: a sparse file may claim terabytes
        if size > defaults.MAX_UNZIPPED_LOG_BYTES:
            problems.append(
                problem(
                    path,
                    None,
                    f"{size:,} bytes, more than the {defaults.MAX_UNZIPPED_LOG_BYTES:,} "
                    "read of one log (MAX_UNZIPPED_LOG_BYTES, analysis/defaults.py); skipped",
                )
            )
            continue
        data = path.read_bytes()
        whole = len(data) - len(data) % 16
        if whole < len(data):
            problems.append(problem(path, None, f"torn last record ({len(data) - whole} bytes) skipped"))
        rows = np.frombuffer(data[:whole], dtype=[("step", ">i8"), ("value", ">f8")])
        if (rows["step"] < 0).any():
            problems.append(
                problem(path, None, f"{int((rows['step'] < 0).sum())} records with a negative step skipped")
            )
            rows = rows[rows["step"] >= 0]
        if not np.isfinite(rows["value"]).all():
            problems.append(problem(path, None, f"{int((~np.isfinite(rows['value'])).sum())} NaN/inf values"))
        steps = rows["step"].astype(np.int64)
        again = jsonl.resume_repeats(steps, np.zeros(len(steps)), steps, np.arange(len(steps)))  # one key
        key = path.name[: -len(".float")].replace("-", "/")
        frame = pl.DataFrame({"step": steps[~again], "value": rows["value"][~again].astype(np.float64)})
        frame = frame.with_columns(key=pl.lit(key, pl.Categorical)).select("step", "key", "value")
        frames.append(jsonl.one_value_per_step(path, frame, problems))
    if not frames:
        return pl.DataFrame(schema=LONG_SCHEMA)
    return pl.concat(frames)


# ---------------------------------------------------------------- reading one run


Tables = tuple[pl.DataFrame, pl.DataFrame, list[dict]]  # scores, metrics, problems of one run


def read_runs(run_dirs: Sequence[Path], keys: foreign.KeyMap = foreign.DEFAULT) -> list[Tables]:
    """(scores, metrics, problems) of each run dir, each table long: step, key, value.

    The JSONL files of all the runs are parsed together (jsonl.read_many): one scan over many
    files is several times faster than one scan per file. TensorBoard runs and CSV exports are
    read by analysis/foreign.py with the key map `keys`.
    """
    remote.fetch_logs(run_dirs)
    other = {d: _read_foreign(d, keys) for d in run_dirs if _csv_of(d) or _is_event_run(d)}
    files = [
        path
        for d in run_dirs
        if d not in other
        for path in (log_file(d, name) for name in LOGS)
        if confine.run_file(d, path)
    ]
    logs = dict(zip(files, jsonl.read_many(files)))
    return [other[d] if d in other else _assemble_run(d, logs) for d in run_dirs]


def _read_foreign(run_dir: Path, keys: foreign.KeyMap) -> Tables:
    """A TensorBoard run or a CSV export's run, NaN/inf scores left out as for a JSONL run."""
    csv = _csv_of(run_dir)
    try:
        if csv is None:
            scores, metrics, problems = foreign.read_events(run_dir, keys)
        else:
            labels = foreign.csv_groups(csv[0])[csv[1]] if csv[1] is not None else {}
            scores, metrics, problems = foreign.read_csv_run(csv[0], labels, keys)
    except foreign.ForeignError as error:
        return (
            pl.DataFrame(schema=LONG_SCHEMA),
            pl.DataFrame(schema=LONG_SCHEMA),
            [{"file": (csv[0] if csv else run_dir).name, "line": None, "problem": str(error)}],
        )
    return _finite(scores, problems, "scores"), metrics, problems


def read_run(run_dir: Path) -> Tables:
    return read_runs([run_dir])[0]


def _assemble_run(run_dir: Path, logs: dict[Path, tuple[pl.DataFrame, list[dict]]]) -> Tables:
    """One run's tables from its parsed logs: scores from metrics or scope if scores.jsonl is missing."""
    scores_file, metrics_file = log_file(run_dir, "scores.jsonl"), log_file(run_dir, "metrics.jsonl")
    problems: list[dict] = [
        {"file": path.name, "line": None, "problem": _unread(run_dir, path)}
        for path in (scores_file, metrics_file)
        if _unread(run_dir, path)
    ]
    metrics = pl.DataFrame(schema=LONG_SCHEMA)
    if metrics_file in logs:
        metrics, found = logs[metrics_file]
        problems += found
    if scores_file in logs:
        scores, found = logs[scores_file]
        problems += found
    else:
        scores = metrics.filter(pl.col("key").cat.starts_with("episode/"))
        source = metrics_file.name if scores.height else "nothing"
        problems.append({"file": "scores.jsonl", "line": None, "problem": f"missing; episodes taken from {source}"})
    if (run_dir / "scope").is_dir():
        scope = read_scope_scalars(run_dir / "scope", problems, run_dir)
        have_metrics = set(metrics["key"].unique())
        extra = scope.filter(~pl.col("key").is_in(list(have_metrics)))
        metrics = pl.concat([metrics, extra.filter(~pl.col("key").cat.starts_with("episode/"))])
        if scores.height == 0:
            scores = extra.filter(pl.col("key").cat.starts_with("episode/"))
    return _finite(scores, problems, scores_file.name), current_names(metrics), problems


def _unread(run_dir: Path, path: Path) -> str | None:
    """Why an existing file of the run is not read (None when it is read or absent)."""
    if confine.leaves_run(run_dir, path):
        return "a link to a file outside the run folder; skipped"
    if path.exists() and not path.is_file():
        return "not a regular file; skipped"
    return None


def current_names(metrics: pl.DataFrame) -> pl.DataFrame:
    """The table with keys of KEY_ALIASES renamed (only when a run has one: the cast costs)."""
    if not set(KEY_ALIASES) & set(metrics["key"].unique().cast(pl.String)):
        return metrics
    return metrics.with_columns(pl.col("key").cast(pl.String).replace(KEY_ALIASES).cast(pl.Categorical))


def _finite(scores: pl.DataFrame, problems: list[dict], name: str = "scores.jsonl") -> pl.DataFrame:
    """Scores without NaN/inf: one such episode would make every aggregate of its method NaN or inf."""
    if np.isfinite(scores["value"].to_numpy()).all():  # numpy: no polars query per run
        return scores
    bad = scores.filter(~pl.col("value").is_finite()).group_by("key").len().sort("key")
    for key, count in bad.iter_rows():
        problems.append(
            {"file": name, "line": None, "problem": f"{key}: its {count} NaN/inf values are left out of the scores"}
        )
    return scores.filter(pl.col("value").is_finite())


def _sources(run_dir: Path) -> list[Path]:
    """The files a run's tables are parsed from (what the cache key hashes)."""
    if _is_event_run(run_dir):
        return foreign.event_files(run_dir)
    scope = (
        sorted(p for p in (run_dir / "scope").glob("*.float") if confine.run_file(run_dir, p))
        if (run_dir / "scope").is_dir()
        else []
    )
    logs = [log_file(run_dir, name) for name in LOGS]
    return [path for path in logs if confine.run_file(run_dir, path)] + scope


def _content_key(run_dir: Path) -> str | None:
    """The cache key of a run, None when a source cannot be read (the run is then parsed, uncached)."""
    try:
        return cache_lib.content_key(_sources(run_dir))
    except OSError:
        return None


def _unzipped_key(run_dir: Path) -> str | None:
    """A hash of a run's sources as their plain names and unzipped bytes; None when it has none,
    or one cannot be read or unzipped whole."""
    sources = _sources(run_dir)
    if not sources:
        return None
    digest = hashlib.sha1()
    for path in sources:
        if gzlog.is_gzip(path):
            data, trouble = gzlog.unzip(path)
            if data is None or trouble:
                return None
        else:
            try:
                data = path.read_bytes()
            except OSError:
                return None
        digest.update(f"|{path.name.removesuffix(defaults.GZIP)}|{len(data)}|".encode())
        digest.update(data)
    return digest.hexdigest()


def read_runs_cached(
    run_dirs: Sequence[Path], cache: bool | str | Path | None = True, keys: foreign.KeyMap = foreign.DEFAULT
) -> list[Tables]:
    """read_runs through the parquet cache (analysis/cache.py); `cache` as cache.folder takes it.
    Published runs and CSV exports are read each time (they parse in milliseconds)."""
    shipped = {
        d: (published.scores_table(d), pl.DataFrame(schema=LONG_SCHEMA), []) for d in run_dirs if published.owns(d)
    }
    csvs = [d for d in run_dirs if _csv_of(d)]
    shipped.update(zip(csvs, read_runs(csvs, keys)))
    if shipped:
        rest = iter(read_runs_cached([d for d in run_dirs if d not in shipped], cache, keys))
        return [shipped[d] if d in shipped else next(rest) for d in run_dirs]
    folder = cache_lib.folder(cache)
    if folder is None:
        return read_runs(run_dirs, keys)
    remote.fetch_logs(run_dirs)
    confine.refuse_inside(folder, run_dirs, "--cache-dir")
    content = {d: _content_key(d) for d in run_dirs}
    tagged = {d: content[d] + "|" + keys.tag() if content[d] and _is_event_run(d) else content[d] for d in run_dirs}
    found = {d: cache_lib.read(cache_lib.entry(folder, d), tagged[d]) if tagged[d] else None for d in run_dirs}
    missing = [d for d, tables in found.items() if tables is None]
    for run_dir, tables in zip(missing, read_runs(missing, keys)):
        found[run_dir] = tables
        if tagged[run_dir]:
            cache_lib.write(cache_lib.entry(folder, run_dir), tagged[run_dir], tables)
    return [found[d] for d in run_dirs]


# ---------------------------------------------------------------- all runs


def ingest(
    runs: list[Run],
    metric_keys: Sequence[str] | None = None,
    progress: bool = False,
    cache: bool | str | Path | None = True,
    keys: foreign.KeyMap = foreign.DEFAULT,
) -> Ingested:
    """Read every run into the tidy tables; `metric_keys` limits the metrics table to those keys.

    `cache`: True for the user's cache folder, False/None for none, or a folder (cache.folder).
    """
    problems = []
    batches = [runs[i : i + BATCH_RUNS] for i in range(0, len(runs), BATCH_RUNS)]
    tables = [
        t
        for tables in _progress(_read_batches(batches, cache, keys), progress, "reading runs", len(batches))
        for t in tables
    ]
    for run, (_, _, run_problems) in zip(runs, tables):
        problems += [{"run": run.name, "file": "config.yaml", "line": None, "problem": n} for n in run.notes]
        problems += [{"run": run.name, **p} for p in run_problems]
    keep = None if metric_keys is None else pl.col("key").is_in(list(metric_keys))
    scores_df = _labelled(runs, [t[0] for t in tables])
    metrics_df = _labelled(runs, [t[1] if keep is None else t[1].filter(keep) for t in tables])
    problems += short_runs(runs, scores_df, metrics_df)
    scored = set(scores_df["run"].unique())
    problems += [
        {"run": r.name, "file": "scores.jsonl", "line": None, "problem": "no episodes"}
        for r in runs
        if r.name not in scored
    ]
    return Ingested(runs, scores_df, metrics_df, pl.DataFrame(problems, schema=PROBLEM_SCHEMA))


def _read_batches(batches: list[list[Run]], cache, keys: foreign.KeyMap = foreign.DEFAULT):
    """read_runs_cached of each batch; a remote batch's logs download while the one before parses."""
    for i, batch in enumerate(batches):
        if i + 1 < len(batches):
            remote.prefetch_logs([r.path for r in batches[i + 1]])
        yield read_runs_cached([r.path for r in batch], cache, keys)


def _labelled(runs: list[Run], tables: list[pl.DataFrame]) -> pl.DataFrame:
    """The runs' long tables stacked, with run / task / method / seed columns.

    Labels are gathered once for all rows (one `with_columns` per run cost more than the parse).
    """
    if not runs:
        return _empty_table()
    long = pl.concat(tables, rechunk=True)
    index = pl.Series(np.repeat(np.arange(len(runs), dtype=np.uint32), [t.height for t in tables]))
    column = lambda name, values, dtype: pl.Series(name, values, dtype).gather(index)
    return pl.DataFrame(
        [
            column("run", [r.name for r in runs], pl.Categorical),
            column("task", [r.task for r in runs], pl.Categorical),
            column("method", [r.method for r in runs], pl.Categorical),
            column("seed", [r.seed for r in runs], pl.Int64),
            long["step"],
            long["key"],
            long["value"],
        ]
    )


def _empty_table() -> pl.DataFrame:
    schema = {
        "run": pl.Categorical,
        "task": pl.Categorical,
        "method": pl.Categorical,
        "seed": pl.Int64,
        "step": pl.Int64,
        "key": pl.Categorical,
        "value": pl.Float64,
    }
    return pl.DataFrame(schema=schema)


def last_steps(scores: pl.DataFrame, metrics: pl.DataFrame) -> pl.DataFrame:
    """run, task, last_step: the largest step a run logged in either table."""
    per_table = [t.group_by("run", "task").agg(pl.col("step").max().alias("last_step")) for t in (scores, metrics)]
    return pl.concat(per_table).group_by("run", "task").agg(pl.col("last_step").max())


def short_runs(runs: list[Run], scores: pl.DataFrame, metrics: pl.DataFrame) -> list[dict]:
    """A problem row per run ending before SHORT_RUN_FRACTION of its task's longest run."""
    last = last_steps(scores, metrics).with_columns(longest=pl.col("last_step").max().over("task"))
    short = last.filter(pl.col("last_step") < SHORT_RUN_FRACTION * pl.col("longest")).sort("run")
    return [
        {
            "run": run,
            "file": "",
            "line": None,
            "problem": f"shorter run: last step {step:,} vs {longest:,} for the longest run of {task}",
        }
        for run, task, step, longest in short.select("run", "task", "last_step", "longest").iter_rows()
    ]


def _progress(items, enabled: bool, label: str, total: int | None = None):
    if not enabled:
        yield from items
        return
    from rich.progress import track

    yield from track(items, description=label, transient=True, total=total)


def finite_or_none(value: float) -> float | None:
    """JSON-safe float: NaN and inf become None."""
    return value if value is not None and math.isfinite(value) else None


RUN_COLUMNS = ["run", "task", "method", "seed", "last step", "episodes", "problems"]


def run_table(data: Ingested) -> tuple[list[str], list[list[str]]]:
    """What `dreamer-report runs` lists: per run its labels, last step, episodes and problem count."""
    last = dict(last_steps(data.scores, data.metrics).select("run", "last_step").iter_rows())
    episodes = dict(data.scores.filter(pl.col("key") == "episode/score")["run"].value_counts().iter_rows())
    problems = dict(data.problems["run"].value_counts().iter_rows())
    rows = [
        [
            run.name,
            run.task,
            run.method,
            str(run.seed),
            f"{last.get(run.name, 0):,}",
            str(episodes.get(run.name, 0)),
            str(problems.get(run.name, 0)),
        ]
        for run in data.runs
    ]
    return RUN_COLUMNS, rows
