"""logger.outputs as in the official DreamerV3: which files each output writes,
tensorboard/wandb/mlflow when their package is there, one clear line when not."""

import importlib.util
import json
import sys
import types

import elements
import numpy as np
import pytest
from fakes import FakeAgent

from dreamerv3 import configs as configlib
from dreamerv3 import logs, main


def logger_cfg(*outputs):
    return configlib.from_presets([]).logger.update(outputs=list(outputs))


def write_one(logdir, cfg):
    step = elements.Counter()
    step.increment(5)
    logger = logs.make_logger(logdir, step, 4, terminal=False, cfg=cfg)
    logger.add({"loss/dyn": 1.5}, prefix="train")
    logger.add({"score": 3.0, "length": 7}, prefix="episode")
    logs.close(logger)
    return logger


def test_default_outputs_are_jsonl_and_scope():
    assert list(configlib.from_presets([]).logger.outputs) == ["jsonl", "scope"]


def test_jsonl_only_writes_no_scope(tmp_path):
    write_one(tmp_path, logger_cfg("jsonl"))
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows == [{"step": 20, "train/loss/dyn": 1.5, "episode/score": 3.0, "episode/length": 7.0}]
    scores = [json.loads(x) for x in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert scores == [{"step": 20, "episode/score": 3.0, "episode/length": 7.0}]
    assert not (tmp_path / "scope").exists()


def test_a_quiet_member_writes_the_same_jsonl_bytes_without_a_terminal_line(tmp_path, capfd):
    """A population's members other than the first (terminal=False) write metrics.jsonl and
    scores.jsonl byte for byte as elements' output does for the first, and print nothing."""
    summaries = [
        (20, "train/loss/dyn", np.float32(1.5)),
        (20, "episode/score", np.float64(3.0)),
        (24, "train/note", "text"),
        (24, "train/vector", np.zeros(3)),
        (24, "episode/length", np.int32(7)),
    ]
    for kind, folder in ((elements.logger.JSONLOutput, tmp_path / "first"), (logs.QuietJSONL, tmp_path / "other")):
        folder.mkdir()
        for name, pattern in (("metrics.jsonl", r".*"), ("scores.jsonl", logs.SCORES)):
            output = kind(folder, name, pattern)
            output(summaries)
            output.wait()
    printed = capfd.readouterr().out
    for name in ("metrics.jsonl", "scores.jsonl"):
        assert (tmp_path / "other" / name).read_bytes() == (tmp_path / "first" / name).read_bytes()
    assert printed.count("Writing metrics") == 2 and "/other/" not in printed


def test_scope_only_writes_no_jsonl(tmp_path):
    write_one(tmp_path, logger_cfg("scope"))
    assert not (tmp_path / "metrics.jsonl").exists()
    rows = np.frombuffer((tmp_path / "scope" / "train-loss-dyn.float").read_bytes(), ">i8,>f8")
    assert rows.tolist() == [(20, 1.5)]


def test_wandb_and_mlflow_receive_the_scalars(tmp_path, monkeypatch):
    """With the package importable (a stand-in module here), each output gets every scalar."""
    calls = {"wandb": [], "mlflow": []}
    wandb = types.SimpleNamespace(
        init=lambda **kw: calls["wandb"].append(("init", kw)),
        log=lambda metrics, step: calls["wandb"].append(("log", step, metrics)),
    )
    mlflow = types.SimpleNamespace(
        start_run=lambda **kw: calls["mlflow"].append(("start", kw)),
        log_metrics=lambda metrics, step: calls["mlflow"].append(("log", step, metrics)),
    )
    for name, module in (("wandb", wandb), ("mlflow", mlflow)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(logs.importlib.util, "find_spec", lambda name: object())
    run_dir = tmp_path / "atari100k_pong" / "base" / "seed0"
    write_one(run_dir, logger_cfg("wandb", "mlflow"))
    expected = {"train/loss/dyn": 1.5, "episode/score": 3.0, "episode/length": 7.0}
    assert calls["wandb"][0] == ("init", {"name": "/".join(run_dir.parts[-4:])})
    assert calls["wandb"][1:] == [("log", 20, expected)]
    assert calls["mlflow"][0][0] == "start" and calls["mlflow"][1:] == [("log", 20, expected)]
    assert not (run_dir / "metrics.jsonl").exists()


def test_missing_package_or_unknown_output_is_one_line(monkeypatch):
    monkeypatch.setattr(logs.importlib.util, "find_spec", lambda name: None)
    assert logs.check_outputs(["jsonl"]) is None
    assert logs.check_outputs(["jsonl", "tensorboard"]) == (
        "logger.outputs has 'tensorboard' but the package 'tensorflow' is not installed "
        "(pip install tensorflow, or drop 'tensorboard')"
    )
    assert "unknown output 'tensorbord'" in logs.check_outputs(["tensorbord"])
    with pytest.raises(ValueError, match="'wandb' is not installed"):
        logs.make_logger(".", elements.Counter(), cfg=logger_cfg("wandb"))


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is not None, reason="tensorflow is installed")
def test_main_refuses_an_output_it_cannot_make(tmp_path, capsys):
    logdir = tmp_path / "run"
    argv = ["--logdir", str(logdir), "--configs", "debug", "--logger.outputs", "jsonl,tensorboard"]
    assert main.main(argv, agent_cls=FakeAgent) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: logger.outputs has 'tensorboard' but the package 'tensorflow' is not "
        "installed (pip install tensorflow, or drop 'tensorboard')"
    ]
    assert not logdir.exists()


def test_run_with_jsonl_only(tmp_path):
    logdir = tmp_path / "run"
    argv = [
        "--logdir",
        str(logdir),
        "--configs",
        "debug",
        "--run.steps",
        "60",
        "--env.dummy.length",
        "20",
        "--logger.outputs",
        "jsonl",
    ]
    assert main.main(argv, agent_cls=FakeAgent) == 0
    assert (logdir / "scores.jsonl").read_text().count("\n") == 2
    assert not (logdir / "scope").exists()
