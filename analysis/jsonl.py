"""JSONL logs (`metrics.jsonl`, `scores.jsonl`) as long tables: step, key, value.

`read_many` parses many logs in ONE polars NDJSON scan: for logs of about 1 MB, one parse per
file spends most of its time setting up, and the batch scan reads 2-3x faster. The batch result
of a file is used only when it provably holds the whole file: it ends with a newline, every
`:` of its text became a non-null cell (so no key fell outside the sampled schema and no value
was null), its steps strictly increase and its values are finite. Every other file (torn or
unterminated last line, empty, NaN/Infinity, a bad line, repeated or backward steps, keys
seen late) goes through `read_jsonl`, the careful per-file reader, which reports what it finds.

A gzipped log (`metrics.jsonl.gz`) is decompressed into memory (`gzlog.unzip`, at most
MAX_UNZIPPED_LOG_BYTES of analysis/defaults.py) and its bytes go through the same sampling,
batch scan and careful reader, so every problem is found and reported as for the plain file,
named by the .gz file. A gzip stream cut short keeps what it holds up to the cut (as a torn last
line does); a corrupt stream, a file that is not gzip or one that decompresses past the limit
is skipped, reported.
"""

from __future__ import annotations

import io
import json
import mmap
import re
from array import array
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from analysis import defaults, gzlog

SAMPLE_LINES = 4  # lines at the head and at the tail of each file whose keys make the batch schema
MAX_BATCH_CELLS = 32_000_000  # rows x keys of one batch scan (256 MB as float64)
MAX_BATCH_KEYS = 2048  # columns of one batch scan; a file whose sample has more goes to the careful reader
LONG_SCHEMA = {"step": pl.Int64, "key": pl.Categorical, "value": pl.Float64}  # keys repeat: categorical
FILE_COLUMN = "__file__"  # polars' column naming each row's source file in the batch scan


class IngestError(ValueError):
    """Bad input: the message names the path (and line) and what was expected."""


def problem(path: Path, line: int | None, text: str) -> dict:
    """A row of the problems table; scope files are named with their folder."""
    return {"file": path.name if path.parent.name != "scope" else f"scope/{path.name}", "line": line, "problem": text}


# ---------------------------------------------------------------- many files in one scan


def read_many(paths: Sequence[Path]) -> list[tuple[pl.DataFrame, list[dict]]]:
    """(long table, problems) of each path, in order; the batch scan where it is safe.

    Plain files are mapped; gzipped ones are decompressed a few at a time (UNZIP_BATCH_BYTES
    held at once) and parsed from memory by the same code.
    """
    paths = [Path(p) for p in paths]
    done = _read_group([p for p in paths if not gzlog.is_gzip(p)], {})
    memory: dict[str, bytes] = {}
    held = 0
    for path in (p for p in paths if gzlog.is_gzip(p)):
        data, note = gzlog.unzip(path)
        if data is None:
            done[str(path)] = (pl.DataFrame(schema=LONG_SCHEMA), [problem(path, None, note)])
            continue
        memory[str(path)], held = data, held + len(data)
        if note:
            done[str(path)] = (None, [problem(path, None, note)])
        if held >= defaults.UNZIP_BATCH_BYTES:
            done = _merge(done, _read_group([Path(name) for name in memory], memory))
            memory, held = {}, 0
    done = _merge(done, _read_group([Path(name) for name in memory], memory))
    return [done[str(path)] for path in paths]


def _merge(done: dict, parsed: dict) -> dict:
    """Parsed tables with the problems `unzip` found before them kept first."""
    for name, (table, problems) in parsed.items():
        before = done.get(name, (None, []))[1]
        done[name] = (table, before + problems)
    return done


