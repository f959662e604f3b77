"""The run loop with a fake agent: files written, resume, kill, eval scripts."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from fakes import IMAG_ADAPT_KEYS, FakeAgent

from dreamerv3 import checkpoint, main, restore, run
from dreamerv3 import configs as configlib

TESTS = pathlib.Path(__file__).parent
EPISODE = 40  # dummy episode length; each episode takes EPISODE + 1 agent steps


def args(logdir, steps, *extra):
    return [
        "--logdir",
        str(logdir),
        "--configs",
        "debug",
        "--task",
        "dummy_disc",
        "--run.steps",
        str(steps),
        "--env.dummy.length",
        str(EPISODE),
        *extra,
    ]


def read_jsonl(path):
    return [json.loads(line) for line in pathlib.Path(path).read_text().splitlines()]


def expected_episode_steps(start, end):
    """Agent steps at which episodes end when the envs (re)start at `start`."""
    return list(range(start + EPISODE, end + 1, EPISODE + 1))


def ckpt_step(logdir):
    return int(checkpoint.newest(logdir / "ckpt").name.rsplit("-", 1)[1])


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("run") / "dummy_fake" / "seed0"
    assert main.main(args(logdir, 300), agent_cls=FakeAgent) == 0
    first = {
        "scores": read_jsonl(logdir / "scores.jsonl"),
        "replay": checkpoint.read_item(checkpoint.newest(logdir / "ckpt"), "replay")[0]["counts"].tolist(),
        "ckpt": ckpt_step(logdir),
    }
    assert main.main(args(logdir, 600), agent_cls=FakeAgent) == 0
    return logdir, first


def test_run_writes_every_file(resumed_run):
    logdir, _ = resumed_run
    assert (logdir / "config.yaml").exists()
    metrics = read_jsonl(logdir / "metrics.jsonl")
    keys = set().union(*metrics)
    assert {"train/loss/dyn", "fps/policy", "fps/train", "replay/size"} <= keys
    assert {f"train/imag_adapt/{k}" for k in IMAG_ADAPT_KEYS} <= keys
    parts = ("policy", "env", "sample", "train", "writeback")
    assert {f"timer/{p}/{s}" for p in parts for s in ("mean", "frac", "count")} <= keys
    timed = [m for m in metrics if m.get("timer/train/count")]
    assert timed and all(0 <= sum(m[f"timer/{p}/frac"] for p in parts) <= 1.01 for m in timed)
    assert sum(m["timer/train/count"] for m in timed) == sum(
        m["timer/sample/count"] for m in timed
    )  # one sample per update
    scores = read_jsonl(logdir / "scores.jsonl")
    assert scores and all(set(s) == {"step", "episode/score", "episode/length"} for s in scores)
    scope = logdir / "scope"
    assert (scope / "train-loss-dyn.float").stat().st_size % 16 == 0
    videos = scope / "report-openloop-image.mp4"
    assert (videos / "index").exists() and list(videos.glob("*.mp4"))
    assert checkpoint.newest(logdir / "ckpt") is not None


def test_resume_continues_without_duplicate_or_missing_episodes(resumed_run):
    logdir, first = resumed_run
    assert first["ckpt"] == 300 and first["replay"] == [300]
    assert ckpt_step(logdir) == 600  # the step counter continued
    steps = [s["step"] for s in read_jsonl(logdir / "scores.jsonl")]
    assert steps == expected_episode_steps(0, 300) + expected_episode_steps(300, 600)
    assert [s["step"] for s in first["scores"]] == expected_episode_steps(0, 300)
    book = checkpoint.read_item(checkpoint.newest(logdir / "ckpt"), "book")
    assert book["episodes"] == len(steps)
    header = checkpoint.read_item(checkpoint.newest(logdir / "ckpt"), "replay")[0]
    assert header["counts"].tolist() == [600]  # replay kept the first run's data
    rows = np.frombuffer((logdir / "scope" / "episode-score.float").read_bytes(), ">i8,>f8")
    assert rows["f0"].tolist() == steps


def test_sigkill_then_resume(tmp_path):
    logdir = tmp_path / "killed"
    argv = args(logdir, 1e6, "--run.save_every", "1")
    code = (
        f"import sys; sys.path.insert(0, {str(TESTS)!r}); from fakes import FakeAgent; "
        f"from dreamerv3 import main; sys.exit(main.main({argv!r}, agent_cls=FakeAgent))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            # Wait until episodes were written after the newest checkpoint,
            # so the kill leaves log rows that resume must trim.
            scores = logdir / "scores.jsonl"
            if scores.exists() and checkpoint.newest(logdir / "ckpt"):
                lines = scores.read_text().splitlines()
                if len(lines) > 8 and json.loads(lines[-2])["step"] > ckpt_step(logdir):
                    break
            time.sleep(0.1)
        else:
            pytest.fail("the run wrote no scores within 60 s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_at = ckpt_step(logdir)
    assert main.main(args(logdir, killed_at + 200), agent_cls=FakeAgent) == 0
    steps = [s["step"] for s in read_jsonl(logdir / "scores.jsonl")]
    assert steps == (expected_episode_steps(0, killed_at) + expected_episode_steps(killed_at, killed_at + 200))


def test_broken_latest_pointer_and_partial_save(tmp_path):
    logdir = tmp_path / "run"
    assert main.main(args(logdir, 100), agent_cls=FakeAgent) == 0
    good = checkpoint.newest(logdir / "ckpt")
    (logdir / "ckpt" / "latest").write_text("")  # killed while writing the pointer
    partial = logdir / "ckpt" / "99999999T999999F000000-000000000500"
    partial.mkdir()  # killed while writing a save: no `done` file
    (partial / "agent.pkl").write_bytes(b"trunc")
    assert checkpoint.newest(logdir / "ckpt") == good
    assert main.main(args(logdir, 150), agent_cls=FakeAgent) == 0
    assert ckpt_step(logdir) == 150
    assert not partial.exists()  # removed by the next successful save


def test_train_eval_and_eval_only_and_load_agent(tmp_path):
    logdir = tmp_path / "te"
    assert main.main(args(logdir, 120, "--script", "train_eval", "--run.eval_eps", "2"), agent_cls=FakeAgent) == 0
    evals = [m for m in read_jsonl(logdir / "metrics.jsonl") if "eval_episode/score" in m]
    assert len(evals) == 2
    assert all("eval_episode/score" not in s for s in read_jsonl(logdir / "scores.jsonl"))

    agent, config = restore.load_agent(logdir, agent_cls=FakeAgent)
    assert config.task == "dummy_disc"
    assert agent.weights["w"][0] > 0  # trained weights, not a fresh agent

    out = tmp_path / "eval"
    assert (
        main.main(args(out, 100, "--script", "eval_only", "--run.from_checkpoint", str(logdir)), agent_cls=FakeAgent)
        == 0
    )
    assert len(read_jsonl(out / "scores.jsonl")) == 2
    assert main.main(args(tmp_path / "e2", 10, "--script", "eval_only"), agent_cls=FakeAgent) == 2


def test_update_schedule_follows_train_ratio(tmp_path):
    config = configlib.parse(args(tmp_path / "ratio", 400, "--run.train_ratio", "16"))
    agents = []

    def make(*a):
        agents.append(FakeAgent(*a))
        return agents[-1]

    run.train([config], agent_cls=make)
    # Updates start after train_fill (32 steps); then 16 / (4 * 16) = 1 per 4 steps,
    # each on 16 steps after one step of replay context.
    assert len(agents[0].batches) == (400 - 32) // 4
    assert set(agents[0].batches) == {(4, 17)}


def test_replay_stores_policy_latents_and_takes_updates_back(tmp_path):
    """replay_context: the policy's latent state is stored with every step and
    the agent's fresh posteriors are written back (FakeAgent adds 1000)."""
    logdir = tmp_path / "ctx"
    assert main.main(args(logdir, 200), agent_cls=FakeAgent) == 0
    shards = checkpoint.read_item(checkpoint.newest(logdir / "ckpt"), "replay")
    deter = np.concatenate([s["chunk"]["dyn/deter"][:, 0] for s in shards[1:]])[:200]
    steps = np.arange(1, 201)  # the fake policy's carry counts its calls
    written = deter >= 1000
    assert 0 < written.sum() < 200
    assert (deter % 1000 == steps).all()  # the policy's value, + 1000 per write-back
    assert deter.max() >= 2000  # a step trained twice got the value written the first time
    assert not written[0]  # the first step is context only: never trained on, never written
    metrics = read_jsonl(logdir / "metrics.jsonl")
    assert any(m.get("replay/updates", 0) > 0 for m in metrics)


