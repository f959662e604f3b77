"""Published Atari100k runs of other agents, shipped as package data and read as runs.

A method argument `published:<name>` (`published:dreamerv3`, `published:ppo`) stands for the
runs the official DreamerV3 repository publishes for that agent (data/published/README.md:
source, commit, licence, format). Each published record (one game, one seed: the env frames
at which training episodes ended and their scores) becomes one run of task `atari100k_<game>`
with the long table ingest builds from a run dir (step, key `episode/score`, value), so every
later stage treats it as any run. Its path is a name below the data file
(`.../atari100k-dreamerv3.json.gz/atari100k_alien/seed0`): unique per run, never a folder on disk.
"""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path

import numpy as np
import polars as pl

from analysis import atari

PREFIX = "published:"
FOLDER = Path(__file__).parent / "data" / "published"
SOURCES = {"dreamerv3": "atari100k-dreamerv3.json.gz", "ppo": "atari100k-ppo_fixhp.json.gz"}
SCORE_KEY = "episode/score"
UPSTREAM_TASK = "atari_"  # the published files' task prefix: atari_<game>


class PublishedError(ValueError):
    """A `published:` name that is not shipped, or a data file not in the expected format."""


def is_spec(spec: str) -> bool:
    """True for a method argument naming published runs (`published:dreamerv3`)."""
    return str(spec).startswith(PREFIX)


def label(name: str) -> str:
    """The method label of a published agent's runs: `published-dreamerv3`."""
    return f"published-{name}"


def name_of(spec: str) -> str:
    """`published:dreamerv3` -> `dreamerv3`; PublishedError naming the shipped ones otherwise."""
    name = spec[len(PREFIX) :]
    if name not in SOURCES:
        raise PublishedError(
            f"{spec}: no such published agent; expected one of {', '.join(PREFIX + n for n in SOURCES)}"
        )
    return name


@functools.cache
def records(name: str) -> tuple[dict, ...]:
    """The published records of agent `name`, checked: task atari_<game> of the 26 games, an
    int seed, xs (env frames) and ys (scores) of one length, xs not decreasing."""
    path = FOLDER / SOURCES[name]
    with gzip.open(path, "rt") as f:
        data = json.load(f)
    if not isinstance(data, list):
        raise PublishedError(f"{path}: expected a JSON list of runs, got {type(data).__name__}")
    for i, rec in enumerate(data):
        _check_record(path, i, rec)
    return tuple(data)


def _check_record(path: Path, index: int, rec) -> None:
    where = f"{path}: record {index}"
    if not isinstance(rec, dict) or not {"task", "seed", "xs", "ys"} <= set(rec):
        raise PublishedError(f"{where}: expected an object with task, seed, xs and ys")
    if task_of(rec["task"]) is None:
        raise PublishedError(f"{where}: task {rec['task']!r} is not atari_<one of the 26 Atari100k games>")
    if not isinstance(rec["seed"], int) or len(rec["xs"]) != len(rec["ys"]) or not rec["xs"]:
        raise PublishedError(f"{where}: expected an int seed and non-empty xs and ys of one length")
    if np.any(np.diff(np.asarray(rec["xs"], dtype=np.int64)) < 0):
        raise PublishedError(f"{where}: xs (env frames) decrease")


def task_of(upstream: str) -> str | None:
    """`atari_ms_pacman` -> `atari100k_ms_pacman`; None for a task outside the 26 games."""
    game = upstream[len(UPSTREAM_TASK) :] if upstream.startswith(UPSTREAM_TASK) else None
    return atari.PREFIX + game if game in atari.RANDOM_HUMAN else None


def run_path(name: str, task: str, seed: int) -> Path:
    return FOLDER / SOURCES[name] / task / f"seed{seed}"


def entries(spec: str) -> list[tuple[Path, str, int]]:
    """(path, task, seed) of each published run of `spec`, in the file's order."""
    name = name_of(spec)
    return [(run_path(name, task_of(r["task"]), r["seed"]), task_of(r["task"]), r["seed"]) for r in records(name)]


def owns(path: Path) -> bool:
    """True when `path` names a published run (see `run_path`)."""
    path = Path(path)
    return len(path.parts) >= 3 and path.parent.parent.parent == FOLDER and path.parent.parent.name in SOURCES.values()


def scores_table(path: Path) -> pl.DataFrame:
    """The long scores table (step, key, value) of the published run at `path` (`run_path`)."""
    path = Path(path)
    name = next(n for n, f in SOURCES.items() if f == path.parent.parent.name)
    task, seed = path.parent.name, int(path.name.removeprefix("seed"))
    rec = next(r for r in records(name) if task_of(r["task"]) == task and r["seed"] == seed)
    return pl.DataFrame(
        {
            "step": pl.Series(rec["xs"], dtype=pl.Int64),
            "key": pl.Series([SCORE_KEY] * len(rec["xs"]), dtype=pl.Categorical),
            "value": pl.Series(rec["ys"], dtype=pl.Float64),
        }
    )
