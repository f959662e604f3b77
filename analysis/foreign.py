"""Runs written by other code: TensorBoard event files and CSV exports, read as ingest's tables.

A folder holding `events.out.tfevents.*` files (and no scores.jsonl / metrics.jsonl) is a
TensorBoard run, as sheeprl, dreamerv3-torch, tensorboardX, torch's SummaryWriter or
tf.summary write them: every scalar summary becomes a metric, the score tag becomes
`episode/score`. The files are read with TensorBoard's own record reader and Event protos
(the `tensorboard` package), never parsed by hand. A `.csv` file named on the command line is an export, one row
per logged point: a step column, value columns, and optional `task`, `method` and `seed`
columns that split it into runs (else the folders name them, as for any run). `KeyMap` says
which tag or column holds the score and which the step, and how many env frames one step is.

Tables are long (step, key, value) as ingest's; problems are rows naming the file. Nothing is
written beside the inputs, no link out of a run is followed, and nothing read is executed.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

from analysis import confine, defaults

SCORE_KEY = defaults.SCORE_KEY
LABEL_COLUMNS = ("task", "method", "seed")
CSV_SUFFIX = ".csv"
LONG = {"step": pl.Int64, "key": pl.Categorical, "value": pl.Float64}


class ForeignError(ValueError):
    """A file that cannot be read as a run at all (the message names it)."""


@dataclass(frozen=True)
class KeyMap:
    """Where the score and the step are in a foreign file.

    score: the tag or column of an episode's score; step: `step` (the event's own step, or the
    CSV column `step`) or the tag / column holding the x value; frames_per_step: env frames per
    unit of that step (4 for agent steps at Atari's action repeat)."""

    score: str = SCORE_KEY
    step: str = "step"
    frames_per_step: float = 1.0

    def tag(self) -> str:
        """A string that changes whenever the map does (part of the cache key)."""
        return f"score={self.score!r} step={self.step!r} frames_per_step={self.frames_per_step!r}"


DEFAULT = KeyMap()


# ---------------------------------------------------------------- TensorBoard


def event_files(run_dir: Path) -> list[Path]:
    """The run's event files that lie inside it (a link out of the run is not one), by name."""
    try:
        names = sorted(p for p in Path(run_dir).iterdir() if defaults.is_event_file(p.name))
    except OSError:
        return []
    return [p for p in names if confine.run_file(run_dir, p)]


def leaving_event_files(run_dir: Path) -> list[Path]:
    """Event files of the run that are links out of it (reported, never read)."""
    try:
        return sorted(
            p for p in Path(run_dir).iterdir() if defaults.is_event_file(p.name) and confine.leaves_run(run_dir, p)
        )
    except OSError:
        return []


@contextlib.contextmanager
def _quiet():
    """TensorBoard's reader logs what it skips; the library stays silent (skips are problems)."""
    logger = logging.getLogger("tensorboard")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


RECORD_FRAME = 16  # bytes around each record of an event file: length (8), its CRC (4), the data's CRC (4)


def scalars_of_file(path: Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str | None]:
    """tag -> (steps int64 (N,), values float64 (N,)) of one event file, in file order, and why
    reading stopped early (None when every byte was read). Scalar summaries of the old form
    (simple_value: tensorboardX, torch) and of tf.summary's tensor form (a one-element numeric
    tensor) both count; images, histograms and text are left out."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.util import tensor_util

    points: dict[str, tuple[list[int], list[float]]] = {}
    used, size = 0, path.stat().st_size
    with _quiet():
        try:
            for raw in RawEventFileLoader(str(path)).Load():
                used += len(raw) + RECORD_FRAME
                event = event_pb2.Event.FromString(raw)
                if not event.HasField("summary"):
                    continue
                for value in event.summary.value:
                    number = _scalar(value, tensor_util)
                    if number is not None:
                        steps, values = points.setdefault(value.tag, ([], []))
                        steps.append(event.step)
                        values.append(number)
        except Exception as error:  # noqa: BLE001 (a damaged record is this file's problem, not a crash)
            return _arrays(points), f"unreadable after {used:,} bytes ({type(error).__name__}); the rest is skipped"
    why = None if used == size else f"truncated or damaged after {used:,} of {size:,} bytes; the rest is skipped"
    return _arrays(points), why


def _scalar(value, tensor_util) -> float | None:
    if value.HasField("simple_value"):
        return float(value.simple_value)
    if value.HasField("tensor"):
        array = tensor_util.make_ndarray(value.tensor)
        if array.size == 1 and np.issubdtype(array.dtype, np.number):
            return float(array.reshape(()))
    return None


def _arrays(points: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        tag: (np.asarray(steps, np.int64), np.asarray(values, np.float64)) for tag, (steps, values) in points.items()
    }


def read_events(run_dir: Path, keys: KeyMap = DEFAULT) -> tuple[pl.DataFrame, pl.DataFrame, list[dict]]:
    """(scores, metrics, problems) of a TensorBoard run dir: all its event files, in name order."""
    problems = [
        {"file": p.name, "line": None, "problem": "a link to a file outside the run folder; skipped"}
        for p in leaving_event_files(run_dir)
    ]
    merged: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for path in event_files(run_dir):
        scalars, why = scalars_of_file(path)
        if why:
            problems.append({"file": path.name, "line": None, "problem": why})
        for tag, series in scalars.items():
            merged.setdefault(tag, []).append(series)
    series = {
        tag: (np.concatenate([s for s, _ in parts]), np.concatenate([v for _, v in parts]))
        for tag, parts in merged.items()
    }
    return _tables(series, keys, problems, "event files", defaults.EVENT_FILE_PREFIX + "*")


# ---------------------------------------------------------------- CSV


def is_csv(spec: str) -> bool:
    return str(spec).lower().endswith(CSV_SUFFIX) and Path(spec).is_file()


def read_csv(path: Path) -> pl.DataFrame:
    """The CSV as read, every column as text first (types are checked per column later). One
    larger than the read of one log is refused before it is read (a sparse file claims any size)."""
    try:
        size = Path(path).stat().st_size
        if size > defaults.MAX_UNZIPPED_LOG_BYTES:
            raise ForeignError(
                f"{path}: {size:,} bytes, more than the {defaults.MAX_UNZIPPED_LOG_BYTES:,} read of one log "
                "(MAX_UNZIPPED_LOG_BYTES, analysis/defaults.py); split the export"
            )
        return pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as error:
        first = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise ForeignError(f"{path}: not a readable CSV export ({first.strip()})") from None


def csv_groups(path: Path) -> list[dict[str, str]]:
    """The runs of a CSV export: one dict of its label columns (task, method, seed present in
    it) per distinct combination, in order of appearance; [{}] when it has none of them."""
    frame = read_csv(path)
    present = [c for c in LABEL_COLUMNS if c in frame.columns]
    if not present:
        return [{}]
    rows = frame.select(present).unique(maintain_order=True)
    return [{c: ("" if v is None else v) for c, v in zip(present, row)} for row in rows.iter_rows()]


def first_line_with(path: Path, column: str, value: str) -> int | None:
    """The file line (1: the header) of the first row whose `column` is `value`; None if none.
    Counts rows, so a quoted value spanning lines shifts it."""
    frame = read_csv(path).with_row_index("row")
    rows = frame.filter(pl.col(column).fill_null("") == value)["row"]
    return int(rows[0]) + 2 if rows.len() else None


def read_csv_run(
    path: Path, labels: dict[str, str], keys: KeyMap = DEFAULT
) -> tuple[pl.DataFrame, pl.DataFrame, list[dict]]:
    """(scores, metrics, problems) of the rows of CSV `path` whose label columns equal `labels`."""
    frame = read_csv(path)
    for column, value in labels.items():
        frame = frame.filter(pl.col(column).fill_null("") == value)
    problems: list[dict] = []
    if keys.step not in frame.columns:
        problems.append(
            {
                "file": path.name,
                "line": None,
                "problem": f"no step column {keys.step!r} (columns: {', '.join(frame.columns)[:200]})",
            }
        )
        return _tables({}, keys, problems, "columns", path.name)
    series = {}
    for column in frame.columns:
        if column in LABEL_COLUMNS or column == keys.step:
            continue
        pair = frame.select(
            pl.col(keys.step).str.strip_chars().cast(pl.Float64, strict=False).alias("s"),
            pl.col(column).str.strip_chars().cast(pl.Float64, strict=False).alias("v"),
            (pl.col(column).str.strip_chars().fill_null("") != "").alias("given"),
        )
        unread = pair.filter(pl.col("given") & (pl.col("v").is_null() | pl.col("s").is_null())).height
        pair = pair.filter(pl.col("given")).drop("given").drop_nulls()
        if unread and column == keys.score:
            problems.append(
                {
                    "file": path.name,
                    "line": None,
                    "problem": f"{column}: {unread} value(s) that are not numbers or have no step; skipped",
                }
            )
        if pair.height:
            series[column] = (pair["s"].to_numpy(), pair["v"].to_numpy())
    return _tables(series, replace(keys, step="step"), problems, "columns", path.name)  # the x column is the step


# ---------------------------------------------------------------- shared


def _tables(
    series: dict[str, tuple[np.ndarray, np.ndarray]], keys: KeyMap, problems: list[dict], what: str, source: str = ""
) -> tuple[pl.DataFrame, pl.DataFrame, list[dict]]:
    """Long tables from tag -> (steps (N,), values (N,)): the score tag as episode/score, every
    other tag a metric; steps mapped to env frames by `keys`."""
    steps_of = _step_map(series, keys, problems, what, source)
    scores, metrics = [], []
    for tag, (steps, values) in series.items():
        frames = steps_of(steps)
        ok = np.isfinite(frames)
        frame = pl.DataFrame(
            {
                "step": np.rint(frames[ok]).astype(np.int64),
                "key": pl.Series([SCORE_KEY if tag == keys.score else tag] * int(ok.sum()), dtype=pl.Categorical),
                "value": values[ok].astype(np.float64),
            },
            schema=LONG,
        )
        (scores if tag == keys.score else metrics).append(frame.sort("step", maintain_order=True))
    if series and keys.score not in series:
        problems.append(
            {
                "file": source,
                "line": None,
                "problem": f"no score {keys.score!r} among the {what} "
                f"({', '.join(sorted(series))[:200]}); give --score-key",
            }
        )
    empty = pl.DataFrame(schema=LONG)
    return (pl.concat(scores) if scores else empty), (pl.concat(metrics) if metrics else empty), problems


def _step_map(series, keys: KeyMap, problems: list[dict], what: str, source: str):
    """steps (N,) -> env frames (N,) float, NaN where a step has no frame count."""
    scale = float(keys.frames_per_step)
    if keys.step == "step":
        return lambda steps: np.asarray(steps, np.float64) * scale
    if keys.step not in series:
        problems.append(
            {
                "file": source,
                "line": None,
                "problem": f"no step {keys.step!r} among the {what}; episodes have no env frame",
            }
        )
        return lambda steps: np.full(len(steps), np.nan)
    own, frames = series[keys.step]
    table = dict(zip(np.asarray(own).tolist(), np.asarray(frames, np.float64) * scale))
    return lambda steps: np.array([table.get(s, np.nan) for s in np.asarray(steps).tolist()], np.float64)
