"""watch: incremental reads of appended bytes only, torn lines held back until they stay torn,
every appended episode shown exactly once while a writer appends, a clean Ctrl-C, an HTML page."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from runfactory import write_run
from typer.testing import CliRunner

from analysis import watch
from cli import app

ROOT = Path(__file__).parent.parent
runner = CliRunner()


def test_tail_holds_an_unterminated_line_until_it_stays_torn(tmp_path):
    path = tmp_path / "scores.jsonl"
    path.write_bytes(b'{"step": 1, "episode/score": 5}\n{"step": 2, "epi')
    tail = watch.Tail(path, torn_after=5.0)
    rows, problems = tail.poll(now=0.0)
    assert [r["step"] for r in rows] == [1] and problems == []
    assert tail.poll(now=4.0) == ([], [])  # still being written: not a problem yet
    rows, problems = tail.poll(now=5.0)
    assert rows == [] and len(problems) == 1 and "scores.jsonl:2" in problems[0] and "torn" in problems[0]
    assert tail.poll(now=9.0) == ([], [])  # reported once
    with open(path, "ab") as f:
        f.write(b'sode/score": 7}\n')
    rows, problems = tail.poll(now=10.0)
    assert rows == [{"step": 2.0, "episode/score": 7.0}] and problems == []
    assert tail.bytes_read == path.stat().st_size  # each byte read once


def test_tail_reports_a_glued_fragment_and_keeps_the_rest(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 100, "a": 1}\n{"step": 200, "epi{"step": 200, "a": 2}\n{"step": 300, "a": 3}\n')
    rows, problems = watch.Tail(path).poll(now=0.0)
    assert [r["step"] for r in rows] == [100, 200, 300]  # the glued whole record is kept, as ingest keeps it
    assert len(problems) == 1 and "metrics.jsonl:2: a record cut short" in problems[0]


def test_tail_reads_hostile_lines_by_ingests_rules(tmp_path):
    """Values ingest refuses (too large, too deep, wrong type) are problems, never a crash."""
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(
        b'{"step": 1, "a": 1'
        + b"0" * 400
        + b"}\n"
        + b"[" * 100_000
        + b"\n"
        + b'{"step": "2", "a": 1}\n{"step": 3, "a": "x", "b": 2}\n'
    )
    rows, problems = watch.Tail(path).poll(now=0.0)
    assert rows == [{"step": 1}, {"step": 3, "b": 2.0}]
    assert [p.split(": ", 1)[0] for p in problems] == [
        "metrics.jsonl:1",
        "metrics.jsonl:2",
        "metrics.jsonl:3",
        "metrics.jsonl:4",
    ]


def test_tail_skips_an_over_long_line_in_bounded_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(watch.jsonl, "MAX_LINE_BYTES", 1000)
    path = tmp_path / "scores.jsonl"
    path.write_bytes(b'{"step": 1, "x": 1}\n' + b"y" * 3000)
    tail = watch.Tail(path)
    rows, problems = tail.poll(now=0.0)
    assert [r["step"] for r in rows] == [1] and "scores.jsonl:2: line longer than 1,000" in problems[0]
    with open(path, "ab") as f:
        f.write(b"y" * 3000 + b'\n{"step": 2, "x": 2}\n')
    rows, problems = tail.poll(now=1.0)
    assert [r["step"] for r in rows] == [2] and problems == [] and tail.pending == b""


def test_a_file_that_shrinks_is_read_again_and_said_so(tmp_path):
    path = tmp_path / "scores.jsonl"
    path.write_bytes(b'{"step": 1, "x": 1}\n{"step": 2, "x": 2}\n')
    tail = watch.Tail(path)
    tail.poll(0.0)
    path.write_bytes(b'{"step": 9, "x": 3}\n')
    rows, problems = tail.poll(1.0)
    assert [r["step"] for r in rows] == [9] and "shrank" in problems[0]


def test_every_appended_episode_appears_once_while_a_writer_appends(tmp_path):
    runs = [write_run(tmp_path, "atari100k_alien", "adapt", seed, episodes=5, log_lines=3) for seed in range(3)]
    watcher = watch.Watcher([str(tmp_path)], torn_after=60.0)
    watcher.refresh()
    before = {s.name: list(s.scores) for s in watcher.runs.values()}
    written = {run: [] for run in runs}

    def writer():
        for i in range(60):
            run = runs[i % 3]
            line = json.dumps({"step": 500_000 + i, "episode/score": float(i), "episode/length": 10.0}) + "\n"
            half = len(line) // 2
            with open(run / "scores.jsonl", "a") as f:  # half a line, a pause, the rest: a writer mid-line
                f.write(line[:half])
                f.flush()
                time.sleep(0.002)
                f.write(line[half:])
            with open(run / "metrics.jsonl", "a") as f:
                f.write(json.dumps({"step": 500_000 + i, "train/imag_adapt/active": 1.0}) + "\n")
            written[run].append(float(i))
            time.sleep(0.003)

    thread = threading.Thread(target=writer)
    thread.start()
    refreshes = 0
    while thread.is_alive():
        watcher.refresh()
        refreshes += 1
    thread.join()
    watcher.refresh()
    assert refreshes > 3  # the watcher really read while the writer wrote
    for run in runs:
        state = watcher.runs[run]
        assert state.scores == before[state.name] + written[run]  # all there, none twice, in order
        assert state.problems == []
        for tail in watcher.tails[run]:
            assert tail.bytes_read == tail.path.stat().st_size and tail.pending == b""
        assert state.last_step == 500_000 + max(written[run])
    columns, rows = watcher.table()
    assert len(rows) == 3 and rows[0][columns.index("mask active (last 10)")] == "100%"


def test_watch_cli_prints_the_view_and_keeps_an_html_page(tmp_path):
    write_run(tmp_path, "atari100k_alien", "[bold]x", 0, episodes=5, log_lines=3)
    page = tmp_path / "view" / "watch.html"
    result = runner.invoke(app, ["watch", str(tmp_path), "--iterations", "2", "--interval", "0.1", "--html", str(page)])
    assert result.exit_code == 0, result.output
    assert result.output.count("1 run(s) at") == 2 and "watch stopped" in result.output
    assert "[bold]x" in result.output  # a name is printed literally, not as markup
    text = page.read_text()
    assert '<meta http-equiv="refresh"' in text and "&lt;" not in text and "[bold]x" in text
    result = runner.invoke(app, ["watch", str(tmp_path / "nope")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1


def test_ctrl_c_exits_cleanly(tmp_path):
    write_run(tmp_path, "atari100k_alien", "adapt", 0, episodes=5, log_lines=3)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "watch", str(tmp_path), "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(tmp_path),
    )
    deadline = time.time() + 60
    first = proc.stdout.readline()  # the view has been drawn once: the loop is running
    assert first and time.time() < deadline
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "watch stopped" in out and "Traceback" not in err