def test_without_replay_context_nothing_extra_is_stored(tmp_path):
    logdir = tmp_path / "noctx"
    assert main.main(args(logdir, 100, "--replay_context", "0"), agent_cls=FakeAgent) == 0
    shards = checkpoint.read_item(checkpoint.newest(logdir / "ckpt"), "replay")
    assert "dyn/deter" not in shards[1]["chunk"]


def test_from_checkpoint_loads_weights_into_a_new_run(tmp_path):
    source = tmp_path / "source"
    assert main.main(args(source, 100), agent_cls=FakeAgent) == 0
    trained = checkpoint.read_item(checkpoint.newest(source / "ckpt"), "agent")["w"][0]
    agents = []

    def make(*a):
        agents.append(FakeAgent(*a))
        return agents[-1]

    config = configlib.parse(args(tmp_path / "new", 40, "--run.from_checkpoint", str(source)))
    run.train([config], agent_cls=make)
    # Loaded the source's weights, then trained on: (40 - 32) / 2 = 4 more updates.
    assert agents[0].weights["w"][0] == trained + 4
    # The new run starts its own step counter and replay.
    assert ckpt_step(tmp_path / "new") == 40


def test_two_envs_in_lock_step(tmp_path):
    logdir = tmp_path / "two"
    assert main.main(args(logdir, 200, "--run.envs", "2"), agent_cls=FakeAgent) == 0
    header = checkpoint.read_item(checkpoint.newest(logdir / "ckpt"), "replay")[0]
    assert header["counts"].tolist() == [100, 100]
    # Both envs end their episodes at the same step: two lines, not one merged.
    steps = [s["step"] for s in read_jsonl(logdir / "scores.jsonl")]
    per_env = [2 * (EPISODE + 1) * k + 2 * EPISODE for k in range(2)]
    assert steps == [per_env[0], per_env[0], per_env[1], per_env[1]]
