"""Frames into pictures: labelled grids, panel figures and mp4 files (for SPEC section 5).

Context frames get a green border and imagined frames a red one, as in the trainer's own
open-loop video, so a reader can tell observed from imagined at a glance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GREEN = np.array([0, 200, 0], np.uint8)
RED = np.array([220, 0, 0], np.uint8)


def frame_border(frames: np.ndarray, context: int, width: int = 2) -> np.ndarray:
    """Pad [T, h, w, 3] frames with a border: green for t < context, red after."""
    T = frames.shape[0]
    out = np.pad(frames, [(0, 0), (width, width), (width, width), (0, 0)])
    colours = np.where((np.arange(T) < context)[:, None], GREEN, RED)  # [T, 3]
    mask = np.ones(out.shape[1:3], bool)
    mask[width:-width, width:-width] = False
    out[:, mask] = colours[:, None, :]
    return out


def _text_strip(labels: list[str], cell: int, width: int) -> np.ndarray:
    """A white column with one black label per row of cells, drawn with PIL's default font."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, cell * len(labels)), "white")
    draw = ImageDraw.Draw(img)
    for i, label in enumerate(labels):
        draw.text((4, i * cell + cell // 2 - 6), label[: width // 6], fill="black")
    return np.asarray(img)


def grid_video(rows: list[tuple[str, np.ndarray]], context: int, scale: int = 2,
               label_width: int = 110) -> np.ndarray:
    """Stack rows of sequences into one video: uint8 [T, H, W, 3] with even H and W.

    `rows` is [(label, frames [B, T, h, w, 3])]; row r, column b shows sequence b of row r.
    """
    T = rows[0][1].shape[1]
    lines = []
    for _, frames in rows:
        assert frames.shape[1] == T, ("frames per row", T, frames.shape)
        cells = [frame_border(seq, context) for seq in frames]
        lines.append(np.concatenate(cells, axis=2))
    video = np.concatenate(lines, axis=1)
    video = video.repeat(scale, axis=1).repeat(scale, axis=2)
    cell = video.shape[1] // len(rows)
    strip = _text_strip([label for label, _ in rows], cell, label_width)
    video = np.concatenate([np.broadcast_to(strip, (T, *strip.shape)), video], axis=2)
    H, W = video.shape[1:3]
    return np.pad(video, [(0, 0), (0, H % 2), (0, W % 2), (0, 0)], constant_values=255)


def write_mp4(frames: np.ndarray, path: Path, fps: int = 10) -> Path:
    """Write uint8 [T, H, W, 3] frames as H.264 mp4 (PyAV through imageio)."""
    import imageio.v3 as iio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    H, W = frames.shape[1:3]
    frames = np.pad(frames, [(0, 0), (0, H % 2), (0, W % 2), (0, 0)])
    iio.imwrite(path, np.ascontiguousarray(frames), plugin="pyav", codec="libx264", fps=fps)
    return path


def read_mp4(path: Path) -> np.ndarray:
    """Read an mp4 back as uint8 [T, H, W, 3]."""
    import imageio.v3 as iio

    return iio.imread(Path(path), plugin="pyav")


def default_offsets(context: int, length: int, count: int = 8) -> list[int]:
    """Frames to show in a panel: the first and last observed, then imagined steps spread out."""
    observed = sorted({0, context - 1}) if context > 0 else []
    horizon = length - context
    n_imag = max(1, min(horizon, count - len(observed)))
    imagined = np.unique(np.round(np.geomspace(1, horizon, n_imag)).astype(int) - 1 + context)
    return observed + [int(i) for i in imagined]


def panel_figure(rows: list[tuple[str, np.ndarray]], context: int, offsets: list[int] | None = None,
                 title: str = ""):
    """A matplotlib figure of one sequence: one row per label, one column per chosen frame.

    `rows` is [(label, frames [T, h, w, 3])]. The cells are drawn as one mosaic image (one
    axes, fast to save), with column titles 'obs t' or 'imag +k' and row labels as text.
    """
    import matplotlib.pyplot as plt

    T, h, w = rows[0][1].shape[:3]
    offsets = offsets or default_offsets(context, T)
    gap, pad = 4, 2
    ch, cw = h + 2 * pad + gap, w + 2 * pad + gap
    mosaic = np.full((len(rows) * ch, len(offsets) * cw, 3), 255, np.uint8)
    for r, (_, frames) in enumerate(rows):
        for c, t in enumerate(offsets):
            cell = frame_border(frames[t:t + 1], context - t, pad)[0]
            mosaic[r * ch:r * ch + cell.shape[0], c * cw:c * cw + cell.shape[1]] = cell
    fig = plt.figure(figsize=(0.85 * len(offsets) + 1.3, 0.85 * len(rows) + 0.7))
    ax = fig.add_axes([1.2 / fig.get_figwidth(), 0.05, 1 - 1.25 / fig.get_figwidth(), 0.8])
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    for c, t in enumerate(offsets):
        name = f"obs {t + 1}" if t < context else f"imag +{t - context + 1}"
        ax.text(c * cw + cw / 2, -3, name, ha="center", va="bottom", fontsize=7,
                color="green" if t < context else "red")
    for r, (label, _) in enumerate(rows):
        ax.text(-4, r * ch + ch / 2, label, ha="right", va="center", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=8)
    return fig


# ---- the best seed ---------------------------------------------------------------------


def rank_runs(final, tiebreak: dict[str, float] | None = None) -> list[dict]:
    """Runs best first: by final score, ties by `tiebreak` (run -> a last-window mean), then seed.

    `final` is a stats.final_scores table; runs without a score go last.
    """
    tiebreak = tiebreak or {}
    rows = final.to_dicts()

    def key(row):
        score = row["final_score"]
        tie = tiebreak.get(row["run"])
        return (score is None, -(score or 0.0), tie is None, -(tie or 0.0), row["seed"], row["run"])

    return sorted(rows, key=key)


def seed_table(paths: list[str], window: float = 0.1, tie_window: float = 0.05) -> list[dict]:
    """Every run under `paths`, best first, with its final score and tie-break score.

    Final score: mean episode score over the last `window` of the run's env frames
    (stats.final_scores); ties are broken by the same mean over the last `tie_window`.
    """
    from analysis import ingest, stats

    runs = ingest.discover(paths)
    data = ingest.ingest(runs, metric_keys=["fps/policy", "train/loss/dyn"], cache=True)
    ends = ingest.last_steps(data.scores, data.metrics)
    final = stats.final_scores(data.scores, window, runs, ends)
    tie = stats.final_scores(data.scores, tie_window, runs, ends)
    tiebreak = {r["run"]: r["final_score"] for r in tie.to_dicts()}
    where = {r.name: r.path for r in runs}
    ranked = rank_runs(final, tiebreak)
    for row in ranked:
        row["tie_score"] = tiebreak.get(row["run"])
        row["path"] = Path(where[row["run"]])
    return ranked


def resolve_run(path: str) -> tuple[Path, str]:
    """A single run for open-loop work: the dir itself if it is one, else the best seed under it."""
    folder = Path(path)
    if (folder / "scope").is_dir() or (folder / "ckpt").is_dir():
        return folder, "as given"
    ranked = seed_table([path])
    if ranked[0]["final_score"] is None:
        return ranked[0]["path"], "first run (no run has episode scores)"
    return ranked[0]["path"], f"best seed by final score ({ranked[0]['final_score']:.1f})"
