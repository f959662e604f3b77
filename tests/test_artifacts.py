"""The shipped runs in artifacts/: they ingest cleanly and the demo's commands run on them.

Fast paths only (few bootstrap reps, open loop from the scope videos); `make demo`
runs the same commands with the full settings.
"""

import gzip
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from analysis import atari, ingest, mask, readout, runconfig
from cli import app

ARTIFACTS = Path(__file__).parent.parent / "artifacts"
BASE = ARTIFACTS / "atari100k_alien_baseline"
ADAPT = ARTIFACTS / "atari100k_alien_adapt"
LOGGED_KEYS = [
    "train/loss/dyn",
    "train/loss/rep",
    "train/loss/policy",
    "train/loss/value",
    "fps/policy",
    "fps/train",
    *mask.ADAPT_KEYS,
]
runner = CliRunner()


@pytest.fixture(scope="module")
def shipped():
    runs = ingest.discover([str(BASE), str(ADAPT)])
    return runs, ingest.ingest(runs, cache=False)


def test_three_seeds_per_method_each_labelled(shipped):
    runs, _ = shipped
    assert sorted((r.method, r.seed) for r in runs) == [(m, s) for m in ("adapt", "baseline") for s in (0, 1, 2)]
    assert all(r.task == "atari100k_alien" for r in runs)
    for folder in (ARTIFACTS, BASE, ADAPT):
        assert (folder / "README.md").is_file(), f"{folder} has no README saying how its runs were made"


def test_every_run_ingests_with_no_problem(shipped):
    _, data = shipped
    assert data.problems.height == 0, data.problems.to_dicts()
    for run in data.runs:
        keys = set(data.metrics.filter(data.metrics["run"] == run.name)["key"].cast(str).unique())
        assert set(LOGGED_KEYS) <= keys, (run.name, set(LOGGED_KEYS) - keys)
        episodes = data.scores.filter((data.scores["run"] == run.name) & (data.scores["key"] == "episode/score"))
        assert episodes.height >= 2, run.name


def test_mask_diagnostics_are_logged_and_baselines_never_activate(shipped):
    """Every run logs the rule's state; a baseline (hook off) never applies a mask.

    In these short runs the adapt mask never fired either: loss/dyn still falls
    (the optimizer is in its 1000-update warmup), so the EMA lags above it and
    the ratio stays under rel_thresh (artifacts/README.md)."""
    _, data = shipped
    metrics = data.metrics
    for run in data.runs:
        mine = metrics.filter(metrics["run"] == run.name)
        ratio = mine.filter(mine["key"] == "train/imag_adapt/ratio")["value"]
        assert ratio.len() > 0 and ratio.is_finite().all(), run.name
        if run.method == "baseline":
            active = mine.filter(mine["key"] == "train/imag_adapt/active")["value"]
            horizon = mine.filter(mine["key"] == "train/imag_adapt/horizon_eff")["value"]
            assert active.max() == 0.0 and horizon.min() == 15.0, run.name