def _read_group(paths: list[Path], memory: dict[str, bytes]) -> dict[str, tuple[pl.DataFrame, list[dict]]]:
    """(long table, problems) by path string; `memory` holds the bytes of files not read from disk."""
    samples = {str(p): s for p in paths if (s := _safe_sample(p, memory.get(str(p)))) is not None}
    colons = {name: count for name, (count, _) in samples.items()}
    tables = {}
    for names, keys in _groups(samples):
        tables.update(_batch(names, colons, keys, memory))
    out = {}
    for path in paths:
        if str(path) in tables:
            out[str(path)] = (tables[str(path)], [])
        else:
            problems: list[dict] = []
            out[str(path)] = (read_jsonl(path, problems, memory.get(str(path))), problems)
    return out


def _groups(samples: dict[str, tuple[int, list[str]]]) -> list[tuple[list[str], dict[str, None]]]:
    """Files in scan batches whose wide table (rows x union of keys) stays within MAX_BATCH_CELLS.

    Files of the same trainer share their keys, so real runs make one batch; files with many
    different keys (damage or another program) get batches of their own instead of a table
    of rows x all keys of all files.
    """
    groups: list[tuple[list[str], dict[str, None]]] = []
    names: list[str] = []
    keys: dict[str, None] = {}
    rows = 0
    for name, (count, found) in samples.items():
        estimate = count // max(1, len(found))  # rows: ':' bytes over keys per line
        wider = {**keys, **dict.fromkeys(found)}
        if names and (len(wider) > MAX_BATCH_KEYS or (rows + estimate) * len(wider) > MAX_BATCH_CELLS):
            groups.append((names, keys))
            names, rows, wider = [], 0, dict.fromkeys(found)
        names.append(name)
        keys, rows = wider, rows + estimate
    return groups + [(names, keys)] if names else groups


def _safe_sample(path: Path, data: bytes | None = None) -> tuple[int, list[str]] | None:
    try:
        return _sample(path) if data is None else _sample_view(data)
    except OSError:  # unreadable: the careful reader reports it
        return None


def _sample(path: Path) -> tuple[int, list[str]] | None:
    """(count of ':' bytes, keys in the head and tail) of a newline-terminated file, else None."""
    with open(path, "rb") as f:
        if f.seek(0, io.SEEK_END) == 0:
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return _sample_view(view)


def _sample_view(view) -> tuple[int, list[str]] | None:
    """_sample of a file's bytes: a mapped file, or a gzipped log decompressed into memory."""
    if not len(view) or view[-1:] != b"\n":
        return None  # empty, or a torn or unterminated last line: the careful reader decides
    count = _count_colons(view)
    lines = _head_lines(view, SAMPLE_LINES) + _tail_lines(view, SAMPLE_LINES)
    keys: dict[str, None] = {}
    for line in lines:
        if len(line) > MAX_LINE_BYTES:
            return None  # the careful reader reports it; it must not widen the batch schema
        try:
            row = json.loads(line) if line.strip() else {}
        except ValueError:
            return None  # the careful reader names the bad line
        if not isinstance(row, dict):
            return None
        keys.update(dict.fromkeys(row))
    if len(keys) > MAX_BATCH_KEYS:
        return None
    return count, list(keys)


def _count_colons(view) -> int:
    """Count of ':' bytes of the whole file, at memory speed (numpy over the mapped pages)."""
    text = np.frombuffer(view, np.uint8)
    count = int(np.count_nonzero(text == ord(":")))
    del text  # the mmap cannot close while numpy holds its buffer
    return count


def _head_lines(view, count: int) -> list[bytes]:
    end = -1
    for _ in range(count):
        end = view.find(b"\n", end + 1)
        if end < 0:
            break
    return view[: end if end >= 0 else len(view)].split(b"\n")


def _tail_lines(view, count: int) -> list[bytes]:
    start = len(view) - 1
    for _ in range(count + 1):
        start = view.rfind(b"\n", 0, start)
        if start < 0:
            break
    return view[start + 1 :].split(b"\n")


