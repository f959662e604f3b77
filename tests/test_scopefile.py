"""dreamerv3/scopefile.py writes scope's layout without the scope package: scope's
reader and the toolkit's open-loop reader read it back, whether av or OpenCV wrote the
video (OpenCV, a test dependency, writes on the GPU image, which lacks av). Where scope or
av is missing (the GPU image), the file is read with OpenCV instead."""

import importlib.util
import struct

import numpy as np
import pytest

from dreamerv3 import logs, scopefile

HAVE = {m: importlib.util.find_spec(m) is not None for m in ("scope", "av", "cv2", "polars")}


def frames(T=6, H=32, W=48):
    """A smooth moving gradient: survives lossy codecs well enough to compare."""
    y, x = np.mgrid[:H, :W]
    video = [np.stack([(x * 5 + t * 20) % 256, (y * 7) % 256, np.full_like(x, 128)], -1) for t in range(T)]
    return np.asarray(video, np.uint8)


def read_floats(path):
    data = path.read_bytes()
    return [struct.unpack_from(">qd", data, i) for i in range(0, len(data), 16)]


def test_scalars_in_scope_float_rows(tmp_path):
    out = scopefile.ScopeFiles(tmp_path, encoder=None)
    out([(10, "episode/score", np.float32(1.5)), (10, "fps/train", 3), (20, "episode/score", np.float64(-2.0))])
    out([(30, "episode/score", np.float32(7.0))])
    path = tmp_path / "scope" / "episode-score.float"
    assert read_floats(path) == [(10, 1.5), (20, -2.0), (30, 7.0)]
    assert read_floats(tmp_path / "scope" / "fps-train.float") == [(10, 3.0)]
    if HAVE["scope"]:
        from scope import formats

        steps, values = formats.Float().read(path)
        assert list(steps) == [10, 20, 30] and list(values) == [1.5, -2.0, 7.0]


def decode(tmp_path):
    """(steps, last video) through the toolkit where it runs, else OpenCV."""
    if HAVE["scope"] and HAVE["av"] and HAVE["polars"]:
        from analysis import openloop

        steps = [s for s, _ in openloop.video_steps(tmp_path)]
        return steps, openloop.read_video(tmp_path)[1]
    import cv2

    folder = tmp_path / "scope" / "report-openloop-image.mp4"
    data = (folder / "index").read_bytes()
    rows = [struct.unpack_from("q8s", data, i) for i in range(0, len(data), 16)]
    step, ident = rows[-1]
    capture = cv2.VideoCapture(str(folder / f"{step:020}-{ident.hex()}.mp4"))
    video = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        video.append(frame[..., ::-1])
    return [s for s, _ in rows], np.asarray(video)


@pytest.mark.parametrize("encoder", ["av", "cv2"])
def test_video_reads_back(tmp_path, encoder):
    """Both writers are test dependencies (the GPU image writes with OpenCV, the CPU venv with av)."""
    out = scopefile.ScopeFiles(tmp_path, encoder=encoder, seed=0)
    video = frames()
    out([(40, "report/openloop/image", video)])
    out([(80, "report/openloop/image", video[::-1].copy())])
    steps, decoded = decode(tmp_path)
    assert steps == [40, 80] and decoded.shape == video.shape
    error = np.abs(decoded.astype(int) - video[::-1].astype(int)).mean()
    assert error < 12, error  # lossy, but the same picture
    folder = tmp_path / "scope" / "report-openloop-image.mp4"
    assert not list(folder.glob("*.partial.mp4"))


def test_no_encoder_skips_videos_and_says_so_once(tmp_path, capsys):
    out = scopefile.ScopeFiles(tmp_path, encoder=None)
    out([(1, "report/openloop/image", frames())])
    out([(2, "report/openloop/image", frames())])
    assert capsys.readouterr().err.count("videos are not written") == 1
    assert not (tmp_path / "scope" / "report-openloop-image.mp4").exists()


def test_logger_falls_back_when_scope_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(scopefile, "scope_installed", lambda: False)
    output = logs.scope_output(tmp_path)
    assert isinstance(output, scopefile.ScopeFiles)
    assert "scope is not installed" in capsys.readouterr().out
    if HAVE["scope"]:
        monkeypatch.setattr(scopefile, "scope_installed", lambda: True)
        assert not isinstance(logs.scope_output(tmp_path / "b"), scopefile.ScopeFiles)