def test_demo_commands_run_on_the_shipped_runs(tmp_path):
    out = tmp_path / "alien"
    result = runner.invoke(app, ["compare", str(BASE), str(ADAPT), "--out", str(out), "--reps", "500"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reps"] == 500
    html = (out / "report.html").read_text()
    assert "CPU" in html  # the artifacts' data label is printed in the report
    result = runner.invoke(app, ["mask", str(BASE), str(ADAPT), "--out", str(out / "mask")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["openloop", str(BASE), str(ADAPT), "--source", "scope", "--out", str(out / "openloop")]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["best-seed", str(ADAPT), "--source", "scope", "--video", str(out / "best.mp4")])
    assert result.exit_code == 0, result.output
    assert (out / "best.mp4").stat().st_size > 0


CARTPOLE = ARTIFACTS / "cartpole_dreamerv3"


def test_cartpole_runs_reach_the_goal_within_30_minutes():
    """The shipped learning benchmark says what its data shows: every seed's mean return over
    10 episodes reached 200 within 30 minutes of wall time (bench/bench_cartpole.py)."""
    runs = ingest.discover([str(CARTPOLE)])
    assert len(runs) == 3 and all(r.task == "gym_CartPole-v1" for r in runs)
    data = ingest.ingest(runs, cache=False)
    assert data.problems.height == 0, data.problems.to_dicts()
    for run in runs:
        rows = [line.split(",") for line in (run.path / "wall_clock.csv").read_text().splitlines()[1:]]
        seconds, scores = [float(r[1]) for r in rows], [float(r[2]) for r in rows]
        means = [sum(scores[i - 10 : i]) / 10 for i in range(10, len(scores) + 1)]
        reached = [seconds[i + 9] for i, m in enumerate(means) if m >= 200]
        assert reached and reached[0] <= 30 * 60, (run.name, max(means))
        logged = data.scores.filter((data.scores["run"] == run.name) & (data.scores["key"] == "episode/score"))
        assert logged["value"].to_list() == scores, run.name  # the curve is the run's own scores.jsonl


def test_shipped_checkpoints_load_and_predict_open_loop(tmp_path):
    """The best seeds' checkpoints load into the current agent (same parameter shapes)."""
    result = runner.invoke(
        app,
        [
            "openloop",
            str(BASE),
            str(ADAPT),
            "--source",
            "ckpt",
            "--context",
            "5",
            "--horizon",
            "10",
            "--sequences",
            "2",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert list(tmp_path.glob("*.png")), result.output


LONG = ARTIFACTS / "atari100k_alien_long"


def test_long_alien_run_says_what_its_data_shows():
    """Its label's claims: the policy stays at Alien's random level with its entropy near
    uniform, while the world model's losses fell (reconstruction by over 10x, the dynamics KL
    to its free-nats floor). Its numbers are docs/results.md's, linked from the label."""
    runs = ingest.discover([str(LONG)])
    data = ingest.ingest(runs, cache=False)
    assert len(runs) == 1 and data.problems.height == 0, data.problems.to_dicts()
    scores = data.scores.filter(pl.col("key") == "episode/score").sort("step")["value"].to_numpy()
    assert scores.mean() < atari.RANDOM_HUMAN["alien"][0] and scores[-10:].mean() < atari.RANDOM_HUMAN["alien"][0]
    metric = lambda key: data.metrics.filter(pl.col("key") == key).sort("step")["value"].to_numpy()  # noqa: E731
    # The run predates the official metric names; ingest reads its ent/policy and
    # loss/rec under the current ones (analysis/ingest.KEY_ALIASES).
    assert np.all(metric("train/ent/action") > 0.99 * np.log(18))
    rec, dyn = metric("train/loss/image"), metric("train/loss/dyn")
    assert rec[-1] < rec[0] / 10 and dyn.min() < 1.01
    assert "results.md#alien-long-run" in (LONG / "README.md").read_text()


def test_gpu_runs_read_back_and_match_their_label():
    """artifacts/gpu_atari100k_alien_*: the H200 call's two runs (prefill only)."""
    folders = [ARTIFACTS / f"gpu_atari100k_alien_{m}" for m in ("baseline", "adapt")]
    runs = ingest.discover([str(f) for f in folders])
    data = ingest.ingest(runs, cache=False)
    assert data.problems.height == 0, data.problems.to_dicts()
    label = (folders[0] / "README.md").read_text()
    assert "zero updates" in label and "one episode each" in label
    for folder in folders:
        (run,) = [p for p in folder.iterdir() if p.is_dir()]
        rows = [json.loads(line) for line in _log_lines(run, "metrics.jsonl")]
        assert max(row["step"] for row in rows) < 1024 * 4  # still in the 1,024 agent steps of prefill
        assert not any(key.startswith("train/") for row in rows for key in row)  # no update
        assert len(_log_lines(run, "scores.jsonl")) == 1
        config = (run / "config.yaml").read_text()
        assert "deter: 8192" in config  # size200m
        assert "logdir: artifacts/gpu_atari100k_alien_" in config
        assert "/tmp/tmp" not in config + (run / "train.log").read_text()  # no machine paths


def _log_lines(run: Path, name: str) -> list[str]:
    """A shipped run's log lines: the runs are shipped with their logs gzipped (name + .gz)."""
    path = Path(run) / name
    if path.exists():
        return path.read_text().splitlines()
    return gzip.decompress((Path(run) / f"{name}.gz").read_bytes()).decode().splitlines()


def _road_runner(folder):
    """(label, runs sorted by seed, ingested data) of a Road Runner set, which ingests cleanly."""
    label = (folder / "README.md").read_text()
    runs = sorted(ingest.discover([str(folder)]), key=lambda r: r.seed)
    data = ingest.ingest(runs, cache=False)
    assert {r.task for r in runs} == {"atari100k_road_runner"} and data.problems.height == 0
    return label, runs, data


def _bin_means(data, run, low, high):
    scores = data.scores.filter((pl.col("run") == run.name) & (pl.col("key") == "episode/score"))
    inside = scores.filter((pl.col("step") > low) & (pl.col("step") <= high))["value"]
    return inside.mean()


def _last(run, key):
    rows = [json.loads(line) for line in _log_lines(run.path, "metrics.jsonl")]
    return [row for row in rows if key in row][-1]


PUBLISHED_40K = readout.published_bins().filter(pl.col("bin") == 40_000).row(0, named=True)
PUBLISHED_LOW, PUBLISHED_HIGH = PUBLISHED_40K["low"], PUBLISHED_40K["high"]


def test_road_runner_run_stays_at_random_level_as_labelled():
    """The official settings at size1m (label: stays at random level, policy uniform): every
    10k-frame bin's mean at most twice Road Runner's random score, and the policy's normalised
    entropy still near 1 at the end, at the official size1m parameter count."""
    label, runs, data = _road_runner(ARTIFACTS / "atari100k_road_runner_dreamerv3")
    assert "**Label:" in label and "It stayed at\nrandom level" in label and "results.md#road-runner" in label
    (run,) = runs
    per_bin = readout.score_bins(data.scores.with_columns(pl.col(pl.Categorical).cast(pl.String)))
    assert per_bin["score"].max() <= 2 * readout.RANDOM
    last = _last(run, "train/opt/updates")
    assert last["train/opt/param_count"] == 688_004 and last["train/rand/action"] > 0.99


@pytest.mark.parametrize(
    "folder, lr, platform", [("atari100k_road_runner_lr3e-4", 3e-4, "cpu"), ("gpu_road_runner_size12m", 4e-5, "cuda")]
)
def test_road_runner_sets_that_learn_do_as_labelled(folder, lr, platform):
    """lr 3e-4 at size1m and the official settings at size12m (labels: they learn, to the
    published level): random level over the first 20k frames, each seed's mean in (40k, 50k]
    inside the published seeds' range and far above random, the policy far from uniform."""
    label, runs, data = _road_runner(ARTIFACTS / folder)
    assert "**Label:" in label and "results.md#road-runner" in label
    for run in runs:
        config = runconfig.read_flat(Path(run.path) / "config.yaml")
        assert config["agent.opt.lr"] == lr and config["jax.platform"] == platform
        assert config["run.train_ratio"] == 256 and config["logdir"].startswith(f"artifacts/{folder}")
        assert _bin_means(data, run, 0, 20_000) < 4 * readout.RANDOM
        assert PUBLISHED_LOW <= _bin_means(data, run, 40_000, 50_000) <= PUBLISHED_HIGH
        assert _last(run, "train/rand/action")["train/rand/action"] < 0.4