def _batch(
    names: list[str], colons: dict[str, int], keys: dict[str, None], memory: dict[str, bytes] | None = None
) -> dict[str, pl.DataFrame]:
    """Long tables of the files the batch scan read whole, by path string.

    Files in `memory` (decompressed logs) are parsed one by one from their bytes, then go on
    as the scanned files do."""
    memory = memory or {}
    schema = {"step": pl.Int64, **{k: pl.Float64 for k in keys if k not in ("step", FILE_COLUMN)}}
    wide = None
    if not any(n in memory for n in names):  # polars scans many files in one go, not many buffers
        try:
            wide = pl.scan_ndjson(names, schema=schema, include_file_paths=FILE_COLUMN).collect()
        except Exception:  # a bad file spoils the scan: parse one by one, the bad ones go careful
            pass
    if wide is None:
        parsed = [w for w in (_scan_one(n, schema, memory.get(n)) for n in names) if w is not None]
        if not parsed:
            return {}
        wide = pl.concat(parsed)
    values = [c for c in schema if c != "step"]
    single = np.array([re.match(EPISODE_KEY, k) is None for k in values], bool)  # keys logged once per step
    files = wide.select(pl.col(FILE_COLUMN).rle()).unnest(FILE_COLUMN)  # rows of each file, in scan order
    steps = wide["step"].fill_null(0).to_numpy()
    step_null = wide["step"].is_null().to_numpy()
    matrix = wide.select(values).to_numpy()  # rows x keys, null -> NaN (a JSON text cannot hold NaN)
    pieces, spans, start, offset = [], {}, 0, 0
    for rows, name in files.iter_rows():
        block = slice(start, start + rows)
        piece = _long_block(steps[block], matrix[block])
        start += rows
        whole = len(piece[0]) + rows - step_null[block].sum() == colons[name]  # every ':' became a cell
        if (
            whole
            and not step_null[block].any()
            and _in_order(steps[block], matrix[block][:, single])
            and np.isfinite(piece[2]).all()
        ):
            spans[name] = (offset, len(piece[0]))
            pieces.append(piece)
            offset += len(piece[0])
    if not pieces:
        return {}
    step, code, value = (np.concatenate(column) for column in zip(*pieces))
    key = pl.Series("key", values, pl.Categorical).gather(pl.Series(code))  # codes, never strings
    long = pl.DataFrame({"step": step, "key": key, "value": value}, schema=LONG_SCHEMA)
    return {name: long.slice(offset, length) for name, (offset, length) in spans.items()}


def _in_order(steps: np.ndarray, once: np.ndarray) -> bool:
    """Steps never go back, and where lines share a step (episodes of several envs) no key of
    `once` (rows x keys logged once per step, NaN where absent) has two values: the fast path
    then gives what the careful reader gives."""
    gaps = np.diff(steps)
    if (gaps < 0).any():
        return False
    if not (gaps == 0).any():
        return True
    starts = np.flatnonzero(np.concatenate([[True], gaps != 0]))
    return bool((np.add.reduceat(~np.isnan(once), starts, axis=0) <= 1).all()) if once.shape[1] else True


