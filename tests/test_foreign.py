"""Runs from other code: TensorBoard event files written by two real writers (tensorboardX's
SummaryWriter, and tensorboard's EventFileWriter, the writer torch's SummaryWriter uses) and a
CSV export ingest to the same table as the JSONL run they were written from; locally and from
s3:// (moto); with the key map, the cache, and problems per file.

This trainer's own TensorBoard output goes through tf.summary and needs TensorFlow (hundreds
of MB), so it is not among the writers here; tf.summary's tensor-form scalars are read by the
same reader (analysis/foreign.py)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import time
from pathlib import Path

import fsspec
import numpy as np
import object_servers
import polars as pl
import pytest

from analysis import compare, ingest, remote

REPO = Path(__file__).resolve().parent.parent
SOURCE = sorted((REPO / "artifacts" / "gpu_road_runner_size12m").glob("seed*"))  # 3 real runs
METRIC = "train/loss/dyn"


def _log(run: Path, name: str) -> list[dict]:
    with gzip.open(run / f"{name}.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f]


def _points(run: Path) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(episode scores, METRIC values) as (step, value) of a shipped run, in log order."""
    scores = [(r["step"], float(r["episode/score"])) for r in _log(run, "scores") if "episode/score" in r]
    metric = [(r["step"], float(r[METRIC])) for r in _log(run, "metrics") if METRIC in r]
    return scores, metric


def _jsonl_run(source: Path, dest: Path) -> Path:
    """The source run's logs, and nothing else (no scope/): what the others are written from."""
    dest.mkdir(parents=True)
    for name in ("scores.jsonl.gz", "metrics.jsonl.gz", "config.yaml"):
        shutil.copy(source / name, dest / name)
    return dest


