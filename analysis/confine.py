"""Where the toolkit may read and write: inputs stay inside their runs, outputs stay out of them.

A run folder comes from someone else. Three rules keep it from steering the toolkit's files:
- a file of a run is read only if its real path (links followed) lies inside the run's real
  folder: a `config.yaml` or `README.md` linked to a private file elsewhere is never read;
- an output (a report folder, a video, the cache) never lies inside an input run;
- a name taken from the data (a task or method label) becomes one plain path component
  (`safe_component`), never a path with `..` or `/` in it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

NAME_CHARS = re.compile(r"[^A-Za-z0-9._+=-]+")  # what a component taken from data may keep
MAX_COMPONENT = 120  # bytes; file systems allow 255, and the report adds suffixes


class OutputInInput(ValueError):
    """An output path that lies inside an input run; the message names the flag and the run."""


def inside(path: Path | str, root: Path | str) -> bool:
    """True when `path`, links followed, is `root` or lies below it (links of `root` followed too).
    A path not created yet is placed by its existing part."""
    try:
        real, base = Path(path).resolve(), Path(root).resolve()
    except (OSError, RuntimeError):  # a link loop
        return False
    return real == base or base in real.parents


def run_file(run_dir: Path | str, path: Path | str) -> bool:
    """True when `path` can be read as a file of the run: a regular file whose real path is in the run."""
    path = Path(path)
    return path.is_file() and inside(path, run_dir)


def leaves_run(run_dir: Path | str, path: Path | str) -> bool:
    """True when `path` exists but a link takes it outside the run folder."""
    path = Path(path)
    return (path.exists() or path.is_symlink()) and not inside(path, run_dir)


def refuse_inside(output: Path | str, runs: Iterable[Path | str], flag: str) -> None:
    """OutputInInput when `output` would be written inside one of the input `runs`."""
    for run in runs:
        if inside(output, run):
            raise OutputInInput(f"{flag} {output}: inside the input run {run}; write outputs outside the runs "
                                "(nothing was written)")


def safe_component(name: str, fallback: str = "run") -> str:
    """`name` as one path component: characters outside NAME_CHARS become '_', no leading dot,
    at most MAX_COMPONENT characters (`../../x` -> `_.._x`: a name, never a path)."""
    text = NAME_CHARS.sub("_", str(name)).lstrip(".")
    return text[:MAX_COMPONENT] or fallback
