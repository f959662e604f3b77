"""Frames into pictures: labelled grids, panel figures and mp4 files.

Context frames get a green border and imagined frames a red one, as in the trainer's own
open-loop video, so a reader can tell observed from imagined at a glance.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image, ImageDraw

from dreamerv3 import safefile

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

    img = Image.new("RGB", (width, cell * len(labels)), "white")
    draw = ImageDraw.Draw(img)
    for i, label in enumerate(labels):
        draw.text((4, i * cell + cell // 2 - 6), label[: width // 6], fill="black")
    return np.asarray(img)


def grid_video(rows: list[tuple[str, np.ndarray]], context: int, scale: int = 2, label_width: int = 110) -> np.ndarray:
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

    path = Path(path)
    safefile.refuse_linked(path, "a video")
    path.parent.mkdir(parents=True, exist_ok=True)
    H, W = frames.shape[1:3]
    frames = np.pad(frames, [(0, 0), (0, H % 2), (0, W % 2), (0, 0)])
    iio.imwrite(path, np.ascontiguousarray(frames), plugin="pyav", codec="libx264", fps=fps)
    return path


def read_mp4(path: Path) -> np.ndarray:
    """Read an mp4 back as uint8 [T, H, W, 3]."""

    return iio.imread(Path(path), plugin="pyav")


def default_offsets(context: int, length: int, count: int = 8) -> list[int]:
    """Frames to show in a panel: the first and last observed, then imagined steps spread out."""
    observed = sorted({0, context - 1}) if context > 0 else []
    horizon = length - context
    n_imag = max(1, min(horizon, count - len(observed)))
    imagined = np.unique(np.round(np.geomspace(1, horizon, n_imag)).astype(int) - 1 + context)
    return observed + [int(i) for i in imagined]


def panel_figure(rows: list[tuple[str, np.ndarray]], context: int, offsets: list[int] | None = None, title: str = ""):
    """A matplotlib figure of one sequence: one row per label, one column per chosen frame.

    `rows` is [(label, frames [T, h, w, 3])]. The cells are drawn as one mosaic image (one
    axes, fast to save), with column titles 'obs t' or 'imag +k' and row labels as text.
    """

    T, h, w = rows[0][1].shape[:3]
    offsets = offsets or default_offsets(context, T)
    gap, pad = 4, 2
    ch, cw = h + 2 * pad + gap, w + 2 * pad + gap
    mosaic = np.full((len(rows) * ch, len(offsets) * cw, 3), 255, np.uint8)
    for r, (_, frames) in enumerate(rows):
        for c, t in enumerate(offsets):
            cell = frame_border(frames[t : t + 1], context - t, pad)[0]
            mosaic[r * ch : r * ch + cell.shape[0], c * cw : c * cw + cell.shape[1]] = cell
    fig = plt.figure(figsize=(0.85 * len(offsets) + 1.3, 0.85 * len(rows) + 0.7))
    ax = fig.add_axes([1.2 / fig.get_figwidth(), 0.05, 1 - 1.25 / fig.get_figwidth(), 0.8])
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    for c, t in enumerate(offsets):
        name = f"obs {t + 1}" if t < context else f"imag +{t - context + 1}"
        ax.text(
            c * cw + cw / 2, -3, name, ha="center", va="bottom", fontsize=7, color="green" if t < context else "red"
        )
    for r, (label, _) in enumerate(rows):
        ax.text(-4, r * ch + ch / 2, label, ha="right", va="center", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=8)
    return fig
