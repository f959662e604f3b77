"""Synthetic run directories in the trainer's format (docs/design.md), for tests and benchmarks only.

`write_run` lays out `<root>/<task>_<method>/seed<N>_<timestamp>/` with metrics.jsonl,
scores.jsonl, config.yaml and scope scalar files. The numbers are random draws with a trend:
they exercise the readers and the statistics, they are never results.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np

from analysis import atari

EXTRA_KEYS = [f"train/extra/k{i:02d}" for i in range(40)]


def write_run(
    root: Path,
    task: str = "atari100k_alien",
    method: str = "adapt",
    seed: int = 0,
    frames: int = 400_000,
    episodes: int = 150,
    log_lines: int = 60,
    score_level: float = 1000.0,
    adapt: bool | None = None,
    config: bool = True,
    scope: bool = False,
    extra_keys: int = 10,
    timestamp: str = "20261123T101010",
) -> Path:
    """Write one run dir and return its path."""
    rng = np.random.default_rng(zlib.crc32(f"{task}/{method}/{seed}".encode()))
    run_dir = Path(root) / f"{task}_{method}" / f"seed{seed}_{timestamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    adapt = (method != "baseline") if adapt is None else adapt
    episode_steps = np.sort(rng.choice(np.arange(1000, frames), episodes - 1, replace=False))
    episode_steps = np.append(episode_steps, frames)
    trend = episode_steps / frames
    run_level = score_level * rng.lognormal(0.0, 0.25)  # seeds differ, as real ones do
    score = run_level * (0.3 + 0.7 * trend) * rng.lognormal(0.0, 0.3, episodes)
    with open(run_dir / "scores.jsonl", "w") as f:
        for step, value in zip(episode_steps, score):
            f.write(json.dumps({"step": int(step), "episode/score": float(value), "episode/length": 800.0}) + "\n")
    metric_rows = _metric_rows(rng, frames, log_lines, adapt, extra_keys)
    with open(run_dir / "metrics.jsonl", "w") as f:
        for row in metric_rows:
            f.write(json.dumps(row) + "\n")
    if config:
        (run_dir / "config.yaml").write_text(f"seed: {seed}\ntask: {task}\nmethod: ''\nrun:\n  steps: {frames // 4}\n")
    if scope:
        write_scope(
            run_dir, "train/loss/dyn", [r["step"] for r in metric_rows], [r["train/loss/dyn"] for r in metric_rows]
        )
    return run_dir


def _metric_rows(rng, frames: int, lines: int, adapt: bool, extra_keys: int) -> list[dict]:
    rows = []
    for i, step in enumerate(np.linspace(frames / lines, frames, lines).astype(int)):
        dyn = 1.0 + 2.0 * np.exp(-3 * i / lines) + 0.6 * rng.random() * (rng.random() < 0.25)
        active = float(adapt and i > 3 and dyn > 1.6)
        severity = float(np.clip((dyn - 1.6) / 1.0, 0, 1)) * active
        mask_mean = 1.0 - 0.4 * severity
        row = {
            "step": int(step),
            "train/loss/dyn": float(dyn),
            "train/loss/rep": float(dyn),
            "train/loss/policy": float(rng.normal()),
            "train/loss/value": float(rng.random()),
            "fps/policy": 50.0,
            "fps/train": 200.0,
        }
        if adapt:
            row.update(
                {
                    "train/imag_adapt/active": active,
                    "train/imag_adapt/ratio": float(dyn / 1.5),
                    "train/imag_adapt/ema": 1.5,
                    "train/imag_adapt/severity": severity,
                    "train/imag_adapt/gamma": 1 - 0.15 * severity,
                    "train/imag_adapt/mask_mean": mask_mean,
                    "train/imag_adapt/horizon_eff": 15.0 * mask_mean,
                }
            )
        row.update({key: float(rng.normal()) for key in EXTRA_KEYS[:extra_keys]})
        rows.append(row)
    return rows


def write_scope(run_dir: Path, key: str, steps, values) -> Path:
    """A scope scalar file: rows of big-endian int64 step + float64 value."""
    folder = Path(run_dir) / "scope"
    folder.mkdir(exist_ok=True)
    path = folder / (key.replace("/", "-") + ".float")
    with open(path, "ab") as f:
        for step, value in zip(steps, values):
            f.write(struct.pack(">qd", int(step), float(value)))
    return path


def write_study(
    root: Path, tasks=("atari100k_alien",), seeds: int = 5, methods=("baseline", "adapt"), gain: float = 1.2, **kwargs
) -> dict[str, Path]:
    """Runs for every task x seed x method; the `adapt` method scores `gain` times higher."""
    for task in tasks:
        for method in methods:
            for seed in range(seeds):
                low, high = atari.RANDOM_HUMAN.get(atari.game_of(task) or "", (0.0, 1000.0))
                level = low + 0.3 * (high - low) * (gain if method == "adapt" else 1.0)
                write_run(root, task, method, seed, score_level=level, **kwargs)
    return {m: Path(root) for m in methods}
