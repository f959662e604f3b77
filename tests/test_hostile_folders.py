"""Run folders handed over by someone else, each trying to steer the toolkit: names that are
paths, task ids that import code, links out of the run, outputs aimed at the inputs, episodes
that share a step, scores that overflow, copies passed off as seeds. Each test fails on the
toolkit as it was before these were closed.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import shutil
import sys
from pathlib import Path

import pytest
from fakes import FakeAgent
from runfactory import write_run, write_scope
from typer.testing import CliRunner

import cli
from analysis import confine, ingest, report, runconfig, watch
from dreamerv3 import main as trainer

SECRET = "-----BEGIN PRIVATE KEY----- not for any report"


def _invoke(args: list[str]):
    result = CliRunner().invoke(cli.app, args)
    output = result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    return result


def _error_line(result) -> str:
    """The one `error:` line of a refused command (exit 2)."""
    assert result.exit_code == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def _small_run(root: Path, method: str = "adapt", seed: int = 0, **kwargs) -> Path:
    return write_run(root, "atari100k_alien", method, seed, frames=20_000, episodes=12, log_lines=4, **kwargs)


def _secret(tmp_path: Path) -> Path:
    path = tmp_path / "private" / "id_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SECRET + "\n")
    return path


# ---------------------------------------------------------------- names from the data


def test_task_and_method_from_config_stay_one_folder_under_reports(tmp_path, monkeypatch):
    """`task: ../../../x` and `method: ../../y` in config.yaml wrote the report outside reports/."""
    for method in ("first", "second"):
        for seed in range(2):
            run = tmp_path / "in" / method / f"seed{seed}"
            run.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(_small_run(tmp_path / "made", seed=seed), run)
            (run / "config.yaml").write_text(f"seed: {seed}\ntask: ../../../escaped\nmethod: ../../{method}_out\n")
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    result = _invoke(
        [
            "compare",
            str(tmp_path / "in" / "first"),
            str(tmp_path / "in" / "second"),
            "--reps",
            "100",
            "--no-report",
            "--no-cache",
        ]
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    written = [
        p
        for p in tmp_path.rglob("*")
        if p.is_file()
        and "in" not in p.relative_to(tmp_path).parts[:1]
        and "made" not in p.relative_to(tmp_path).parts[:1]
    ]
    assert written and all(confine.inside(p, work / "reports") for p in written), written
    assert len({p.relative_to(work / "reports").parts[0] for p in written}) == 1


def test_safe_component_is_one_plain_name():
    for name in ("../../x", "/etc/passwd", "a/b", "..", ".hidden", "x" * 500, "", "ok_name-1.5"):
        part = confine.safe_component(name)
        assert "/" not in part and not part.startswith(".") and 0 < len(part) <= confine.MAX_COMPONENT
    assert confine.safe_component("ok_name-1.5") == "ok_name-1.5"


# ---------------------------------------------------------------- code named by the input


def test_gym_module_task_id_is_never_imported(tmp_path, monkeypatch):
    """A task `gym_<module>:<Env>` made gymnasium import <module> (its top-level code ran)."""
    pytest.importorskip("gymnasium")
    ran = tmp_path / "ran"
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "probe_mod_x1.py").write_text(f"open({str(ran)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    monkeypatch.delitem(sys.modules, "probe_mod_x1", raising=False)
    run = _small_run(tmp_path)
    (run / "config.yaml").write_text("seed: 0\ntask: gym_probe_mod_x1:Env\n")
    folder = run / "ckpt" / "20261123T101010F000000-000000001000"
    folder.mkdir(parents=True)
    (folder / "agent.pkl").write_bytes(pickle.dumps({}))
    (folder / "done").write_bytes(b"")
    result = _invoke(["best-seed", str(run), "--video", str(tmp_path / "v.mp4"), "--source", "ckpt", "--no-cache"])
    assert "probe_mod_x1:Env" in _error_line(result)
    assert not ran.exists()


# ---------------------------------------------------------------- links out of the run


def test_readme_linked_out_of_its_folder_is_no_label(tmp_path):
    run = _small_run(tmp_path / "runs")
    (run / "README.md").symlink_to(_secret(tmp_path))
    labels = report.find_labels([run])
    assert all(SECRET not in label.html for label in labels)


def test_config_linked_out_of_the_run_is_never_read(tmp_path):
    run = _small_run(tmp_path / "runs")
    secret = _secret(tmp_path)
    secret.write_text("task: " + SECRET + "\nkey: " + SECRET + "\n")
    (run / "config.yaml").unlink()
    (run / "config.yaml").symlink_to(secret)
    assert SECRET not in str(report.read_config(run))
    fields, notes = runconfig.top_fields(run)
    assert "task" not in fields and any("outside the run" in n for n in notes)


@pytest.mark.parametrize("name", ["scores.jsonl", "metrics.jsonl", "scope"])
def test_logs_linked_out_of_the_run_are_skipped(tmp_path, name):
    """A run file that links elsewhere (another run's log, a private file) is never read."""
    run = _small_run(tmp_path / "runs", seed=0)
    write_scope(run, "train/loss/x", [5, 10], [1.0, 2.0])
    other = _small_run(tmp_path / "elsewhere", seed=1, scope=True)
    write_scope(other, "train/loss/x", [5, 10], [7.0, 8.0])
    target = run / name
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    target.symlink_to(other / name)
    data = ingest.ingest(ingest.discover([str(run)]), cache=False)
    problems = data.problems.filter(data.problems["problem"].str.contains("outside the run"))
    assert problems.height >= 1
    key = "train/loss/x" if name == "scope" else ("episode/score" if name == "scores.jsonl" else "train/loss/dyn")
    from_other = ingest.read_run(other)[0 if name == "scores.jsonl" else 1]
    theirs = set(from_other.filter(from_other["key"] == key)["value"].to_list())
    mine = set(pl_values(data, key))
    assert not (theirs & mine)


def pl_values(data: ingest.Ingested, key: str) -> list[float]:
    table = data.scores if key.startswith("episode/") else data.metrics
    return table.filter(table["key"] == key)["value"].to_list()


def test_checkpoint_linked_out_of_the_run_is_not_loaded(tmp_path):
    run = _small_run(tmp_path / "runs")
    outside = tmp_path / "outside" / "20261123T101010F000000-000000001000"
    outside.mkdir(parents=True)
    (outside / "agent.pkl").write_bytes(pickle.dumps({}))
    (outside / "done").write_bytes(b"")
    (run / "ckpt").mkdir()
    (run / "ckpt" / outside.name).symlink_to(outside)
    result = _invoke(["best-seed", str(run), "--video", str(tmp_path / "v.mp4"), "--source", "ckpt", "--no-cache"])
    assert "no finished checkpoint" in _error_line(result)


# ---------------------------------------------------------------- outputs aimed at inputs


def _outputs_into_the_run(run: Path, tmp: Path) -> list[tuple[list[str], str]]:
    video = run / "scope" / "report-openloop-image.mp4" / "00000000000000001000-00.mp4"
    return [
        (["best-seed", str(run), "--video", str(video), "--source", "scope"], "--video"),
        (["mask", str(run), "--out", str(run / "mask")], "--out"),
        (["runs", str(run), "--cache-dir", str(run / "cache")], "--cache-dir"),
        (["openloop", str(run), str(run), "--out", str(run / "openloop")], "--out"),
        (["watch", str(run), "--html", str(run / "w.html"), "--iterations", "1"], "--html"),
    ]


def test_outputs_inside_an_input_run_are_refused(tmp_path):
    run = _small_run(tmp_path / "runs")
    video = run / "scope" / "report-openloop-image.mp4" / "00000000000000001000-00.mp4"
    video.parent.mkdir(parents=True)
    video.write_bytes(b"the run's own video")
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    for args, flag in _outputs_into_the_run(run, tmp_path):
        line = _error_line(_invoke(args))
        assert flag in line and "inside the input run" in line, (args, line)
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before
    assert video.read_bytes() == b"the run's own video"


def test_default_report_folder_inside_an_input_run_is_refused(tmp_path, monkeypatch):
    """Run from inside a run folder, `reports/` would be written into that run."""
    for method in ("baseline", "adapt"):
        for seed in range(2):
            _small_run(tmp_path, method, seed)
    inside = next((tmp_path / "atari100k_alien_baseline").iterdir())
    monkeypatch.chdir(inside)
    result = _invoke(
        [
            "compare",
            str(tmp_path / "atari100k_alien_baseline"),
            str(tmp_path / "atari100k_alien_adapt"),
            "--reps",
            "100",
            "--no-report",
            "--no-cache",
        ]
    )
    assert "inside the input run" in _error_line(result)
    assert not (inside / "reports").exists()


# ---------------------------------------------------------------- episodes sharing a step


def _scores(run: Path, lines: list[tuple[int, float]]) -> None:
    (run / "scores.jsonl").write_text(
        "".join(f'{{"step": {s}, "episode/score": {v}, "episode/length": 10}}\n' for s, v in lines)
    )


def _episode_scores(run: Path) -> list[tuple[int, float]]:
    data = ingest.ingest(ingest.discover([str(run)]), cache=False)
    rows = data.scores.filter(data.scores["key"] == "episode/score").select("step", "value")
    return sorted(rows.iter_rows()), data.problems["problem"].to_list()


def test_episodes_ending_at_one_step_all_count(tmp_path):
    """With run.envs > 1 several episodes end at one step: each is an episode (2 of 8 were kept)."""
    run = _small_run(tmp_path)
    lines = [(100, 1.0), (100, 2.0), (100, 3.0), (100, 4.0), (200, 5.0), (200, 6.0), (300, 7.0), (300, 8.0)]
    _scores(run, lines)
    scores, problems = _episode_scores(run)
    assert scores == sorted(lines)
    assert not [p for p in problems if "repeated" in p]


def test_a_trainer_run_with_four_envs_counts_every_episode(tmp_path):
    """The trainer itself, four envs in lock-step: every episode line it writes is one episode."""
    logdir = tmp_path / "dummy_disc_fake" / "seed0"
    argv = [
        "--logdir",
        str(logdir),
        "--configs",
        "debug",
        "--task",
        "dummy_disc",
        "--run.steps",
        "120",
        "--env.dummy.length",
        "20",
        "--run.envs",
        "4",
    ]
    assert trainer.main(argv, agent_cls=FakeAgent) == 0
    steps = [json.loads(line)["step"] for line in (logdir / "scores.jsonl").read_text().splitlines()]
    assert len(steps) > len(set(steps))  # episodes ended together
    for cache in (False, tmp_path / "cache", tmp_path / "cache"):  # the careful reader, the fast one, the cache
        data = ingest.ingest(ingest.discover([str(logdir)]), cache=cache)
        assert data.scores.filter(data.scores["key"] == "episode/score").height == len(steps)


def test_only_what_a_resume_wrote_again_is_dropped(tmp_path):
    """Killed after step 300 and resumed from a checkpoint at 150 without trimming: the second
    process logged 200 and 300 again (two envs each); the first process's values from 200 on go."""
    run = _small_run(tmp_path)
    first = [(100, 1.0), (100, 2.0), (200, 3.0), (200, 4.0), (300, 5.0), (300, 6.0)]
    second = [(200, 13.0), (200, 14.0), (300, 15.0), (300, 16.0), (400, 17.0)]
    _scores(run, first + second)
    scores, problems = _episode_scores(run)
    assert scores == sorted(first[:2] + second)
    assert any("8 values" in p and "resume" in p for p in problems), problems  # score and length of 4 lines


def test_scope_episodes_ending_at_one_step_all_count(tmp_path):
    run = _small_run(tmp_path)
    (run / "scores.jsonl").unlink()
    (run / "metrics.jsonl").write_text('{"step": 400, "train/loss/dyn": 1.0}\n')
    write_scope(run, "episode/score", [100, 100, 200, 200], [1.0, 2.0, 3.0, 4.0])
    scores, _ = _episode_scores(run)
    assert scores == [(100, 1.0), (100, 2.0), (200, 3.0), (200, 4.0)]


# ---------------------------------------------------------------- overflow and copies


def test_a_score_that_overflows_the_aggregates_is_refused(tmp_path):
    for method in ("baseline", "adapt"):
        for seed in range(2):
            _small_run(tmp_path, method, seed)
    run = next((tmp_path / "atari100k_alien_adapt").iterdir())
    with open(run / "scores.jsonl", "a") as f:
        f.write(
            '{"step": 20000, "episode/score": 1.7e308, "episode/length": 10}\n'
            '{"step": 20000, "episode/score": 1.7e308, "episode/length": 10}\n'
        )
    result = _invoke(
        [
            "compare",
            str(tmp_path / "atari100k_alien_baseline"),
            str(tmp_path / "atari100k_alien_adapt"),
            "--reps",
            "100",
            "--no-report",
            "--no-cache",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    line = _error_line(result)
    assert "1.7e+308" in line and run.name in line
    result = _invoke(["best-seed", str(tmp_path / "atari100k_alien_adapt"), "--no-cache"])
    assert "1.7e+308" in _error_line(result)


def _compare_with_a_copy(tmp_path, gzipped, relabel):
    """Two seeds a method, plus a copy of adapt's first run (its logs gzipped or not; with
    `relabel`, its config.yaml says seed 7); the compare's output, the original and the copy."""
    for method in ("baseline", "adapt"):
        for seed in range(2):
            _small_run(tmp_path, method, seed)
    original = sorted((tmp_path / "atari100k_alien_adapt").iterdir())[0]
    copy = original.parent / "seed7_copy"
    shutil.copytree(original, copy)
    for log in copy.glob("*.jsonl") if gzipped else []:
        log.with_name(log.name + ".gz").write_bytes(gzip.compress(log.read_bytes()))
        log.unlink()
    if relabel:
        (copy / "config.yaml").write_text("seed: 7\ntask: atari100k_alien\n")  # relabelled, same logs
    result = _invoke(
        [
            "compare",
            str(tmp_path / "atari100k_alien_baseline"),
            str(tmp_path / "atari100k_alien_adapt"),
            "--reps",
            "100",
            "--no-report",
            "--no-cache",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout, original, copy


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzipped"])
def test_a_copy_counts_once_with_one_warning(tmp_path, gzipped):
    """A copied run folder (same seed, config and logs), or a copy whose logs were gzipped, is
    the same run: counted once, one note, and the comparison goes on."""
    out, original, copy = _compare_with_a_copy(tmp_path, gzipped, relabel=False)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    notes = [note for note in summary["notes"] if "copy" in note]
    assert len(notes) == 1 and f"{copy} is a copy of {original}" in notes[0] and "is a copy of" in out
    runs = summary["runs"]
    assert [r["seed"] for r in runs if r["method"] == "adapt"] == [0, 1]


def test_identical_logs_under_another_seed_count_twice_with_a_note(tmp_path):
    """Identical logs alone do not make a copy (every episode of a hard game can score 0)."""
    out, original, copy = _compare_with_a_copy(tmp_path, False, relabel=True)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    twins = [note for note in summary["notes"] if "byte-identical logs but another seed" in note]
    assert len(twins) == 1 and str(copy) in twins[0] and not any("is a copy of" in n for n in summary["notes"])
    runs = summary["runs"]
    assert sorted(r["seed"] for r in runs if r["method"] == "adapt") == [0, 1, 7]


def test_open_loop_folder_of_the_report_stays_in_out(tmp_path):
    """The report's open-loop folder was `out/openloop/<reference>_vs_<method>` verbatim."""
    folder = report.openloop_folder(tmp_path / "out", "../../../../ref", "x/../../y")
    assert confine.inside(folder, tmp_path / "out" / "openloop") and folder.parent == tmp_path / "out" / "openloop"


# ---------------------------------------------------------------- options that hung or replaced a device


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    "make_args, expected",
    [
        (lambda r, t: ["compare", str(r), str(r), "--reps", str(10**12)], "--reps 1000000000000: expected 100 .."),
        (lambda r, t: ["openloop", str(r), str(r), "--horizon", str(10**9)], "--horizon"),
        (lambda r, t: ["openloop", str(r), str(r), "--sequences", str(10**9)], "--sequences"),
        (
            lambda r, t: ["watch", str(r), "--html", str(_fifo(t / "page")), "--iterations", "1"],
            "exists and is not a regular file",
        ),
        (
            lambda r, t: ["best-seed", str(r), "--video", str(_fifo(t / "v.mp4")), "--no-cache"],
            "exists and is not a regular file",
        ),
    ],
    ids=[
        "reps 1e12 ran for hours",
        "horizon 1e9",
        "sequences 1e9",
        "--html a FIFO was replaced by a file",
        "--video a FIFO blocked forever",
    ],
)
def test_options_that_hung_or_replaced_a_special_file(tmp_path, make_args, expected):
    run = _small_run(tmp_path / "runs")
    args = make_args(run, tmp_path)
    result = _invoke(args)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:") or "Invalid value" in line]
    assert result.exit_code == 2 and len(errors) == 1 and expected in errors[0], result.stderr
    for special in ("page", "v.mp4"):
        if (tmp_path / special).exists() or (tmp_path / special).is_symlink():
            assert (tmp_path / special).is_fifo()


def test_watch_page_never_written_through_a_planted_temporary_name(tmp_path):
    secret = _secret(tmp_path)
    page = tmp_path / "page.html"
    (tmp_path / "page.html.tmp").symlink_to(secret)
    watch.write_atomic(page, "<html></html>")
    assert secret.read_text() == SECRET + "\n" and page.read_text() == "<html></html>"


def test_watch_never_reads_a_log_linked_out_of_the_run(tmp_path):
    run = _small_run(tmp_path / "runs")
    (run / "scores.jsonl").unlink()
    secret = _secret(tmp_path)
    secret.write_text('{"step": 1, "episode/score": 424242.0}\n')
    (run / "scores.jsonl").symlink_to(secret)
    result = _invoke(["watch", str(run), "--iterations", "1"])
    assert result.exit_code == 0 and "424242" not in result.stdout
    watcher = watch.Watcher([str(run)])
    watcher.refresh()
    assert watcher.bytes_read() == (run / "metrics.jsonl").stat().st_size


def test_a_huge_readme_is_read_only_as_far_as_its_label(tmp_path):
    import tracemalloc

    run = _small_run(tmp_path / "runs")
    with open(run / "README.md", "wb") as f:
        f.write(b"How these runs were made.\n\n")
        f.truncate(50 * 1024 * 1024)  # 50 MB, sparse
    report.markdown_html("warm up")  # imports markdown-it before memory is traced
    tracemalloc.start()
    labels = report.find_labels([run])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "How these runs were made." in labels[0].html and peak < 5 * 1024 * 1024, peak
