"""scope's on-disk layout, written without the `scope` package.

The logger's `scope` output uses the `scope` package when it is installed. Where
it is not (the GPU image has neither `scope` nor its `av` dependency, and their
wheels are 62 MB), `ScopeFiles` writes the same files, so `dreamer-report` and
scope's own reader read the run alike:

  scope/<key with / as ->.float   rows of (int64 step, float64 value), big-endian
  scope/<key>.mp4/<step:020>-<id hex>.mp4   one video per step
  scope/<key>.mp4/index           rows of (int64 step, 8-byte id), native order

The id is 4 bytes of big-endian unix time and 4 random bytes, as scope makes it.
Videos are encoded with PyAV (H.264) when it is importable, else with OpenCV
(MPEG-4 part 2, which PyAV and ffmpeg decode); with neither, videos are skipped
and the writer says so once.
"""

import os
import pathlib
import struct
import sys
import time

import numpy as np

from dreamerv3 import safefile

FLOAT_ROW = ">qd"
INDEX_ROW = "q8s"
FPS = 10


def scope_installed():
    """True where `import scope` would work (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("scope") is not None


def video_encoder():
    """'av', 'cv2' or None: the first library here that can write an mp4."""
    import importlib.util

    for name in ("av", "cv2"):
        if importlib.util.find_spec(name) is not None:
            return name
    return None


def is_scalar(value):
    """A value scope stores as a `.float` row: a 0-d number."""
    return value.ndim == 0 and np.issubdtype(value.dtype, np.number)


def is_video(value):
    """A value scope stores as an mp4: uint8 [T, H, W, 1 or 3]."""
    return value.ndim == 4 and value.dtype == np.uint8 and value.shape[-1] in (1, 3)


def file_name(key, extension):
    return key.replace("/", "-") + "." + extension


def append_floats(path, steps, values):
    """Append (step, value) rows in scope's Float format."""
    buffer = b"".join(struct.pack(FLOAT_ROW, int(s), float(v)) for s, v in zip(steps, values))
    safefile.append(path, buffer)  # never through a link planted in the logdir


def video_id(rng):
    return int(time.time()).to_bytes(4, "big") + rng.bytes(4)


def encode_mp4(frames, path, encoder, fps=FPS):
    """uint8 [T, H, W, C] (C 1 or 3, even H and W) -> an mp4 file at `path`."""
    frames = np.asarray(frames)
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, -1)
    T, H, W, _ = frames.shape
    if encoder == "av":
        import av

        with av.open(str(path), mode="w", format="mp4") as out:
            stream = out.add_stream("h264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
            for frame in frames:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            out.mux(stream.encode())
    elif encoder == "cv2":
        import cv2

        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (W, H))
        if not writer.isOpened():
            raise OSError(f"{path}: OpenCV could not open an mp4v writer")
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[..., ::-1]))  # OpenCV takes BGR
        writer.release()
    else:
        raise ValueError(f"unknown video encoder {encoder!r}")


class ScopeFiles:
    """An elements logger output: `summaries` [(step, name, value)] -> scope files.

    Scalars (`is_scalar`) and videos (`is_video`) are written; other values are
    ignored, where scope's own writer would raise.
    """

    def __init__(self, logdir, encoder="auto", seed=None):
        self.folder = pathlib.Path(logdir) / "scope"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.encoder = video_encoder() if encoder == "auto" else encoder
        self.rng = np.random.default_rng(seed)
        self.warned = False

    def __call__(self, summaries):
        floats = {}
        for step, name, value in summaries:
            value = np.asarray(value)
            if is_scalar(value):
                floats.setdefault(name, ([], []))
                floats[name][0].append(step)
                floats[name][1].append(value)
            elif is_video(value):
                self.write_video(int(step), name, value)
        for name, (steps, values) in floats.items():
            append_floats(self.folder / file_name(name, "float"), steps, values)

    def write_video(self, step, name, frames):
        if self.encoder is None:
            if not self.warned:
                print("scope: neither PyAV nor OpenCV is installed; videos are not written", file=sys.stderr)
                self.warned = True
            return
        folder = self.folder / file_name(name, "mp4")
        folder.mkdir(exist_ok=True)
        ident = video_id(self.rng)
        target = folder / f"{step:020}-{ident.hex()}.mp4"
        partial = target.with_name(target.stem + ".partial.mp4")  # OpenCV picks the container by suffix
        if partial.is_symlink():  # planted: the encoder would write through it
            partial.unlink()
        encode_mp4(frames, partial, self.encoder)
        os.replace(partial, target)  # the index never names a half-written file
        safefile.append(folder / "index", struct.pack(INDEX_ROW, step, ident))
