"""Find run directories and read them into tidy long tables (SPEC section 3).

A run dir holds `scores.jsonl` and/or `metrics.jsonl` (maybe `config.yaml`, `scope/`), as this
trainer and the official DreamerV3 write them. `discover` finds runs and labels them with task /
method / seed; `ingest` reads them into two long tables (`scores`, `metrics`) with the columns
run, task, method, seed, step, key, value, plus a `problems` table. Damage that runs suffer
(torn last line, empty or missing file, NaN/inf, repeated steps after a resume, a short run) is
reported there and never silently changes a number. Parsed runs are cached as parquet beside
the run, keyed by the source files' size and mtime.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import polars as pl

from analysis import atari

RUN_FILES = ("scores.jsonl", "metrics.jsonl")
CACHE_DIR = ".dreamer-report-cache"
CACHE_VERSION = "1"
SKIP_DIRS = {"ckpt", "replay", "scope", CACHE_DIR}
SCHEMA_LINES = 100  # lines polars reads to guess the schema before the checked fast parse
SHORT_RUN_FRACTION = 0.9  # a run ending before 90% of its task's longest run is reported
LONG_SCHEMA = {"step": pl.Int64, "key": pl.String, "value": pl.Float64}
PROBLEM_SCHEMA = {"run": pl.String, "file": pl.String, "line": pl.Int64, "problem": pl.String}
TABLE_COLUMNS = ["run", "task", "method", "seed", "step", "key", "value"]


class IngestError(ValueError):
    """Bad input: the message names the path (and line) and what was expected."""


@dataclass(frozen=True)
class Run:
    path: Path
    task: str
    method: str
    seed: int
    name: str  # a short label unique among the runs discovered together


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
    """
    if names is not None and len(names) != len(paths):
        raise IngestError(f"--names has {len(names)} labels for {len(paths)} paths; expected one per path")
    known_methods = [n for n in names or [] if n] + [Path(p.rstrip("/")).name for p in paths]
    found: list[tuple[Path, str | None]] = []
    for i, spec in enumerate(paths):
        label = names[i] if names else None
        dirs = _run_dirs(spec)
        if not dirs:
            raise IngestError(f"{spec}: no runs found (expected folders holding scores.jsonl or metrics.jsonl)")
        found += [(d, label) for d in dirs]
    runs, seen = [], set()
    for run_dir, label in found:
        if run_dir.resolve() in seen:
            continue
        seen.add(run_dir.resolve())
        runs.append(_label_run(run_dir, label, known_methods))
    return with_unique_names(_number_missing_seeds(runs))


def _run_dirs(spec: str) -> list[Path]:
    """Run dirs named by one command-line path: itself, below it, or matching a glob."""
    if any(ch in spec for ch in "*?["):
        matches = sorted(glob.glob(spec, recursive=True))
        if not matches:
            raise IngestError(f"{spec}: no path matches this glob")
        return [d for m in matches for d in _run_dirs(m)]
    root = Path(spec)
    if not root.exists():
        raise IngestError(f"{spec}: path does not exist")
    if root.is_file():
        root = root.parent if root.name in RUN_FILES else root
    if _is_run_dir(root):
        return [root]
    out = []
    for folder, subdirs, _ in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in SKIP_DIRS and not d.startswith("."))
        if _is_run_dir(Path(folder)):
            out.append(Path(folder))
            subdirs[:] = []
    return out


def _is_run_dir(folder: Path) -> bool:
    return any((folder / name).is_file() for name in RUN_FILES)


