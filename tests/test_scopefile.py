"""dreamerv3/scopefile.py writes scope's layout without the scope package: scope's
reader and the toolkit's open-loop reader read it back."""

import importlib.util

import numpy as np
import pytest

from dreamerv3 import logs, scopefile


def frames(T=6, H=32, W=48, seed=0):
    """A smooth moving gradient: survives lossy codecs well enough to compare."""
    y, x = np.mgrid[:H, :W]
    video = [np.stack([(x * 5 + t * 20) % 256, (y * 7) % 256, np.full_like(x, 128)], -1)
             for t in range(T)]
    return np.asarray(video, np.uint8)


def test_scalars_read_back_with_scope(tmp_path):
    from scope import formats
    out = scopefile.ScopeFiles(tmp_path, encoder=None)
    out([(10, "episode/score", np.float32(1.5)), (10, "fps/train", 3),
         (20, "episode/score", np.float64(-2.0))])
    out([(30, "episode/score", np.float32(7.0))])
    steps, values = formats.Float().read(tmp_path / "scope" / "episode-score.float")
    assert list(steps) == [10, 20, 30] and list(values) == [1.5, -2.0, 7.0]
    steps, values = formats.Float().read(tmp_path / "scope" / "fps-train.float")
    assert list(steps) == [10] and list(values) == [3.0]


@pytest.mark.parametrize("encoder", ["av", "cv2"])
def test_video_reads_back_with_the_toolkit(tmp_path, encoder):
    if importlib.util.find_spec(encoder) is None:
        pytest.skip(f"{encoder} is not installed here (the GPU image has cv2, not av)")
    from analysis import openloop
    out = scopefile.ScopeFiles(tmp_path, encoder=encoder, seed=0)
    video = frames()
    out([(40, "report/openloop/image", video)])
    out([(80, "report/openloop/image", video[::-1].copy())])
    pairs = openloop.video_steps(tmp_path)
    assert [s for s, _ in pairs] == [40, 80]
    step, decoded = openloop.read_video(tmp_path)
    assert step == 80 and decoded.shape == video.shape
    error = np.abs(decoded.astype(int) - video[::-1].astype(int)).mean()
    assert error < 12, error  # lossy, but the same picture
    folder = tmp_path / "scope" / "report-openloop-image.mp4"
    assert not list(folder.glob("*.partial"))


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
    monkeypatch.setattr(scopefile, "scope_installed", lambda: True)
    assert not isinstance(logs.scope_output(tmp_path / "b"), scopefile.ScopeFiles)
