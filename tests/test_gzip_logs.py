"""Gzipped logs (`metrics.jsonl.gz`, `scores.jsonl.gz`) read as the plain ones are.

A gzipped copy of a run must give the same numbers and the same problems (named by the .gz
file); a run with both forms of one log is refused in one line; a gzip stream cut short, corrupt
data, a file that is not gzip and a gzip bomb are each one problem naming the file, never a
traceback; `watch` reads a .gz whole, once per change.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from runfactory import write_run, write_study
from typer.testing import CliRunner

import cli
from analysis import defaults, ingest, watch

runner = CliRunner()


def gzip_logs(root: Path) -> None:
    """Replace every JSONL log below `root` by its gzipped form."""
    for path in sorted(root.rglob("*.jsonl")):
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes(), mtime=0))
        path.unlink()


def gzipped_copy(run: Path, where: Path) -> Path:
    copy = where / run.parent.name / run.name
    shutil.copytree(run, copy)
    gzip_logs(copy)
    return copy


def _ingest(path: Path) -> ingest.Ingested:
    return ingest.ingest(ingest.discover([str(path)]), cache=False)


def _invoke(args: list[str]):
    result = runner.invoke(cli.app, args)
    output = result.stdout + result.stderr
    assert "Traceback" not in output and (result.exception is None or isinstance(result.exception, SystemExit)), output
    return result


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr
    return errors[0]


@pytest.fixture
def run(tmp_path) -> Path:
    return write_run(
        tmp_path / "plain", "atari100k_alien", "adapt", 0, frames=40_000, episodes=12, log_lines=8, scope=True
    )


def test_compare_on_a_gzipped_copy_gives_the_same_numbers(tmp_path):
    write_study(tmp_path / "plain", seeds=3, frames=40_000, episodes=30, log_lines=20)
    shutil.copytree(tmp_path / "plain", tmp_path / "gz")
    gzip_logs(tmp_path / "gz")
    assert not list((tmp_path / "gz").rglob("*.jsonl")) and list((tmp_path / "gz").rglob("*.jsonl.gz"))
    outputs = {}
    for side in ("plain", "gz"):
        out = tmp_path / f"out_{side}"
        result = _invoke(
            [
                "compare",
                str(tmp_path / side / "atari100k_alien_baseline"),
                str(tmp_path / side / "atari100k_alien_adapt"),
                "--no-report",
                "--reps",
                "300",
                "--no-cache",
                "--out",
                str(out),
            ]
        )
        assert result.exit_code == 0, result.stdout + result.stderr
        outputs[side] = result.stdout.replace(str(out), "OUT")
    assert outputs["plain"] == outputs["gz"] and "IQM" in outputs["plain"]
    written = sorted(p.relative_to(tmp_path / "out_plain") for p in (tmp_path / "out_plain").rglob("*.csv"))
    assert written
    for rel in written:
        assert (tmp_path / "out_plain" / rel).read_text() == (tmp_path / "out_gz" / rel).read_text(), rel
    summary = {side: json.loads((tmp_path / f"out_{side}" / "summary.json").read_text()) for side in ("plain", "gz")}
    for data in summary.values():
        for row in data["runs"]:
            row.pop("path")
    assert summary["plain"] == summary["gz"]


DAMAGE = {  # the damage of tests/test_damaged_runs.py that lives in the logs: (file, line, text)
    "bad values": [
        ("scores.jsonl", 3, '{"step": 5, "episode/score": "30"}'),
        ("scores.jsonl", 4, '{"step": 6, "episode/score": null}'),
        ("scores.jsonl", 5, '{"step": 7, "episode/score": 1e400}'),
    ],
    "glued and bad lines": [
        ("scores.jsonl", 3, '{"step": 200, "epi{"step": 201, "episode/score": 3.0}'),
        ("metrics.jsonl", 2, '{"step": 5, oops'),
        ("metrics.jsonl", 3, "[1, 2]"),
    ],
    "bad steps": [
        ("scores.jsonl", 3, '{"step": "5", "episode/score": 1}'),
        ("scores.jsonl", 4, '{"episode/score": 1}'),
        ("metrics.jsonl", 2, '{"step": 99999999999999999999, "train/loss/dyn": 1}'),
    ],
    "repeats after a resume": [("metrics.jsonl", 9, None)],  # the first 4 lines written again
    "torn last line": [("scores.jsonl", None, '{"step": 39999, "episode/sc')],
    "key twice": [("metrics.jsonl", 2, '{"step": 5, "train/loss/dyn": 1, "train/loss/dyn": 2}')],
}


def _damage(run: Path, edits) -> None:
    for name, at, text in edits:
        lines = (run / name).read_text().splitlines(keepends=True)
        if text is None:
            lines += lines[:4]  # a resumed process writing its first steps again
        elif at is None:
            lines.append(text)  # no newline: torn
        else:
            lines.insert(at - 1, text + "\n")
        (run / name).write_text("".join(lines))


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_gzipped_log_reports_the_same_problems_named_by_the_gz(run, tmp_path, damage):
    _damage(run, DAMAGE[damage])
    plain = _ingest(run)
    packed = _ingest(gzipped_copy(run, tmp_path / "gz"))
    assert plain.problems.height > 0
    assert packed.problems["file"].str.ends_with(".jsonl").sum() == 0  # every log problem names the .gz
    renamed = packed.problems.with_columns(pl.col("file").str.replace(r"\.gz$", ""))
    assert renamed.equals(plain.problems)
    assert packed.scores.equals(plain.scores) and packed.metrics.equals(plain.metrics)


def test_a_run_with_both_forms_of_a_log_is_refused_in_one_line(run, tmp_path):
    (run / "metrics.jsonl.gz").write_bytes(gzip.compress((run / "metrics.jsonl").read_bytes()))
    for args in (
        ["runs", str(run.parent)],
        ["compare", str(run), str(run), "--out", str(tmp_path / "o")],
        ["mask", str(run)],
        ["watch", str(run), "--iterations", "1"],
        ["best-seed", str(run), "--video", str(tmp_path / "v.mp4")],
    ):
        line = _one_error_line(_invoke(args + (["--no-cache"] if args[0] != "watch" else [])))
        assert f"{run}: holds both metrics.jsonl and metrics.jsonl.gz" in line, (args, line)


def _problems(run: Path) -> list[str]:
    result = _invoke(["runs", str(run), "--no-cache"])
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout.splitlines()


def test_a_gzip_stream_cut_short_keeps_the_lines_before_the_cut(run, tmp_path):
    copy = gzipped_copy(run, tmp_path / "gz")
    packed = (copy / "scores.jsonl.gz").read_bytes()
    (copy / "scores.jsonl.gz").write_bytes(packed[: len(packed) * 2 // 3])  # a copy interrupted
    out = "\n".join(_problems(copy))
    assert "scores.jsonl.gz" in out and "gzip stream cut short after" in out, out
    data = _ingest(copy)
    kept = data.scores.filter(pl.col("key") == "episode/score").height
    assert 0 < kept < 12
    assert any("torn last line" in p for p in data.problems["problem"])  # the cut ends inside a line


def test_garbage_after_whole_gzip_members_keeps_their_lines(run, tmp_path):
    copy = gzipped_copy(run, tmp_path / "gz")
    whole = _ingest(copy).scores.filter(pl.col("key") == "episode/score").height
    path = copy / "scores.jsonl.gz"
    path.write_bytes(path.read_bytes() + b"GARBAGE not gzip\n")  # e.g. a log appended to a .gz
    out = "\n".join(_problems(copy))
    assert "scores.jsonl.gz" in out and "data after the gzip members that is not gzip" in out, out
    assert _ingest(copy).scores.filter(pl.col("key") == "episode/score").height == whole > 0


@pytest.mark.parametrize(
    "spoil, expect",
    [
        (lambda b: b[:40] + bytes(x ^ 0x5A for x in b[40:80]) + b[80:], "corrupt gzip data"),  # a bad block
        (lambda b: b[:-8] + bytes(x ^ 0xFF for x in b[-8:-4]) + b[-4:], "incorrect data check"),  # a bad CRC
        (lambda b: b"not gzip at all\n" + b, "not a gzip file"),
        (lambda b: b"", "empty file"),
    ],
    ids=["bad block", "bad checksum", "not gzip", "empty"],
)
def test_corrupt_gzip_is_one_problem_naming_the_file(run, tmp_path, spoil, expect):
    copy = gzipped_copy(run, tmp_path / "gz")
    (copy / "scores.jsonl.gz").write_bytes(spoil((copy / "scores.jsonl.gz").read_bytes()))
    lines = [line for line in _problems(copy) if "scores.jsonl.gz" in line]
    assert lines and any(expect in line for line in lines), lines
    data = _ingest(copy)
    assert data.metrics.height > 0  # the other log is read


def test_a_gzip_bomb_stops_at_the_limit(run, tmp_path, monkeypatch):
    limit = 1 << 20
    monkeypatch.setattr(defaults, "MAX_UNZIPPED_LOG_BYTES", limit)
    copy = gzipped_copy(run, tmp_path / "gz")
    line = json.dumps({"step": 1, "train/loss/dyn": 1.0}).encode() + b"\n"
    (copy / "metrics.jsonl.gz").write_bytes(gzip.compress(b"\n" * (64 << 20) + line))  # 64 MB in 64 KB
    assert (copy / "metrics.jsonl.gz").stat().st_size < 100_000
    out = "\n".join(_problems(copy))
    assert "metrics.jsonl.gz" in out and f"decompresses to more than {limit:,} bytes" in out, out
    assert "MAX_UNZIPPED_LOG_BYTES" in out
    states = watch.Watcher([str(copy)]).refresh(now=0.0)
    assert any(f"more than {limit:,} bytes" in p for p in states[0].problems)


def test_cache_is_keyed_by_the_gz_content(run, tmp_path):
    copy = gzipped_copy(run, tmp_path / "gz")
    cache = ["--cache-dir", str(tmp_path / "cache")]
    first = _invoke(["runs", str(copy), *cache]).stdout
    assert _invoke(["runs", str(copy), *cache]).stdout == first
    lines = gzip.decompress((copy / "scores.jsonl.gz").read_bytes()).splitlines(keepends=True)
    (copy / "scores.jsonl.gz").write_bytes(gzip.compress(b"".join(lines[:5])))
    (seen,) = ingest.read_runs_cached([copy], tmp_path / "cache")[:1]
    assert seen[0].filter(pl.col("key") == "episode/score").height == 5


def test_watch_reads_a_gz_whole_once_per_change(run, tmp_path):
    copy = gzipped_copy(run, tmp_path / "gz")
    watcher = watch.Watcher([str(copy)], rediscover=1e9)
    (state,) = watcher.refresh(now=0.0)
    assert len(state.scores) == 12 and not state.problems
    read = watcher.bytes_read()
    assert read == sum(p.stat().st_size for p in copy.glob("*.jsonl.gz"))
    watcher.refresh(now=1.0)
    assert watcher.bytes_read() == read  # unchanged: not read again
    text = gzip.decompress((copy / "scores.jsonl.gz").read_bytes())
    more = json.dumps({"step": 50_000, "episode/score": 7.5}).encode() + b"\n"
    (copy / "scores.jsonl.gz").write_bytes(gzip.compress(text + more))  # gzipped again with one more episode
    (state,) = watcher.refresh(now=2.0)
    assert len(state.scores) == 13 and state.scores[-1] == 7.5 and state.last_step == 50_000


def test_mask_and_runs_print_the_same_for_a_gzipped_copy(run, tmp_path):
    copy = gzipped_copy(run, tmp_path / "gz")
    for command in (["mask"], ["runs"]):
        printed = []
        for path, out in ((run, tmp_path / "m_plain"), (copy, tmp_path / "m_gz")):
            args = command + [str(path), "--no-cache"] + (["--out", str(out)] if command == ["mask"] else [])
            result = _invoke(args)
            assert result.exit_code == 0, result.stdout + result.stderr
            printed.append(result.stdout.replace(str(path), "RUN").replace(str(out), "OUT"))
        assert printed[0] == printed[1], command
