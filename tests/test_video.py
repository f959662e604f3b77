"""Frames into pictures: borders, grids, mp4 round trips, panel frame choice."""

import numpy as np
import runfactory
from openloop_factory import compose, known_sequences, write_video
from typer.testing import CliRunner

from analysis import video
from cli import app


def test_frame_border_marks_observed_green_and_imagined_red():
    frames = np.full((4, 8, 8, 3), 128, np.uint8)
    out = video.frame_border(frames, context=2, width=2)
    assert out.shape == (4, 12, 12, 3)
    np.testing.assert_array_equal(out[0, 0, 0], video.GREEN)
    np.testing.assert_array_equal(out[3, -1, 5], video.RED)
    np.testing.assert_array_equal(out[:, 2:-2, 2:-2], frames)  # the inside is untouched


def test_grid_video_layout_and_mp4_round_trip(tmp_path):
    B, T = 3, 5
    rows = [(label, np.full((B, T, 16, 16, 3), grey, np.uint8)) for label, grey in (("truth", 60), ("model", 180))]
    grid = video.grid_video(rows, context=2, scale=2, label_width=41)
    cell = (16 + 4) * 2
    assert grid.shape[0] == T and grid.shape[1] == 2 * cell and grid.shape[2] == 41 + 1 + B * cell
    assert grid.shape[1] % 2 == 0 and grid.shape[2] % 2 == 0
    # row 0 is truth (grey 60), row 1 model (grey 180), cells after the label strip
    assert abs(int(grid[0, cell // 2, 41 + cell // 2, 0]) - 60) <= 1
    assert abs(int(grid[0, cell + cell // 2, 41 + cell // 2, 0]) - 180) <= 1
    path = video.write_mp4(grid, tmp_path / "sub" / "grid.mp4", fps=5)
    back = video.read_mp4(path)
    assert back.shape == grid.shape
    assert np.abs(back.astype(float) - grid.astype(float)).mean() < 10


def test_default_offsets_cover_observed_and_imagined():
    offsets = video.default_offsets(5, 50)
    assert offsets[:2] == [0, 4] and offsets[-1] == 49
    assert offsets == sorted(set(offsets)) and len(offsets) <= 8
    assert all(0 <= t < 50 for t in offsets)
    assert video.default_offsets(1, 3) == [0, 1, 2]


def test_panel_figure_saves(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (10, 64, 64, 3)).astype(np.uint8)
    fig = video.panel_figure([("truth", frames), ("model", frames)], context=3, title="seq 1")
    fig.savefig(tmp_path / "panel.png")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "obs 1" in texts and "imag +7" in texts and "truth" in texts and "model" in texts
    assert (tmp_path / "panel.png").stat().st_size > 5000


def test_best_seed_cli_prints_every_seed_and_exports_the_best(tmp_path):

    runfactory.write_study(tmp_path, seeds=3, frames=20_000, episodes=20, log_lines=5, methods=("adapt",))
    truth, pred = known_sequences(2, 8)
    for run in tmp_path.glob("*/seed*"):
        write_video(run, compose(truth, pred, 4))
    runner = CliRunner()
    out = tmp_path / "best.mp4"
    result = runner.invoke(app, ["best-seed", str(tmp_path / "atari100k_alien_adapt"), "--video", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    ranked = [line for line in lines if "final score" in line]
    assert len(ranked) == 3
    scores = [float(line.split("final score ")[1].split()[0]) for line in ranked]
    assert scores == sorted(scores, reverse=True)  # best first
    assert "best:" in result.output and "s" + ranked[0].split("seed ")[1].split()[0] in result.output
    frames = video.read_mp4(out)
    assert frames.shape[0] == 8  # the 10 blank frames the trainer appends are gone
    result = runner.invoke(app, ["best-seed", str(tmp_path / "nothing-here")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