def _long_block(steps: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """step, key index, value of one file's non-null cells: key by key, each in file order (as `unpivot`)."""
    values = matrix.T.ravel()
    kept = ~np.isnan(values)
    keys = np.repeat(np.arange(matrix.shape[1], dtype=np.uint32), len(steps))
    return np.tile(steps, matrix.shape[1])[kept], keys[kept], values[kept]


def _scan_one(name: str, schema: dict, data: bytes | None = None) -> pl.DataFrame | None:
    try:
        source = name if data is None else io.BytesIO(data)
        return pl.read_ndjson(source, schema=schema).with_columns(pl.lit(name).alias(FILE_COLUMN))
    except Exception:
        return None


# ---------------------------------------------------------------- one file, carefully


def read_jsonl(path: Path, problems: list[dict], data: bytes | None = None) -> pl.DataFrame:
    """A JSONL log as a long table (step, key, value), newest value kept per (step, key).

    Line by line, so every kind of damage is a problem of its own and the rest is kept: a line
    that is not a JSON object (e.g. a write cut by a crash and glued to the next one), a bad
    `step`, a value that is not a number, a key twice in one object, a line over
    MAX_LINE_BYTES. Memory grows with the numbers kept, never with the width of a bad line.
    `data`: the file's bytes when they are not read from `path` (a decompressed .gz).
    """
    findings = _Findings(path)
    columns = (array("q"), array("I"), array("d"))  # step, key code, value
    codes: dict[str, int] = {}
    line_steps, line_numbers = array("q"), array("q")
    value_lines = array("q")  # for each value, the index of its line in line_steps
    seen_text = False
    try:
        f = open(path, "rb") if data is None else io.BytesIO(data)
    except OSError as error:
        problems.append(problem(path, None, f"cannot be read ({error.strerror or error}); skipped"))
        return pl.DataFrame(schema=LONG_SCHEMA)
    with f:
        for number, line, size, whole in _lines(f, MAX_LINE_BYTES):
            if line is not None and not line.strip():
                continue
            seen_text = True
            if not whole:
                row = _decode_tail(line, size, number, findings)
            elif line is None:
                findings.add(number, f"line of {size:,} bytes, longer than {MAX_LINE_BYTES:,}; skipped")
                continue
            else:
                row = _decode(line, number, findings)
            if row is None:
                continue
            step = _step(row.get("step", _MISSING), number, findings)
            if step is None:
                continue
            line_steps.append(step)
            line_numbers.append(number)
            before = len(columns[0])
            _add_values(row, step, number, codes, columns, findings)
            value_lines.extend([len(line_steps) - 1] * (len(columns[0]) - before))
    if not seen_text:
        problems.append(problem(path, None, "empty file"))
        return pl.DataFrame(schema=LONG_SCHEMA)
    problems += findings.rows()
    return _to_long(path, columns, list(codes), (line_steps, line_numbers, value_lines), problems)


def decode_line(line: bytes) -> tuple[int | None, dict[str, float], list[str]]:
    """One whole log line under read_jsonl's rules: (step or None if the line is skipped,
    its numeric values, the problems found). For readers that get lines one at a time (watch)."""
    if len(line) > MAX_LINE_BYTES:
        return None, {}, [f"line of {len(line):,} bytes, longer than {MAX_LINE_BYTES:,}; skipped"]
    findings = _Findings(Path("-"))
    row = _decode(line, 0, findings)
    step = None if row is None else _step(row.get("step", _MISSING), 0, findings)
    values: dict[str, float] = {}
    if step is not None:
        codes: dict[str, int] = {}
        columns = (array("q"), array("I"), array("d"))
        _add_values(row, step, 0, codes, columns, findings)
        values = {key: columns[2][i] for key, i in codes.items()}
    return step, values, list(findings.seen)


MAX_LINE_BYTES = 1 << 20  # a real log line is a few KB; a longer one is damage, not data
GLUE_TRIES = 3  # record starts tried inside a line that does not parse
_MISSING = object()


class _Findings:
    """One file's damage, counted per kind: a million bad lines make one problem row, not a million."""

    def __init__(self, path: Path):
        self.path = path
        self.seen: dict[str, list[int]] = {}  # text -> [count, first line]

    def add(self, line: int, text: str) -> None:
        entry = self.seen.setdefault(text, [0, line])
        entry[0] += 1

    def rows(self) -> list[dict]:
        return [
            problem(self.path, first, text if count == 1 else f"{text} ({count:,} lines; the first is given)")
            for text, (count, first) in self.seen.items()
        ]


def _lines(f, limit: int):
    """(number, line or None if longer than `limit`, size, newline-terminated) of each line.

    Reads at most `limit + 1` bytes at a time, so a line of gigabytes costs no memory.
    """
    number = 0
    while True:
        line = f.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) <= limit or line.endswith(b"\n"):
            yield number, line, len(line), line.endswith(b"\n")
            continue
        size = len(line)
        while line and not line.endswith(b"\n"):
            line = f.readline(limit + 1)
            size += len(line)
        yield number, None, size, line.endswith(b"\n")


