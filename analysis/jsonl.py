"""JSONL logs (`metrics.jsonl`, `scores.jsonl`) as long tables: step, key, value.

`read_many` parses many logs in ONE polars NDJSON scan: for logs of about 1 MB, one parse per
file spends most of its time setting up, and the batch scan reads 2-3x faster. The batch result
of a file is used only when it provably holds the whole file: it ends with a newline, every
`:` of its text became a non-null cell (so no key fell outside the sampled schema and no value
was null), its steps strictly increase and its values are finite. Every other file (torn or
unterminated last line, empty, NaN/Infinity, a bad line, repeated or backward steps, keys
seen late) goes through `read_jsonl`, the careful per-file reader, which reports what it finds.
"""

from __future__ import annotations

import io
import json
import mmap
from pathlib import Path
from typing import Sequence

import numpy as np
import polars as pl

SCHEMA_LINES = 100  # lines polars reads to guess the schema before the checked fast parse
SAMPLE_LINES = 4  # lines at the head and at the tail of each file whose keys make the batch schema
LONG_SCHEMA = {"step": pl.Int64, "key": pl.Categorical, "value": pl.Float64}  # keys repeat: categorical
FILE_COLUMN = "__file__"  # polars' column naming each row's source file in the batch scan


class IngestError(ValueError):
    """Bad input: the message names the path (and line) and what was expected."""


def problem(path: Path, line: int | None, text: str) -> dict:
    """A row of the problems table; scope files are named with their folder."""
    return {"file": path.name if path.parent.name != "scope" else f"scope/{path.name}", "line": line, "problem": text}


# ---------------------------------------------------------------- many files in one scan


def read_many(paths: Sequence[Path]) -> list[tuple[pl.DataFrame, list[dict]]]:
    """(long table, problems) of each path, in order; the batch scan where it is safe."""
    paths = [Path(p) for p in paths]
    colons, keys = {}, {}
    for path in paths:
        sample = _sample(path)
        if sample is not None:
            colons[str(path)], found = sample
            keys.update(dict.fromkeys(found))
    tables = _batch(list(colons), colons, keys) if colons else {}
    out = []
    for path in paths:
        if str(path) in tables:
            out.append((tables[str(path)], []))
        else:
            problems: list[dict] = []
            out.append((read_jsonl(path, problems), problems))
    return out


def _sample(path: Path) -> tuple[int, list[str]] | None:
    """(count of ':' bytes, keys in the head and tail) of a newline-terminated file, else None."""
    with open(path, "rb") as f:
        if f.seek(0, io.SEEK_END) == 0:
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
            if view[-1:] != b"\n":
                return None  # torn or unterminated last line: the careful reader decides
            count = _count_colons(view)
            lines = _head_lines(view, SAMPLE_LINES) + _tail_lines(view, SAMPLE_LINES)
    keys: dict[str, None] = {}
    for line in lines:
        try:
            row = json.loads(line) if line.strip() else {}
        except ValueError:
            return None  # the careful reader names the bad line
        if not isinstance(row, dict):
            return None
        keys.update(dict.fromkeys(row))
    return count, list(keys)


def _count_colons(view: mmap.mmap) -> int:
    """Count of ':' bytes of the whole file, at memory speed (numpy over the mapped pages)."""
    text = np.frombuffer(view, np.uint8)
    count = int(np.count_nonzero(text == ord(":")))
    del text  # the mmap cannot close while numpy holds its buffer
    return count


def _head_lines(view: mmap.mmap, count: int) -> list[bytes]:
    end = -1
    for _ in range(count):
        end = view.find(b"\n", end + 1)
        if end < 0:
            break
    return view[: end if end >= 0 else len(view)].split(b"\n")


def _tail_lines(view: mmap.mmap, count: int) -> list[bytes]:
    start = len(view) - 1
    for _ in range(count + 1):
        start = view.rfind(b"\n", 0, start)
        if start < 0:
            break
    return view[start + 1:].split(b"\n")


