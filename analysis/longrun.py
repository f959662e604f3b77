"""Figures of one run's world-model losses and policy entropy over env frames.

`loss_figure` draws one panel per key of `LOSSES` (today's metric names; runs that logged the
older `train/loss/rec` and `train/ent/policy` are read under these by `analysis.ingest`), and
raises when a key has no values, so a panel is never silently empty. Used for the long Alien
run's `losses.png` (`dreamer-report results --figures`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import polars as pl

LOSSES = {  # key: panel title
    "train/loss/image": "image reconstruction loss",
    "train/loss/dyn": "dynamics KL (free nats 1)",
    "train/ent/action": "policy entropy (uniform over 18: 2.89)",
}
LOG_SCALE = ("train/loss/image",)
UNIFORM_ENTROPY = float(np.log(18))  # Atari's full action set


def series(metrics: pl.DataFrame, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one key, sorted by step; metrics: ingest's long table."""
    rows = metrics.filter(pl.col("key").cast(pl.String) == key).sort("step")
    return rows["step"].to_numpy(), rows["value"].to_numpy()


def loss_figure(metrics: pl.DataFrame, keys: dict[str, str] = LOSSES):
    """One panel per key over env frames; ValueError naming a key that has no values."""
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.2), squeeze=False)
    for ax, (key, title) in zip(axes[0], keys.items()):
        steps, values = series(metrics, key)
        if not len(values):
            plt.close(fig)
            raise ValueError(f"no values of {key} in the run's metrics")
        ax.plot(steps / 1000, values, color="C0")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("env frames (thousands)")
        if key in LOG_SCALE:
            ax.set_yscale("log")
        if key == "train/ent/action":
            ax.axhline(UNIFORM_ENTROPY, color="gray", ls="--", lw=0.8)
    fig.tight_layout()
    return fig