def _loads(text: bytes) -> tuple[object, list[str]]:
    """json.loads that also names the keys repeated inside one object (plain json keeps the last silently)."""
    repeated: list[str] = []

    def pairs(items):
        obj = dict(items)
        if len(obj) < len(items):
            counts = Counter(k for k, _ in items)
            repeated.extend(k for k, n in counts.items() if n > 1)
        return obj

    return json.loads(text, object_pairs_hook=pairs), repeated


def _decode(line: bytes, number: int, findings: _Findings) -> dict | None:
    """The object of one whole line, or None with the reason recorded."""
    try:
        row, repeated = _loads(line)
    except (ValueError, RecursionError):
        return _glued(line, number, findings)
    if not isinstance(row, dict):
        findings.add(number, f"{_kind(row)} where a JSON object was expected; line skipped")
        return None
    for key in repeated:
        findings.add(number, f"key {key!r} twice in one object; the last value kept")
    return row


def _glued(line: bytes, number: int, findings: _Findings) -> dict | None:
    """A line a killed writer cut short, glued to the next record: keep that record if it is whole.

    Records start with `{"step"` (this trainer's and the official logger's key order); only the
    first GLUE_TRIES such starts are tried, so a hostile line costs a few parses, not one per byte.
    """
    start = line.find(b'{"step"', 1)
    for _ in range(GLUE_TRIES):
        if start < 0:
            break
        try:
            row, _ = _loads(line[start:])
        except (ValueError, RecursionError):
            row = None
        if isinstance(row, dict):
            findings.add(number, f"a record cut short ({start:,} bytes) glued to the next one; the cut part skipped")
            return row
        start = line.find(b'{"step"', start + 1)
    findings.add(number, "not a JSON object (a write cut short?); line skipped")
    return None


def _decode_tail(line: bytes | None, size: int, number: int, findings: _Findings) -> dict | None:
    """The last line has no newline: keep it if it is a whole JSON object with a step, else report it torn."""
    row = None
    if line is not None:
        try:
            row, _ = _loads(line)
        except (ValueError, RecursionError):
            pass
    if not isinstance(row, dict) or "step" not in row:
        findings.add(number, f"torn last line ({size:,} bytes) skipped")
        return None
    return row


def _step(value, number: int, findings: _Findings) -> int | None:
    """The line's step as an int64, or None (line skipped) with the reason recorded."""
    if value is _MISSING:
        findings.add(number, "no 'step' field; line skipped")
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        findings.add(number, f"'step' is {_kind(value)}, expected a whole number; line skipped")
        return None
    if not 0 <= value < 2**63:
        findings.add(number, f"'step' {value} is outside 0 .. 2**63-1; line skipped")
        return None
    return value


def _add_values(row: dict, step: int, number: int, codes: dict, columns: tuple, findings: _Findings) -> None:
    """Append the line's numeric values to the long columns; other values are recorded and skipped."""
    steps, keys, values = columns
    for key, value in row.items():
        if key == "step":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            findings.add(number, f"{key}: {_kind(value)}, expected a number; value skipped")
            continue
        try:
            value = float(value)
        except OverflowError:  # an integer of hundreds of digits
            findings.add(number, f"{key}: an integer too large for a float; value skipped")
            continue
        steps.append(step)
        keys.append(codes.setdefault(key, len(codes)))
        values.append(value)


