"""Run discovery (task/method/seed from paths and config) and robust JSONL/scope reading."""

import json
import os
import struct
import time

import polars as pl
import pytest
from runfactory import write_run, write_scope

from analysis import ingest
from analysis.ingest import IngestError


def _write_lines(path, rows, tail=""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)


def _problems(data):
    return data.problems["problem"].to_list()


@pytest.mark.parametrize(
    "folder, task, method",
    [
        ("atari100k_bank_heist_adapt", "atari100k_bank_heist", "adapt"),
        ("atari100k_ms_pacman_baseline", "atari100k_ms_pacman", "baseline"),
        ("atari100k_alien_ppo_fixhp", "atari100k_alien", "ppo_fixhp"),
    ],
)
def test_task_and_method_from_known_tasks(tmp_path, folder, task, method):
    run = tmp_path / folder / "seed3_20261123T101010"
    _write_lines(run / "scores.jsonl", [{"step": 4, "episode/score": 1.0}])
    (found,) = ingest.discover([str(tmp_path / folder)])
    assert (found.task, found.method, found.seed) == (task, method, 3)


def test_unknown_task_split_with_the_known_method(tmp_path):
    run = tmp_path / "gym_my_env_ppo_fixhp" / "seed1"
    _write_lines(run / "scores.jsonl", [{"step": 4, "episode/score": 1.0}])
    (found,) = ingest.discover([str(tmp_path)], names=["ppo_fixhp"])
    assert (found.task, found.method, found.seed) == ("gym_my_env", "ppo_fixhp", 1)


def test_config_task_and_seed_win(tmp_path):
    run = tmp_path / "dummy_disc_adapt" / "seed0_x"
    _write_lines(run / "scores.jsonl", [{"step": 4, "episode/score": 1.0}])
    (run / "config.yaml").write_text("logdir: x\nseed: 7\ntask: dummy_disc\njax:\n  seed: 3\n")
    (found,) = ingest.discover([str(tmp_path)])
    assert (found.task, found.method, found.seed) == ("dummy_disc", "adapt", 7)


def test_discover_folders_globs_and_unique_names(tmp_path):
    for method in ("baseline", "adapt"):
        for seed in range(2):
            write_run(tmp_path, "atari100k_pong", method, seed, log_lines=5, episodes=5)
    assert len(ingest.discover([str(tmp_path)])) == 4
    runs = ingest.discover([str(tmp_path / "*_adapt")])
    assert {r.method for r in runs} == {"adapt"} and len({r.name for r in runs}) == 2


