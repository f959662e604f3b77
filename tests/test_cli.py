"""The dreamer-report command line: every command exists and exits cleanly."""

from typer.testing import CliRunner

from cli import app

runner = CliRunner()
COMMANDS = ["compare", "mask", "openloop", "best-seed", "report", "runs", "watch"]


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


def test_every_command_has_help():
    for command in COMMANDS:
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, (command, result.output)
