"""Open-loop input: splitting the trainer's scope video, per-step errors, the exported files."""

import csv
import shutil

import numpy as np
import pytest
from openloop_factory import compose, compose_column, known_sequences, write_video
from typer.testing import CliRunner

from analysis import openloop, runconfig, video
from cli import app

B, T, CONTEXT = 6, 16, 8


@pytest.fixture(scope="module")
def scope_run(tmp_path_factory):
    """A run whose scope holds two open-loop videos: 4 sequences at step 1000, 6 at 2000."""
    run = tmp_path_factory.mktemp("runs") / "atari100k_alien_adapt" / "seed0"
    truth, pred = known_sequences(B, T)
    write_video(run, compose(truth[:4], pred[:4], CONTEXT), steps=(1000,))
    write_video(run, compose(truth, pred, CONTEXT), steps=(2000,))
    return run, truth, pred


def _close(a, b, tol=12.0):
    return np.abs(a.astype(float) - b.astype(float)).mean() < tol


def test_split_finds_sequences_rows_and_context(scope_run):
    run, truth, pred = scope_run
    ol = openloop.from_scope(run)
    assert ol.truth.shape == (B, T, 64, 64, 3), ol.truth.shape
    assert ol.context == CONTEXT and ol.horizon == T - CONTEXT
    assert "step 2000" in ol.source
    for b in range(B):  # each sequence has its own colour: the split kept their order
        assert _close(ol.truth[b], truth[b]), b
        assert _close(ol.pred[b], pred[b]), b
    # row order: the model row (not the truth row) carries the purple square when imagining
    square = (slice(None), slice(CONTEXT, None), slice(32, 48), slice(32, 48))
    assert ol.pred[square][..., 2].mean() > 180 and ol.truth[square][..., 2].mean() < 180


def test_frames_keep_their_order(scope_run):
    run, _, _ = scope_run
    ol = openloop.from_scope(run)
    for t in range(T):  # the white bar sits at x = 3t in frame t
        column_brightness = ol.truth[0, t, 45:60].astype(float).mean(axis=(0, 2))
        assert abs(int(column_brightness.argmax()) - (3 * t + 1)) <= 1, t


def test_column_border_layout_with_black_frames_splits_the_same(tmp_path):
    truth, pred = known_sequences(3, 10)
    write_video(tmp_path, compose_column(truth, pred, 4))
    ol = openloop.from_scope(tmp_path)
    assert ol.truth.shape == (3, 10, 64, 64, 3) and ol.context == 4
    assert _close(ol.truth, truth) and _close(ol.pred, pred)


def test_chosen_step_and_missing_step(scope_run):
    run, _, _ = scope_run
    assert openloop.from_scope(run, step=1000).truth.shape[0] == 4
    with pytest.raises(openloop.OpenLoopError, match="no video at step 5"):
        openloop.from_scope(run, step=5)


def test_missing_or_foreign_video_is_a_clear_error(tmp_path):
    with pytest.raises(openloop.OpenLoopError, match="report-openloop-image.mp4"):
        openloop.from_scope(tmp_path)
    noise = np.random.default_rng(0).integers(0, 120, (6, 64, 96, 3)).astype(np.uint8)
    write_video(tmp_path, noise)
    with pytest.raises(openloop.OpenLoopError, match="no green or red border"):
        openloop.from_scope(tmp_path)


def test_step_errors_known_values():
    truth = np.full((3, 6, 8, 8, 3), 100, np.uint8)
    pred = truth.copy()
    pred[:, 2:] += 10  # every imagined frame off by 10 grey levels
    err = openloop.step_errors(openloop.OpenLoop(truth, pred, 2, "test"))
    assert err["mse"].shape == (3, 4)
    np.testing.assert_allclose(err["mse"], (10 / 255) ** 2)
    np.testing.assert_allclose(err["psnr"], 20 * np.log10(255 / 10))


def test_error_images():
    truth = np.array([[10, 200]], np.uint8)
    pred = np.array([[30, 100]], np.uint8)
    np.testing.assert_array_equal(openloop.error_image(truth, pred), [[137, 77]])
    np.testing.assert_array_equal(openloop.abs_error_image(truth, pred), [[20, 100]])