def _read_config_fields(run_dir: Path) -> dict[str, str]:
    """Top-level `task`, `seed`, `method` of config.yaml (a line scan; the file can be large)."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        return {}
    fields = {}
    for key in ("task", "seed", "method"):
        match = re.search(rf"^{key}:[ \t]*(.*?)[ \t]*(#.*)?$", path.read_text(errors="replace"), re.M)
        if match and match.group(1).strip("'\""):
            fields[key] = match.group(1).strip("'\"")
    return fields


def split_task_method(folder: str, known_methods: Sequence[str] = (), task: str | None = None):
    """Split a `<task>_<method>` folder name, or return None when nothing known fits.

    Uses, in order: the task from config.yaml, a known method suffix (from --names or the
    command line), the Atari100k task list (longest match). Never a blind underscore split.
    """
    if task and folder.startswith(task + "_"):
        return task, folder[len(task) + 1:]
    for method in sorted(set(known_methods), key=len, reverse=True):
        if method and folder.endswith("_" + method) and len(folder) > len(method) + 1:
            return folder[: -len(method) - 1], method
    for known in sorted(atari.TASKS, key=len, reverse=True):
        if folder.startswith(known + "_"):
            return known, folder[len(known) + 1:]
    return None


def _label_run(run_dir: Path, label: str | None, known_methods: Sequence[str]) -> Run:
    cfg = _read_config_fields(run_dir)
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
    if "seed" in cfg and re.fullmatch(r"-?\d+", cfg["seed"]):
        seed = int(cfg["seed"])
    elif seed_match:
        seed = int(seed_match.group(1))
    else:
        seed = -1  # numbered below
    return Run(path=run_dir, task=task, method=method, seed=seed, name="")


def _number_missing_seeds(runs: list[Run]) -> list[Run]:
    """Runs with no seed in path or config get the next free number within (task, method)."""
    out = []
    for run in runs:
        if run.seed < 0:
            used = {r.seed for r in runs + out if (r.task, r.method) == (run.task, run.method)}
            run = Run(run.path, run.task, run.method, next(i for i in range(len(used) + 1) if i not in used), "")
        out.append(run)
    return out


def with_unique_names(runs: list[Run]) -> list[Run]:
    out, counts = [], {}
    for run in runs:
        base = f"{run.method}/{run.task.removeprefix(atari.PREFIX)}/s{run.seed}"
        counts[base] = counts.get(base, 0) + 1
        name = base if counts[base] == 1 else f"{base}#{counts[base]}"
        out.append(Run(run.path, run.task, run.method, run.seed, name))
    return out


# ---------------------------------------------------------------- reading one file


def read_jsonl(path: Path, problems: list[dict]) -> pl.DataFrame:
    """A JSONL log as a long table (step, key, value), newest value kept per (step, key)."""
    data = path.read_bytes()
    if not data.strip():
        problems.append(_problem(path, None, "empty file"))
        return pl.DataFrame(schema=LONG_SCHEMA)
    body, tail = data, b""
    if not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        body, tail = data[:cut], data[cut:]
    wide = _parse_lines(path, body) if body.strip() else pl.DataFrame()
    if tail:
        tail_row = _parse_tail(path, tail, body.count(b"\n") + 1, problems)
        if tail_row is not None:
            wide = pl.concat([wide, tail_row], how="diagonal_relaxed") if wide.width else tail_row
    return _to_long(path, wide, problems)


def _parse_lines(path: Path, body: bytes) -> pl.DataFrame:
    """Fast path through polars; NaN/Infinity tokens and bad lines go through json per line."""
    for infer in (SCHEMA_LINES, None):  # a short schema scan first, checked below; then the full scan
        try:
            wide = pl.read_ndjson(io.BytesIO(body), infer_schema_length=infer)
        except Exception:  # polars rejects NaN/Infinity; find out what is there, line by line
            break
        if infer is None or _all_fields_read(body, wide):
            return wide
    rows = []
    for number, line in enumerate(body.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise IngestError(f"{path}:{number}: cannot parse this line (expected one JSON object per line)") from None
        if not isinstance(row, dict):
            raise IngestError(f"{path}:{number}: expected a JSON object per line, got {type(row).__name__}")
        rows.append({k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    return pl.from_dicts(rows, infer_schema_length=None) if rows else pl.DataFrame()


def _all_fields_read(body: bytes, wide: pl.DataFrame) -> bool:
    """True if the table holds every `"key":` of the text (a schema from the first lines drops later keys)."""
    fields = body.count(b'":')
    read = wide.select(pl.sum_horizontal(pl.all().is_not_null().sum())).item()
    return fields == read


def _parse_tail(path: Path, tail: bytes, number: int, problems: list[dict]) -> pl.DataFrame | None:
    """The last line has no newline: keep it if it is a whole JSON object, else report it torn."""
    try:
        row = json.loads(tail)
    except ValueError:
        row = None
    if not isinstance(row, dict) or "step" not in row:
        problems.append(_problem(path, number, f"torn last line ({len(tail)} bytes) skipped"))
        return None
    row = {k: float(v) if k != "step" else v for k, v in row.items() if isinstance(v, (int, float))}
    return pl.from_dicts([row])


def _to_long(path: Path, wide: pl.DataFrame, problems: list[dict]) -> pl.DataFrame:
    if wide.height == 0 or "step" not in wide.columns:
        if wide.height:
            problems.append(_problem(path, None, "no 'step' field; file ignored"))
        return pl.DataFrame(schema=LONG_SCHEMA)
    numeric = [c for c, t in wide.schema.items() if c != "step" and t.is_numeric()]
    steps = wide["step"].cast(pl.Int64)
    back = np.flatnonzero(np.diff(steps.to_numpy()) < 0)
    if back.size:
        problems.append(_problem(path, int(back[0]) + 2, f"step goes backwards {back.size}x (resumed run?)"))
    long = (
        wide.lazy().select(pl.col("step").cast(pl.Int64), *[pl.col(c).cast(pl.Float64) for c in numeric])
        .unpivot(index="step", variable_name="key", value_name="value")
        .drop_nulls("value").collect()
    )
    if steps.is_duplicated().any():  # only then can a (step, key) pair repeat
        deduped = long.unique(subset=["step", "key"], keep="last", maintain_order=True)
        if deduped.height < long.height:
            problems.append(_problem(path, None, f"{long.height - deduped.height} repeated (step, key) values; kept the newest"))
        long = deduped
    if back.size:
        long = long.sort(["key", "step"], maintain_order=True)
    if not long["value"].is_finite().all():
        bad = long.filter(~pl.col("value").is_finite()).group_by("key").len().sort("key")
        for key, count in bad.iter_rows():
            problems.append(_problem(path, None, f"{count} NaN/inf values of {key} (kept as they are)"))
    return long


def read_scope_scalars(scope_dir: Path, problems: list[dict]) -> pl.DataFrame:
    """scope `<key>.float` files: 16-byte rows of big-endian int64 step and float64 value."""
    frames = []
    for path in sorted(scope_dir.glob("*.float")):
        data = path.read_bytes()
        whole = len(data) - len(data) % 16
        if whole < len(data):
            problems.append(_problem(path, None, f"torn last record ({len(data) - whole} bytes) skipped"))
        rows = np.frombuffer(data[:whole], dtype=[("step", ">i8"), ("value", ">f8")])
        key = path.name[: -len(".float")].replace("-", "/")
        frame = pl.DataFrame({"step": rows["step"].astype(np.int64), "value": rows["value"].astype(np.float64)})
        frames.append(frame.with_columns(key=pl.lit(key)).select("step", "key", "value"))
    if not frames:
        return pl.DataFrame(schema=LONG_SCHEMA)
    scope = pl.concat(frames)
    return scope.unique(subset=["step", "key"], keep="last", maintain_order=True)


def _problem(path: Path, line: int | None, text: str) -> dict:
    return {"file": path.name if path.parent.name != "scope" else f"scope/{path.name}", "line": line, "problem": text}


# ---------------------------------------------------------------- reading one run


def read_run(run_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame, list[dict]]:
    """(scores, metrics, problems) of one run dir, each table long: step, key, value."""
    problems: list[dict] = []
    metrics = pl.DataFrame(schema=LONG_SCHEMA)
    if (run_dir / "metrics.jsonl").is_file():
        metrics = read_jsonl(run_dir / "metrics.jsonl", problems)
    if (run_dir / "scores.jsonl").is_file():
        scores = read_jsonl(run_dir / "scores.jsonl", problems)
    else:
        scores = metrics.filter(pl.col("key").str.starts_with("episode/"))
        source = "metrics.jsonl" if scores.height else "nothing"
        problems.append({"file": "scores.jsonl", "line": None, "problem": f"missing; episodes taken from {source}"})
    if (run_dir / "scope").is_dir():
        scope = read_scope_scalars(run_dir / "scope", problems)
        have_metrics = set(metrics["key"].unique())
        extra = scope.filter(~pl.col("key").is_in(list(have_metrics)))
        metrics = pl.concat([metrics, extra.filter(~pl.col("key").str.starts_with("episode/"))])
        if scores.height == 0:
            scores = extra.filter(pl.col("key").str.starts_with("episode/"))
    return scores, metrics, problems


def _cache_key(run_dir: Path) -> str:
    parts = [CACHE_VERSION]
    sources = [run_dir / n for n in RUN_FILES] + sorted((run_dir / "scope").glob("*.float"))
    for path in sources:
        if path.is_file():
            st = path.stat()
            parts.append(f"{path.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


def read_run_cached(run_dir: Path, cache: bool = True) -> tuple[pl.DataFrame, pl.DataFrame, list[dict]]:
    """read_run through a parquet cache in `<run>/.dreamer-report-cache/` (skipped if read-only)."""
    if not cache:
        return read_run(run_dir)
    folder, key = run_dir / CACHE_DIR, _cache_key(run_dir)
    files = [folder / f"{key}.{part}" for part in ("scores.parquet", "metrics.parquet", "problems.json")]
    if all(f.is_file() for f in files):
        try:
            return pl.read_parquet(files[0]), pl.read_parquet(files[1]), json.loads(files[2].read_text())
        except Exception:  # a half-written cache is rebuilt below
            pass
    scores, metrics, problems = read_run(run_dir)
    try:
        folder.mkdir(exist_ok=True)
        for old in folder.iterdir():
            if not old.name.startswith(key):
                old.unlink()
        scores.write_parquet(files[0], compression="lz4")
        metrics.write_parquet(files[1], compression="lz4")
        files[2].write_text(json.dumps(problems))
    except OSError:
        pass  # read-only runs are read every time
    return scores, metrics, problems


# ---------------------------------------------------------------- all runs


def ingest(
    runs: list[Run], metric_keys: Sequence[str] | None = None, progress: bool = False, cache: bool = True
) -> Ingested:
    """Read every run into the tidy tables; `metric_keys` limits the metrics table to those keys."""
    scores, metrics, problems = [], [], []
    for run in _progress(runs, progress, "reading runs"):
        run_scores, run_metrics, run_problems = read_run_cached(run.path, cache)
        if metric_keys is not None:
            run_metrics = run_metrics.filter(pl.col("key").is_in(list(metric_keys)))
        labels = [pl.lit(run.name, pl.Categorical).alias("run"), pl.lit(run.task, pl.Categorical).alias("task"),
                  pl.lit(run.method, pl.Categorical).alias("method"), pl.lit(run.seed, pl.Int64).alias("seed"),
                  pl.col("key").cast(pl.Categorical)]
        scores.append(run_scores.with_columns(labels).select(TABLE_COLUMNS))
        metrics.append(run_metrics.with_columns(labels).select(TABLE_COLUMNS))
        problems += [{"run": run.name, **p} for p in run_problems]
    scores_df = pl.concat(scores) if scores else _empty_table()
    metrics_df = pl.concat(metrics) if metrics else _empty_table()
    problems += _short_runs(runs, scores_df, metrics_df)
    problems += [{"run": r.name, "file": "scores.jsonl", "line": None, "problem": "no episodes"}
                 for r in runs if r.name not in set(scores_df["run"].unique())]
    return Ingested(runs, scores_df, metrics_df, pl.DataFrame(problems, schema=PROBLEM_SCHEMA))


def _empty_table() -> pl.DataFrame:
    schema = {"run": pl.Categorical, "task": pl.Categorical, "method": pl.Categorical, "seed": pl.Int64,
              "step": pl.Int64, "key": pl.Categorical, "value": pl.Float64}
    return pl.DataFrame(schema=schema)


def last_steps(scores: pl.DataFrame, metrics: pl.DataFrame) -> pl.DataFrame:
    """run, task, last_step: the largest step a run logged in either table."""
    both = pl.concat([scores.select("run", "task", "step"), metrics.select("run", "task", "step")])
    return both.group_by("run", "task").agg(pl.col("step").max().alias("last_step"))


def _short_runs(runs: list[Run], scores: pl.DataFrame, metrics: pl.DataFrame) -> list[dict]:
    last = last_steps(scores, metrics).with_columns(longest=pl.col("last_step").max().over("task"))
    short = last.filter(pl.col("last_step") < SHORT_RUN_FRACTION * pl.col("longest")).sort("run")
    return [{"run": run, "file": "", "line": None,
             "problem": f"shorter run: last step {step:,} vs {longest:,} for the longest run of {task}"}
            for run, task, step, longest in short.select("run", "task", "last_step", "longest").iter_rows()]


def _progress(items, enabled: bool, label: str):
    if not enabled:
        yield from items
        return
    from rich.progress import track

    yield from track(items, description=label, transient=True)


def finite_or_none(value: float) -> float | None:
    """JSON-safe float: NaN and inf become None."""
    return value if value is not None and math.isfinite(value) else None
