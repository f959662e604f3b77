"""Figures of the long Alien run, from its run directory through the toolkit.

    .venv/bin/python artifacts/atari100k_alien_long/plot.py

curve.png: episode scores over env frames (rolling mean of 5) against Alien's
random and human scores. losses.png: the world model's reconstruction and KL
losses and the policy's entropy over the same frames.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from analysis import figures, ingest  # noqa: E402

HERE = Path(__file__).parent
LOSSES = {"train/loss/rec": "image reconstruction loss", "train/loss/dyn": "dyn KL (free nats 1)",
          "train/ent/policy": "policy entropy (uniform over 18: 2.89)"}


def main():
    runs = ingest.discover([str(HERE)], names=["baseline"])
    data = ingest.ingest(runs, cache=False)
    figures.plot_score_curves(data.scores, {runs[0].method: "C0"}, smooth=5).savefig(
        HERE / "curve.png", dpi=110, bbox_inches="tight")
    fig, axes = plt.subplots(1, len(LOSSES), figsize=(4.2 * len(LOSSES), 3.2))
    for ax, (key, title) in zip(axes, LOSSES.items()):
        rows = data.metrics.filter(pl.col("key") == key).sort("step")
        ax.plot(rows["step"].to_numpy(), rows["value"].to_numpy(), color="C0")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("env frames")
        if key == "train/loss/rec":
            ax.set_yscale("log")
    axes[-1].axhline(np.log(18), color="gray", ls="--", lw=0.8)
    fig.tight_layout()
    fig.savefig(HERE / "losses.png", dpi=110)


if __name__ == "__main__":
    main()
