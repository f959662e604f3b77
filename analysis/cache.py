"""The ingest cache: parsed runs kept as parquet in a folder of the user's, never in a run dir.

The toolkit only reads run dirs. The cache folder is, in order, `--cache-dir`,
the environment variable DREAMER_REPORT_CACHE, `$XDG_CACHE_HOME/dreamer-report`, or
`~/.cache/dreamer-report`; `--no-cache` turns it off. One file per run dir, named by a hash
of the run's real path and replaced atomically when the run changes; it holds the content
hash of the run's logs, so an edit that keeps size and mtime is still seen. The cache never
removes a file: the only writes are a temp file of its own and a rename onto its entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from analysis import remote

VERSION = "5"  # bumped whenever parsing changes what a run reads as (5: episodes sharing a step all kept)
ENV = "DREAMER_REPORT_CACHE"
TAG = "CACHEDIR.TAG"  # marks the folder as a cache for backup tools (bford.info/cachedir)
TAG_TEXT = "Signature: 8a477f597d28d172789f06886806bc55\n# dreamer-report's ingest cache; safe to delete.\n"


class CacheError(ValueError):
    """A cache folder that cannot be used (e.g. `--cache-dir` names a file)."""


def folder(choice: bool | str | Path | None = True) -> Path | None:
    """The cache folder for `choice`: True = the default, False/None = off, else that path."""
    if choice is None or choice is False:
        return None
    if choice is not True:
        path = Path(choice).expanduser()
        if path.exists() and not path.is_dir():
            raise CacheError(f"--cache-dir {choice}: exists and is not a folder")
        return path
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dreamer-report"


def content_key(sources: Sequence[Path]) -> str:
    """Hash of the names and bytes of a run's source files (hashing runs at ~1 GB/s)."""
    digest = hashlib.sha1(VERSION.encode())
    for path in sources:
        digest.update(f"|{path.name}|".encode())
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def entry(cache: Path, run_dir: Path) -> Path:
    """The cache file of one run dir: named by its real path (a remote run: its URL), so two runs never share one."""
    name = hashlib.sha1(remote.identity(run_dir).encode()).hexdigest()[:24]
    return cache / f"run-{name}.parquet"


def read(path: Path, key: str) -> tuple[pl.DataFrame, pl.DataFrame, list[dict]] | None:
    """(scores, metrics, problems) from an entry whose key matches, else None."""
    try:
        meta = pl.read_parquet_metadata(path)
        if meta.get("dreamer-report-key") != key:
            return None
        both = pl.read_parquet(path)
        problems = json.loads(meta["dreamer-report-problems"])
    except Exception:  # missing, half-written or foreign: parse the run again
        return None
    is_score = both["is_score"]
    return both.filter(is_score).drop("is_score"), both.filter(~is_score).drop("is_score"), problems


def write(path: Path, key: str, tables: tuple[pl.DataFrame, pl.DataFrame, list[dict]]) -> None:
    """Write an entry through a temp file and a rename; a cache that cannot be written is skipped."""
    scores, metrics, problems = tables
    both = pl.concat([scores.with_columns(is_score=pl.lit(True)), metrics.with_columns(is_score=pl.lit(False))])
    meta = {"dreamer-report-key": key, "dreamer-report-problems": json.dumps(problems)}
    tmp, created = path.with_name(f".{path.name}.{os.getpid()}.tmp"), False
    try:
        _make(path.parent)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        created = True
        with os.fdopen(fd, "wb") as f:
            both.write_parquet(f, compression="lz4", metadata=meta)
        os.replace(tmp, path)
    except OSError:
        if created:
            tmp.unlink(missing_ok=True)  # the temp file this call made, nothing else


def _make(cache: Path) -> None:
    """Create the cache folder (tagged) if it is missing."""
    if cache.is_dir():
        return
    cache.mkdir(parents=True, exist_ok=True)
    (cache / TAG).write_text(TAG_TEXT)