def resume_repeats(steps: np.ndarray, keys: np.ndarray, record_steps: np.ndarray, record_of: np.ndarray) -> np.ndarray:
    """Which values a resumed process wrote again: bool per value.

    steps, keys: (N,) step and key code of each value; record_steps: (R,) step of each record
    (line) in file order; record_of: (N,) the record of each value. The step going back marks a
    new process (a resume whose log was not trimmed, as this trainer's `logs.trim` does); an
    earlier process's values of a key at a step are repeats when a later process logged that
    key at that step again. Values of one process at one step all stay: with several envs,
    episodes end at the same step.
    """
    if not record_steps.size or not (np.diff(record_steps) < 0).any():
        return np.zeros(len(steps), bool)
    process = np.concatenate([[0], np.cumsum(np.diff(record_steps) < 0)])[record_of]
    table = pl.DataFrame({"step": steps, "key": keys, "process": process})
    newest = pl.col("process").max().over("step", "key")
    return table.select(pl.col("process") < newest).to_series().to_numpy()


EPISODE_KEY = r"^[a-z_]*episode/"  # episode/score, eval_episode/length: one value per finished episode


def one_value_per_step(path: Path, long: pl.DataFrame, problems: list[dict]) -> pl.DataFrame:
    """Episode keys keep every value of a step (one per episode); any other key logged twice at
    one step keeps the newest, reported (the trainer logs a metric once per step)."""
    if not long["step"].is_duplicated().any():  # only then can a (step, key) pair repeat
        return long
    episode = pl.col("key").cast(pl.String).str.contains(EPISODE_KEY)
    kept = long.filter(episode | pl.struct("step", "key").is_last_distinct())
    if kept.height < long.height:
        problems.append(
            problem(
                path,
                None,
                f"{long.height - kept.height} repeated (step, key) values of non-episode keys; kept the newest",
            )
        )
    return kept


def _kind(value) -> str:
    """How a JSON value is named in a problem: 'a string ('30')', 'a boolean', 'null', ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        shown = value if len(value) <= 20 else value[:20] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"[:40]
    return {dict: "an object", list: "a list"}.get(type(value), type(value).__name__)


def _to_long(path: Path, columns: tuple, keys: list[str], lines: tuple, problems: list[dict]) -> pl.DataFrame:
    """The long table in key-major file order (as the batch scan gives it); resume repeats dropped.

    `lines`: (step of each line, its line number, for each value the index of its line)."""
    steps, codes, values = (
        np.frombuffer(c, dtype) if len(c) else np.zeros(0, dtype)
        for c, dtype in zip(columns, (np.int64, np.uint32, np.float64))
    )
    line_steps, line_numbers, value_lines = (
        np.frombuffer(c, np.int64) if len(c) else np.zeros(0, np.int64) for c in lines
    )
    back = np.flatnonzero(np.diff(line_steps) < 0)
    if back.size:
        problems.append(
            problem(path, int(line_numbers[back[0] + 1]), f"step goes backwards {back.size}x (resumed run?)")
        )
    logged_again = resume_repeats(steps, codes, line_steps, value_lines)
    if logged_again.any():
        problems.append(
            problem(
                path,
                None,
                f"{int(logged_again.sum())} values logged again after a resume "
                "(their steps were written twice); kept the newest",
            )
        )
    order = np.argsort(codes, kind="stable")
    order = order[~logged_again[order]]
    key = pl.Series("key", keys, pl.Categorical).gather(pl.Series(codes[order]))
    long = pl.DataFrame({"step": steps[order], "key": key, "value": values[order]}, schema=LONG_SCHEMA)
    long = one_value_per_step(path, long, problems)
    if back.size:
        long = long.sort(["key", "step"], maintain_order=True)
    if not long["value"].is_finite().all():
        bad = long.filter(~pl.col("value").is_finite()).group_by("key").len().sort("key")
        for name, count in bad.iter_rows():
            problems.append(problem(path, None, f"{count} NaN/inf values of {name}"))
    return long
