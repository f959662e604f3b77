"""Where the toolkit may read and write: inputs stay inside their runs, outputs stay out of them.

A run folder comes from someone else. Four rules keep it from steering the toolkit's files:
- a file of a run is read only if its real path (links followed) lies inside the run's real
  folder: a `config.yaml` or `README.md` linked to a private file elsewhere is never read;
- an output (a report folder, a video, the cache) never lies inside an input run;
- every file is written through `dreamerv3.safefile` (`write`, `replacing`): never inside an
  input, never through a link, by replace;
- a name taken from the data (a task or method label) becomes one plain path component
  (`safe_component`), never a path with `..` or `/` in it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from dreamerv3 import safefile
from dreamerv3.safefile import OutputInInput, UnsafeTarget  # noqa: F401  (the writer's refusals)

NAME_CHARS = re.compile(r"[^A-Za-z0-9._+=-]+")  # what a component taken from data may keep
MAX_COMPONENT = 120  # bytes; file systems allow 255, and the report adds suffixes


def inside(path: Path | str, root: Path | str) -> bool:
    """True when `path`, links followed, is `root` or lies below it (safefile.inside, the one
    rule of every command's writes)."""
    return safefile.inside(path, root)


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
    safefile.refuse_inside(output, runs, flag, what="input run")


def safe_component(name: str, fallback: str = "run") -> str:
    """`name` as one path component: characters outside NAME_CHARS become '_', no leading dot,
    at most MAX_COMPONENT characters (`../../x` -> `_.._x`: a name, never a path)."""
    text = NAME_CHARS.sub("_", str(name)).lstrip(".")
    return text[:MAX_COMPONENT] or fallback
