"""bench/README.md is rendered from the benchmarks' JSON files (bench/render.py), and a
benchmark's printed tables become its JSON file (bench/record.py)."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
import record  # noqa: E402
import render  # noqa: E402


def test_readme_is_what_the_json_files_render():
    with open(render.README) as f:
        assert f.read() == render.render(), "run python bench/render.py and commit"


def test_a_benchmark_run_saves_its_printed_tables_and_lines(tmp_path, monkeypatch, capsys):
    def main():
        print("jax x cpu, 3 reps")
        print("| size | s/update |")
        print("|---|---|")
        print("| size1m | 1.234 |")

    out = tmp_path / "results" / "bench_fake.json"
    monkeypatch.setattr(sys, "argv", ["bench/bench_fake.py", "--reps", "3", "--json", str(out)])
    record.run("bench_fake", main)
    assert sys.argv == ["bench/bench_fake.py", "--reps", "3"]  # main never sees --json
    assert "| size1m | 1.234 |" in capsys.readouterr().out  # printed as before
    data = json.loads(out.read_text())
    assert data["bench"] == "bench_fake" and data["command"].endswith("bench_fake.py --reps 3")
    assert data["tables"] == [
        {"title": "jax x cpu, 3 reps", "columns": ["size", "s/update"], "rows": [["size1m", "1.234"]]}
    ]
    assert data["machine"].endswith(f"{os.cpu_count()} cores") and data["commit"]


def test_a_failed_benchmark_saves_nothing(tmp_path, monkeypatch):
    def main():
        print("| a |\n|---|\n| 1 |")
        raise RuntimeError("out of memory")

    monkeypatch.setattr(sys, "argv", ["bench/bench_fake.py", "--json", str(tmp_path / "x.json")])
    with pytest.raises(RuntimeError):
        record.run("bench_fake", main)
    assert not (tmp_path / "x.json").exists()


def test_render_shows_tables_from_a_file_and_the_command_where_none(tmp_path):
    tables = [record.table("Parameters", ["preset", "parameters"], [["size1m", "688,004"]])]
    data = {
        "bench": "bench_params",
        "command": "python bench/bench_params.py",
        "commit": "abc1234",
        "date": "2026-12-04 20:00 UTC",
        "machine": "CPU, 2 cores",
        "jax": "0.10.2 cpu",
        "load_average": {"before": 1.0, "after": 1.5},
        "tables": tables,
        "notes": ["a note"],
    }
    (tmp_path / "bench_params.json").write_text(json.dumps(data))
    text = render.render(str(tmp_path))
    assert "| size1m | 688,004 |" in text and "at commit abc1234" in text and "- a note" in text
    assert "Not measured yet (no `bench/results/bench_env.json`): `python bench/bench_env.py` writes it" in text
