"""Synthetic open-loop videos in the trainer's scope layout, for tests only.

`known_sequences` makes truth and prediction frames with a flat colour per sequence (so a
test can tell the sequences apart after H.264) and a white bar that moves one step per frame
(so a test can check frame order). `compose` lays them out with the trainer's own
`dreamerv3.agent.compose_video` (sequences side by side, rows truth / model / error, a border
round each cell, green on observed frames, red on imagined ones). `compose_column` is the
other layout the toolkit reads: one border round each sequence's column and black frames
appended, as the official DreamerV3's report video. `write_video` stores a video with
scope's writer, as the trainer's logger does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PAD = 2


def known_sequences(B: int = 6, T: int = 16, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """truth, pred uint8 [B, T, size, size, 3]; pred adds a purple square on imagined frames."""
    truth = np.zeros((B, T, size, size, 3), np.uint8)
    for b in range(B):
        truth[b] = (30 + 30 * b, 90, 160)
        truth[b, :, 20:40, 10:50] = (200, 200, 60)
    for t in range(T):
        truth[:, t, :, 3 * t : 3 * t + 3] = 250
    pred = truth.copy()
    pred[:, T // 2 :, 30:50, 30:50] = (120, 60, 200)
    return truth, pred


def compose(truth: np.ndarray, pred: np.ndarray, context: int) -> np.ndarray:
    """The trainer's open-loop video [T, 3 (H + 4), B (W + 4), 3], drawn by the trainer's code."""
    from dreamerv3.agent import compose_video

    return compose_video(truth, pred, context, border=PAD)


def compose_column(truth: np.ndarray, pred: np.ndarray, context: int, blank_frames: int = 10) -> np.ndarray:
    """[T + blank_frames, 3 H + 4, B (W + 4), 3]: one border round each sequence's column of
    truth / model / error, then black frames."""
    B, T, h, w, _ = truth.shape
    error = ((pred.astype(np.int16) - truth.astype(np.int16) + 255) // 2).astype(np.uint8)
    pad = [(0, 0), (PAD, PAD), (PAD, PAD), (0, 0)]
    video = np.concatenate(
        [np.pad(np.concatenate((truth[b], pred[b], error[b]), axis=1), pad) for b in range(B)], axis=2
    )
    inside = np.zeros(video.shape[1:3], bool)
    cw = w + 2 * PAD
    for b in range(B):
        inside[PAD : 3 * h + PAD, b * cw + PAD : (b + 1) * cw - PAD] = True
    colours = np.where((np.arange(T) < context)[:, None], [0, 255, 0], [255, 0, 0]).astype(np.uint8)
    video[:, ~inside] = colours[:, None, :]
    return np.concatenate([video, np.zeros_like(video[:blank_frames])], axis=0)


def write_video(run_dir: Path, video: np.ndarray, steps=(1000,), key: str = "report/openloop/image") -> Path:
    """Store `video` at each step with scope's own writer, as the trainer's logger does."""
    from scope import writer

    out = writer.Writer(Path(run_dir), workers=0)
    for step in steps:
        out.add(int(step), {key: video})
        out.flush()
    return Path(run_dir) / "scope" / (key.replace("/", "-") + ".mp4")