def _batch(names: list[str], colons: dict[str, int], keys: dict[str, None]) -> dict[str, pl.DataFrame]:
    """Long tables of the files the batch scan read whole, by path string."""
    schema = {"step": pl.Int64, **{k: pl.Float64 for k in keys if k not in ("step", FILE_COLUMN)}}
    try:
        wide = pl.scan_ndjson(names, schema=schema, include_file_paths=FILE_COLUMN).collect()
    except Exception:  # a bad file spoils the scan: parse one by one, the bad ones go careful
        parsed = [w for w in (_scan_one(n, schema) for n in names) if w is not None]
        if not parsed:
            return {}
        wide = pl.concat(parsed)
    values = [c for c in schema if c != "step"]
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
        if whole and not step_null[block].any() and (np.diff(steps[block]) > 0).all() and np.isfinite(piece[2]).all():
            spans[name] = (offset, len(piece[0]))
            pieces.append(piece)
            offset += len(piece[0])
    if not pieces:
        return {}
    step, code, value = (np.concatenate(column) for column in zip(*pieces))
    key = pl.Series("key", values, pl.Categorical).gather(pl.Series(code))  # codes, never strings
    long = pl.DataFrame({"step": step, "key": key, "value": value}, schema=LONG_SCHEMA)
    return {name: long.slice(offset, length) for name, (offset, length) in spans.items()}


def _long_block(steps: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """step, key index, value of one file's non-null cells: key by key, each in file order (as `unpivot`)."""
    values = matrix.T.ravel()
    kept = ~np.isnan(values)
    keys = np.repeat(np.arange(matrix.shape[1], dtype=np.uint32), len(steps))
    return np.tile(steps, matrix.shape[1])[kept], keys[kept], values[kept]


def _scan_one(name: str, schema: dict) -> pl.DataFrame | None:
    try:
        return pl.read_ndjson(name, schema=schema).with_columns(pl.lit(name).alias(FILE_COLUMN))
    except Exception:
        return None


# ---------------------------------------------------------------- one file, carefully


def read_jsonl(path: Path, problems: list[dict]) -> pl.DataFrame:
    """A JSONL log as a long table (step, key, value), newest value kept per (step, key)."""
    data = path.read_bytes()
    if not data.strip():
        problems.append(problem(path, None, "empty file"))
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
        problems.append(problem(path, number, f"torn last line ({len(tail)} bytes) skipped"))
        return None
    row = {k: float(v) if k != "step" else v for k, v in row.items() if isinstance(v, (int, float))}
    return pl.from_dicts([row])


def _to_long(path: Path, wide: pl.DataFrame, problems: list[dict]) -> pl.DataFrame:
    if wide.height == 0 or "step" not in wide.columns:
        if wide.height:
            problems.append(problem(path, None, "no 'step' field; file ignored"))
        return pl.DataFrame(schema=LONG_SCHEMA)
    numeric = [c for c, t in wide.schema.items() if c != "step" and t.is_numeric()]
    steps = wide["step"].cast(pl.Int64)
    back = np.flatnonzero(np.diff(steps.to_numpy()) < 0)
    if back.size:
        problems.append(problem(path, int(back[0]) + 2, f"step goes backwards {back.size}x (resumed run?)"))
    long = (
        wide.lazy().select(pl.col("step").cast(pl.Int64), *[pl.col(c).cast(pl.Float64) for c in numeric])
        .unpivot(index="step", variable_name="key", value_name="value")
        .drop_nulls("value").with_columns(pl.col("key").cast(pl.Categorical)).collect()
    )
    if steps.is_duplicated().any():  # only then can a (step, key) pair repeat
        deduped = long.unique(subset=["step", "key"], keep="last", maintain_order=True)
        if deduped.height < long.height:
            problems.append(problem(path, None, f"{long.height - deduped.height} repeated (step, key) values; kept the newest"))
        long = deduped
    if back.size:
        long = long.sort(["key", "step"], maintain_order=True)
    if not long["value"].is_finite().all():
        bad = long.filter(~pl.col("value").is_finite()).group_by("key").len().sort("key")
        for key, count in bad.iter_rows():
            problems.append(problem(path, None, f"{count} NaN/inf values of {key} (kept as they are)"))
    return long