def test_discover_errors_name_the_path(tmp_path):
    with pytest.raises(IngestError, match="does not exist"):
        ingest.discover([str(tmp_path / "missing")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(IngestError, match="no runs found"):
        ingest.discover([str(tmp_path / "empty")])
    with pytest.raises(IngestError, match="glob"):
        ingest.discover([str(tmp_path / "nothing*")])


def _one(tmp_path, scores=None, metrics=None, scores_tail="", metrics_tail=""):
    run = tmp_path / "atari100k_alien_adapt" / "seed0"
    run.mkdir(parents=True)
    if scores is not None:
        _write_lines(run / "scores.jsonl", scores, scores_tail)
    if metrics is not None:
        _write_lines(run / "metrics.jsonl", metrics, metrics_tail)
    return ingest.ingest(ingest.discover([str(run)]), cache=False)


def test_torn_last_line_is_skipped_and_reported(tmp_path):
    rows = [{"step": s, "episode/score": float(s)} for s in (10, 20, 30)]
    data = _one(tmp_path, scores=rows, scores_tail='{"step": 40, "episode/sc')
    assert data.scores.filter(pl.col("key") == "episode/score")["value"].to_list() == [10.0, 20.0, 30.0]
    assert any("torn last line" in p for p in _problems(data))
    assert data.problems.filter(pl.col("problem").str.contains("torn"))["line"].to_list() == [4]


def test_unterminated_but_whole_last_line_is_kept(tmp_path):
    data = _one(tmp_path, scores=[{"step": 1, "episode/score": 1.0}], scores_tail='{"step": 2, "episode/score": 2.0}')
    assert data.scores.filter(pl.col("key") == "episode/score")["value"].to_list() == [1.0, 2.0]
    assert not any("torn" in p for p in _problems(data))


def test_bad_middle_line_is_reported_and_the_rest_kept(tmp_path):
    run = tmp_path / "atari100k_alien_adapt" / "seed0"
    run.mkdir(parents=True)
    (run / "scores.jsonl").write_text(
        '{"step": 1, "episode/score": 1}\n{"step": 2, oops\n{"step": 3, "episode/score": 1}\n'
    )
    data = ingest.ingest(ingest.discover([str(run)]), cache=False)
    assert data.scores.filter(pl.col("key") == "episode/score")["step"].to_list() == [1, 3]
    bad = data.problems.filter(pl.col("problem").str.contains("not a JSON object"))
    assert bad.select("file", "line").rows() == [("scores.jsonl", 2)]


def test_nan_and_inf_are_kept_and_reported(tmp_path):
    run = tmp_path / "atari100k_alien_adapt" / "seed0"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text(
        '{"step": 1, "train/loss/dyn": NaN}\n{"step": 2, "train/loss/dyn": Infinity}\n'
        '{"step": 3, "train/loss/dyn": 1.5}\n'
    )
    (run / "scores.jsonl").write_text('{"step": 3, "episode/score": 2.0}\n')
    data = ingest.ingest(ingest.discover([str(run)]), cache=False)
    values = data.metrics.sort("step")["value"].to_list()
    assert values[0] != values[0] and values[1] == float("inf") and values[2] == 1.5
    assert any("2 NaN/inf values of train/loss/dyn" in p for p in _problems(data))


def test_resumed_run_keeps_the_newest_value_per_step(tmp_path):
    rows = [{"step": s, "train/loss/dyn": 1.0} for s in (100, 200, 300)]
    rows += [{"step": s, "train/loss/dyn": 2.0} for s in (200, 300, 400)]
    data = _one(tmp_path, scores=[{"step": 400, "episode/score": 1.0}], metrics=rows)
    dyn = data.metrics.sort("step")
    assert dyn["step"].to_list() == [100, 200, 300, 400]
    assert dyn["value"].to_list() == [1.0, 2.0, 2.0, 2.0]
    problems = _problems(data)
    assert any("2 values logged again after a resume" in p for p in problems)
    assert any("step goes backwards" in p for p in problems)


def test_empty_and_missing_scores_are_reported(tmp_path):
    metrics = [{"step": 100, "episode/score": 5.0, "train/loss/dyn": 1.2}]
    run = tmp_path / "atari100k_alien_adapt" / "seed0"
    _write_lines(run / "metrics.jsonl", metrics)
    data = ingest.ingest(ingest.discover([str(run)]), cache=False)
    assert data.scores["value"].to_list() == [5.0]
    assert any("missing; episodes taken from metrics.jsonl" in p for p in _problems(data))
    (run / "scores.jsonl").write_text("")
    data = ingest.ingest(ingest.discover([str(run)]), cache=False)
    assert "empty file" in _problems(data) and "no episodes" in _problems(data)


def test_shorter_run_is_reported(tmp_path):
    write_run(tmp_path, "atari100k_alien", "adapt", 0, frames=400_000, episodes=10, log_lines=5)
    write_run(tmp_path, "atari100k_alien", "adapt", 1, frames=200_000, episodes=10, log_lines=5)
    data = ingest.ingest(ingest.discover([str(tmp_path)]), cache=False)
    short = data.problems.filter(pl.col("problem").str.starts_with("shorter run"))
    assert short["run"].to_list() == ["adapt/alien/s1"]


def test_scope_scalars_and_torn_record(tmp_path):
    run = tmp_path / "atari100k_alien_adapt" / "seed0"
    _write_lines(run / "scores.jsonl", [{"step": 8, "episode/score": 1.0}])
    path = write_scope(run, "train/imag_adapt/active", [4, 8], [0.0, 1.0])
    with open(path, "ab") as f:
        f.write(struct.pack(">q", 12))  # half a record: the writer died
    data = ingest.ingest(ingest.discover([str(run)]), cache=False)
    active = data.metrics.filter(pl.col("key") == "train/imag_adapt/active")
    assert active["step"].to_list() == [4, 8] and active["value"].to_list() == [0.0, 1.0]
    assert any("torn last record" in p for p in _problems(data))


def _tree(folder):
    return sorted((str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*"))


def test_cache_lives_outside_the_run_and_follows_changes(tmp_path):
    run = write_run(tmp_path / "runs", "atari100k_alien", "adapt", 0, episodes=20, log_lines=10)
    before = _tree(tmp_path / "runs")
    runs = ingest.discover([str(run)])
    first = ingest.ingest(runs, cache=tmp_path / "cache")
    assert _tree(tmp_path / "runs") == before  # nothing written into the run dir
    assert len(list((tmp_path / "cache").glob("run-*.parquet"))) == 1
    second = ingest.ingest(runs, cache=tmp_path / "cache")
    assert first.scores.equals(second.scores) and first.metrics.equals(second.metrics)
    with open(run / "scores.jsonl", "a") as f:
        f.write(json.dumps({"step": 500_000, "episode/score": 1.0}) + "\n")
    third = ingest.ingest(runs, cache=tmp_path / "cache")
    assert third.scores.height == first.scores.height + 1
    assert third.scores.equals(ingest.ingest(runs, cache=False).scores)
    assert len(list((tmp_path / "cache").glob("run-*.parquet"))) == 1  # the entry was replaced


def test_cache_sees_an_edit_that_keeps_size_and_mtime(tmp_path):
    run = tmp_path / "atari100k_alien_adapt" / "seed0"
    _write_lines(run / "scores.jsonl", [{"step": 10, "episode/score": 1.0}])
    stat = (run / "scores.jsonl").stat()
    runs = ingest.discover([str(run)])
    assert ingest.ingest(runs, cache=tmp_path / "c").scores["value"].to_list() == [1.0]
    _write_lines(run / "scores.jsonl", [{"step": 10, "episode/score": 7.0}])
    os.utime(run / "scores.jsonl", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (run / "scores.jsonl").stat().st_size == stat.st_size
    assert ingest.ingest(runs, cache=tmp_path / "c").scores["value"].to_list() == [7.0]


def test_cache_folder_from_the_environment_and_never_deletes(tmp_path, monkeypatch):
    """The old in-run cache folder was pruned; a symlink there pointed the pruning anywhere."""
    keep = tmp_path / "precious"
    keep.mkdir()
    (keep / "thesis.tex").write_text("years of work")
    run = write_run(tmp_path / "runs", "atari100k_alien", "adapt", 0, episodes=5, log_lines=5)
    (run / ".dreamer-report-cache").symlink_to(keep)
    monkeypatch.setenv("DREAMER_REPORT_CACHE", str(keep))  # even a cache folder full of other files
    ingest.ingest(ingest.discover([str(run)]))
    ingest.ingest(ingest.discover([str(run)]))
    assert (keep / "thesis.tex").read_text() == "years of work"
    assert {p.name for p in keep.iterdir()} - {"thesis.tex"} == {p.name for p in keep.glob("run-*.parquet")}
    assert len(list(keep.glob("run-*.parquet"))) == 1


def test_cache_dir_that_is_a_file_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    run = write_run(tmp_path / "runs", "atari100k_alien", "adapt", 0, episodes=5, log_lines=5)
    with pytest.raises(ValueError, match="--cache-dir .*: exists and is not a folder"):
        ingest.ingest(ingest.discover([str(run)]), cache=tmp_path / "file")


def test_a_key_seen_only_mid_file_is_not_dropped(tmp_path):
    rows = [{"step": s, "train/loss/dyn": 1.0} for s in range(1, 150)]
    rows[100]["train/imag_adapt/active"] = 1.0  # outside the head and tail lines that make the batch schema
    data = _one(tmp_path, scores=[{"step": 1000, "episode/score": 1.0}], metrics=rows)
    assert data.metrics.filter(pl.col("key") == "train/imag_adapt/active").select("step", "value").rows() == [
        (101, 1.0)
    ]


@pytest.mark.parametrize(
    "line",
    [
        b'{"step"' * 140_000,  # a glued-record start at every 7th byte: only a few are tried
        b"{" + b",".join([b'"step": 1'] * 100_000) + b"}",  # one key 100k times in one object
    ],
)
def test_hostile_lines_cost_little_time(tmp_path, line):

    path = tmp_path / "scores.jsonl"
    path.write_bytes(b'{"step": 1, "episode/score": 2.0}\n' + line + b"\n")
    problems = []
    start = time.perf_counter()
    long = ingest.read_jsonl(path, problems)
    assert time.perf_counter() - start < 2
    assert long["value"].to_list()[:1] == [2.0] and [p["line"] for p in problems][:1] == [2]
