"""Every `dreamer-report` command line in README.md runs as written on the shipped runs.

The lines are read from the README's code blocks, so an edit there is checked here. They run
in a scratch folder where `artifacts/` is the repository's own, so their outputs land in the
scratch folder's `reports/`, never in the checkout.
"""

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

ROOT = Path(__file__).parent.parent
runner = CliRunner()


def readme_commands(text: str) -> list[str]:
    """`dreamer-report ...` lines inside fenced code blocks, comments cut, continuations joined."""
    commands, fenced, pending = [], False, ""
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            continue
        line = pending + line.split("  #")[0].strip()
        pending = line[:-1] + " " if line.endswith("\\") else ""
        if not pending and line.startswith("dreamer-report "):
            commands.append(line)
    return commands


COMMANDS = readme_commands((ROOT / "README.md").read_text())


def test_the_readme_has_toolkit_commands():
    names = {shlex.split(c)[1] for c in COMMANDS}
    assert {"runs", "compare", "mask", "openloop", "best-seed", "report"} <= names, names


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme")
    (folder / "artifacts").symlink_to(ROOT / "artifacts", target_is_directory=True)
    return folder


@pytest.mark.parametrize("command", [c for c in COMMANDS if shlex.split(c)[1] != "watch"])
def test_readme_command_runs_as_written(command, scratch, monkeypatch):
    monkeypatch.chdir(scratch)
    result = runner.invoke(app, shlex.split(command)[1:])
    assert result.exit_code == 0, (command, result.output)


@pytest.mark.parametrize("command", [c for c in COMMANDS if shlex.split(c)[1] == "watch"])
def test_readme_watch_runs_as_written_until_ctrl_c(command, scratch):
    """watch runs until interrupted: start it as written, wait for the first view, press Ctrl-C."""

    args = [sys.executable, str(ROOT / "cli.py"), *shlex.split(command)[1:]]
    proc = subprocess.Popen(args, cwd=scratch, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    first = proc.stdout.readline()  # bytes: a box-drawing character may straddle the read
    assert first, proc.stderr.read()  # the first view is drawn
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    out, err = (first + rest).decode(), err.decode()
    assert proc.returncode == 0 and "watch stopped" in out, err
    html = [a for a in shlex.split(command) if a.endswith(".html")]
    assert not html or (scratch / html[0]).is_file()