def test_export_writes_panels_video_and_error_table(scope_run, tmp_path):

    run, _, _ = scope_run
    base = openloop.from_scope(run)
    worse = openloop.OpenLoop(
        base.truth, np.clip(base.pred.astype(int) + 30, 0, 255).astype(np.uint8), base.context, "shifted"
    )
    paths = openloop.export(base, worse, True, tmp_path, reps=200)
    names = sorted(p.name for p in paths["panels"])
    assert names == sorted([f"panel_seq{i}.{ext}" for i in range(1, B + 1) for ext in ("png", "pdf")])
    assert all(p.stat().st_size > 1000 for p in paths["panels"])
    frames = video.read_mp4(paths["video"][0])
    assert frames.shape[0] == T and frames.shape[1] % 2 == 0 and frames.shape[2] % 2 == 0
    with open(tmp_path / "error_vs_horizon.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * (T - CONTEXT)
    mse = {m: np.mean([float(r["mse"]) for r in rows if r["method"] == m]) for m in ("baseline", "adapt")}
    assert mse["adapt"] > mse["baseline"]  # the shifted prediction is worse, and the table says so


def test_openloop_cli_writes_files_and_rejects_missing_paths(scope_run, tmp_path):

    run, _, _ = scope_run
    other = tmp_path / "other" / run.name  # a second run with the same video
    shutil.copytree(run, other)
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["openloop", str(run), str(other), "--out", str(out), "--source", "scope", "--step", "1000"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("panel_seq*.png")) == [f"panel_seq{i}.png" for i in range(1, 5)]
    assert (out / "openloop.mp4").exists() and (out / "error_vs_horizon.pdf").exists()
    result = runner.invoke(app, ["openloop", str(tmp_path / "missing"), str(run), "--out", str(out)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    result = runner.invoke(app, ["openloop", str(run), str(other), "--step", "7", "--source", "scope"])
    assert result.exit_code == 2 and "no video at step 7" in result.output
    result = runner.invoke(app, ["openloop", str(run), str(run), "--out", str(out), "--source", "scope"])
    assert result.exit_code == 2 and "same run" in result.output, result.output


def test_rollout_is_fixed_by_its_seed():
    from dreamerv3 import envs

    config = _debug_config()
    first = openloop.rollout(envs.make_env(config.task, config), 2, 6, seed=3)
    again = openloop.rollout(envs.make_env(config.task, config), 2, 6, seed=3)
    assert first["image"].shape[:2] == (2, 6) and first["action"].shape[:2] == (2, 6)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])


def _debug_config():
    from dreamerv3 import configs as configlib

    parsed = configlib.parse(["--configs", "debug", "--task", "dummy_disc", "--logdir", "unused"])
    return parsed[0] if isinstance(parsed, tuple) else parsed


def test_from_checkpoints_on_a_real_debug_run(real_run):
    """The shared real debug run's world model predicts 3 + 4 frames open loop."""
    run, _ = real_run
    assert openloop.has_checkpoint(run)
    truth, pair = openloop.from_checkpoints({"a": run, "b": run}, context=3, horizon=4, n_seq=2, seed=1)
    assert truth.shape == (2, 7, 64, 64, 3) and truth.dtype == np.uint8
    for ol in pair.values():
        assert ol.pred.shape == truth.shape and ol.context == 3 and ol.horizon == 4
    np.testing.assert_array_equal(pair["a"].pred, pair["b"].pred)  # same model, same data, same seed
    assert openloop.step_errors(pair["a"])["mse"].shape == (2, 4)


def test_auto_falls_back_to_scope_when_a_checkpoint_does_not_load(tmp_path):
    """A checkpoint the agent cannot load (here: garbage) is not the end of `auto`: the scope
    video is used and the source says why; `ckpt` asked explicitly still fails."""

    truth, pred = known_sequences(2, 8)
    runs = []
    for name in ("a", "b"):
        run = tmp_path / name
        (run / "ckpt" / "20260101T000000").mkdir(parents=True)
        (run / "ckpt" / "20260101T000000" / "agent.pkl").write_bytes(b"not a pickle")
        (run / "ckpt" / "20260101T000000" / "done").write_text("")
        (run / "ckpt" / "latest").write_text("20260101T000000")
        write_video(run, compose(truth, pred, 4))
        runs.append(run)
    b, a, same = openloop.load_pair(runs[0], runs[1], "auto")
    assert not same and "checkpoint not used" in b.source and b.truth.shape[0] == 2
    single = openloop.load_single(runs[0], "auto")
    assert "checkpoint not used" in single.source
    with pytest.raises(openloop.OpenLoopError):
        openloop.load_pair(runs[0], runs[1], "ckpt")


def test_from_scope_parses_the_video_the_trainer_wrote(real_run):
    """The shared real debug run's own open-loop report video (written by the trainer through
    agent.compose_video and scope), not a copy of its layout: as many sequences and frames as
    the run's config asks, half of them observed, and the error row the trainer drew matches
    (model - truth + 255) / 2 of the rows parsed beside it."""
    run, _ = real_run
    config = runconfig.read_flat(run / "config.yaml")
    ol = openloop.from_scope(run)
    sequences = min(config["agent.report_openloop"], config["batch_size"])
    frames = config["report_length"]
    assert ol.truth.shape[:2] == (sequences, frames) and ol.truth.shape[-1] == 3, ol.truth.shape
    assert ol.pred.shape == ol.truth.shape and ol.context == frames // 2
    _, video = openloop.read_video(run, None, openloop.VIDEO_KEY)
    rows, _ = openloop.split_video(video)
    drawn = (rows["model"].astype(int) - rows["truth"].astype(int) + 255) // 2
    assert np.abs(drawn - rows["error"].astype(int)).mean() < 12  # H.264 keeps it within a few levels
    assert rows["truth"].std() > 5  # real frames, not blank ones