def _tensorboardx_run(source: Path, dest: Path, score_tag="episode/score", per_step=1) -> Path:
    from tensorboardX import SummaryWriter

    scores, metric = _points(source)
    writer = SummaryWriter(str(dest))
    for step, value in scores:
        writer.add_scalar(score_tag, value, global_step=step // per_step)
    for step, value in metric:
        writer.add_scalar(METRIC, value, global_step=step // per_step)
    writer.close()
    return dest


def _tensorboard_run(source: Path, dest: Path) -> Path:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(dest))
    scores, metric = _points(source)
    for tag, points in (("episode/score", scores), (METRIC, metric)):
        for step, value in points:
            summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
            writer.add_event(event_pb2.Event(step=step, wall_time=time.time(), summary=summary))
    writer.close()
    return dest


def _csv_export(sources: list[Path], path: Path) -> Path:
    """One CSV, one row per logged point, the runs told apart by seed and method columns."""
    rows = []
    for seed, source in enumerate(sources):
        scores, metric = _points(source)
        labels = {"task": "atari100k_road_runner", "method": "size12m", "seed": str(seed)}
        rows += [{**labels, "step": str(s), "episode/score": str(v), METRIC: ""} for s, v in scores]
        rows += [{**labels, "step": str(s), "episode/score": "", METRIC: repr(v)} for s, v in metric]
    pl.DataFrame(rows).write_csv(path)
    return path


def _tables(paths: list[str], **kwargs) -> tuple[pl.DataFrame, pl.DataFrame, ingest.Ingested]:
    runs = ingest.discover(paths, **({"names": kwargs.pop("names")} if "names" in kwargs else {}))
    data = ingest.ingest(runs, metric_keys=[METRIC], **{"cache": False, **kwargs})
    order = ["seed", "step", "value"]
    scores = data.scores.filter(pl.col("key") == "episode/score").select(order).sort(order)
    metrics = data.metrics.select(order).sort(order)
    return scores, metrics, data


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("foreign")
    out = {"jsonl": [], "tensorboardx": [], "tensorboard": []}
    for seed, source in enumerate(SOURCE[:2]):
        out["jsonl"].append(_jsonl_run(source, root / "jsonl" / f"seed{seed}"))
        out["tensorboardx"].append(_tensorboardx_run(source, root / "tbx" / f"seed{seed}"))
        out["tensorboard"].append(_tensorboard_run(source, root / "tb" / f"seed{seed}"))
        for kind in ("tbx", "tb"):  # the run's config beside its event files (sheeprl writes one too)
            shutil.copy(source / "config.yaml", root / kind / f"seed{seed}" / "config.yaml")
    out["csv"] = _csv_export(SOURCE[:2], root / "export.csv")
    out["root"] = root
    return out


@pytest.fixture(scope="module")
def reference(written):
    return _tables([str(written["root"] / "jsonl")])


@pytest.mark.parametrize("writer", ["tensorboardx", "tensorboard", "csv"])
def test_foreign_runs_ingest_to_the_jsonl_table(written, reference, writer):
    path = written["csv"] if writer == "csv" else written["root"] / ("tbx" if writer == "tensorboardx" else "tb")
    scores, metrics, data = _tables([str(path)])
    assert scores.height > 20 and scores.equals(reference[0])
    assert metrics["step"].equals(reference[1]["step"]) and metrics["seed"].equals(reference[1]["seed"])
    # event files store a scalar as float32: the losses agree to float32's precision, the CSV exactly
    tolerance = 0 if writer == "csv" else 1e-6
    assert np.allclose(metrics["value"], reference[1]["value"], rtol=tolerance, atol=0)
    assert data.problems.filter(~pl.col("problem").str.starts_with("shorter run")).height == 0


def test_key_map_reads_another_tag_in_agent_steps(written, reference, tmp_path):
    """sheeprl-style: the score under another tag, the step in agent steps (4 env frames each)."""
    for seed, source in enumerate(SOURCE[:2]):
        _tensorboardx_run(source, tmp_path / "sheep" / f"seed{seed}", score_tag="Rewards/rew_avg", per_step=4)
        shutil.copy(source / "config.yaml", tmp_path / "sheep" / f"seed{seed}" / "config.yaml")
    scores, _, data = _tables([str(tmp_path / "sheep")], keys=ingest.foreign.KeyMap("Rewards/rew_avg", "step", 4))
    expected = reference[0].with_columns(pl.col("step") // 4 * 4)
    assert scores.equals(expected)
    _, _, plain = _tables([str(tmp_path / "sheep")])  # without the map: one problem line per run, no scores
    assert plain.scores.height == 0
    assert plain.problems.filter(pl.col("problem").str.contains("give --score-key")).height == 2


def test_cache_is_keyed_by_the_key_map(written, tmp_path):
    folder = str(written["root"] / "tbx")
    keys = ingest.foreign.KeyMap()
    first = _tables([folder], cache=tmp_path / "cache")[0]
    assert len(list((tmp_path / "cache").glob("run-*.parquet"))) == 2
    again = _tables([folder], cache=tmp_path / "cache")[0]
    assert again.equals(first)
    scaled = _tables([folder], cache=tmp_path / "cache", keys=ingest.foreign.KeyMap(keys.score, "step", 2))[0]
    assert scaled["step"].to_list() == [2 * s for s in first["step"].to_list()]


def test_a_truncated_event_file_and_a_link_out_are_problems_of_their_file(written, tmp_path):
    run = tmp_path / "tb" / "seed0"
    shutil.copytree(written["tensorboardx"][0], run)
    (event,) = run.glob("events.out.tfevents.*")
    data = event.read_bytes()
    event.write_bytes(data[: len(data) // 2])
    secret = tmp_path / "elsewhere" / ("events.out.tfevents.1.secret")
    secret.parent.mkdir()
    shutil.copy(next(written["tensorboardx"][1].glob("events.out.tfevents.*")), secret)
    os.symlink(secret, run / "events.out.tfevents.2.link")
    scores, _, got = _tables([str(tmp_path / "tb")])
    assert 0 < scores.height < 60  # what was whole before the cut is read
    problems = dict(zip(got.problems["file"], got.problems["problem"]))
    assert "outside the run folder" in problems["events.out.tfevents.2.link"]
    assert "truncated" in problems[event.name]
    assert not any(p.startswith("shorter") for p in problems.values())


def test_compare_reads_tensorboard_against_the_published_agent(written):
    result = compare.compare(
        [["published:dreamerv3"], [str(written["root"] / "tbx")]],
        reps=200,
        cache=False,
        metrics=["iqm"],
        names=["published", "tbx"],
    )
    assert result.tasks == ["atari100k_road_runner"]
    assert {c["method"]: c["runs"] for c in result.coverage} == {"published": 5, "tbx": 2}


@pytest.fixture(scope="module")
def s3(written):
    server = object_servers.start_s3()
    saved = dict(os.environ)
    object_servers.set_env(server.env)
    remote._FS.clear()
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir("tb-bkt")
    fs.put(str(written["root"] / "tbx") + "/", "tb-bkt/tbx", recursive=True)
    fs.put(str(written["csv"]), "tb-bkt/exports/export.csv")
    yield "s3://tb-bkt/tbx"
    server.stop()
    os.environ.clear()
    os.environ.update(saved)
    remote._FS.clear()


def test_tensorboard_runs_from_s3_equal_the_local_ones(written, reference, s3):
    scores, metrics, data = _tables([s3])
    assert len(data.runs) == 2 and scores.equals(reference[0])
    assert np.allclose(metrics["value"], reference[1]["value"], rtol=1e-6)


def test_step_key_names_a_tag_holding_the_env_frames(tmp_path):
    """The x from another tag logged at the same event steps (a counter of env frames)."""
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "atari100k_pong_x" / "seed0"))
    for i, score in enumerate([1.0, 2.0, 5.0]):
        writer.add_scalar("env_frames", 1000.0 * (i + 1), global_step=i)
        writer.add_scalar("episode/score", score, global_step=i)
    writer.close()
    scores, _, data = _tables([str(tmp_path)], keys=ingest.foreign.KeyMap(step="env_frames"))
    assert scores["step"].to_list() == [1000, 2000, 3000] and scores["value"].to_list() == [1.0, 2.0, 5.0]
    _, _, missing = _tables([str(tmp_path)], keys=ingest.foreign.KeyMap(step="frames_total"))
    assert missing.scores.height == 0 and missing.problems["problem"].str.contains("no step 'frames_total'").any()


def test_a_csv_export_from_s3_equals_the_local_one(written, reference, s3):
    scores, metrics, data = _tables(["s3://tb-bkt/exports/export.csv"])
    assert len(data.runs) == 2 and scores.equals(reference[0]) and metrics.equals(reference[1])
    assert all(remote.shown(r.path).startswith("s3://tb-bkt/exports/export.csv/run") for r in data.runs)


def test_a_bad_csv_is_one_line_naming_file_and_line(tmp_path):
    from typer.testing import CliRunner

    import cli

    bad = tmp_path / "export.csv"
    bad.write_text("task,seed,step,episode/score\natari100k_pong,0,10,1\natari100k_pong,zero,20,2\n")
    result = CliRunner().invoke(cli.app, ["runs", str(bad), "--no-cache"])
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1 and f"{bad}:3: seed 'zero'" in errors[0], result.output
