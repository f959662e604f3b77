"""dreamer-report: analyse and report DreamerV3 training runs (SPEC section 5).

This file only parses arguments and prints; the work lives in `analysis/`.
Run `dreamer-report --help` for the commands.
"""

import typer

app = typer.Typer(
    help="Analyse and report DreamerV3 runs: compare methods with rliable statistics, "
    "plot the adaptive-horizon mask, export open-loop panels and videos, write reports.",
    no_args_is_help=True,
    add_completion=False,
)


def _not_built(command: str) -> None:
    """Say plainly that a command does not exist yet; exit 2 with no fake output."""
    typer.echo(f"dreamer-report {command}: not built yet.", err=True)
    raise typer.Exit(code=2)


@app.command("compare")
def compare_cli(
    baseline: str = typer.Argument(..., help="Baseline runs: a run dir, a folder of runs, or a glob."),
    adapt: str = typer.Argument(..., help="Adapt runs: a run dir, a folder of runs, or a glob."),
    out: str = typer.Option(None, "--out", help="Output folder (default reports/<name>/)."),
):
    """Compare two methods: IQM, mean, median, optimality gap with 95% bootstrap CIs."""
    _not_built("compare")


@app.command("mask")
def mask_cli(runs: list[str] = typer.Argument(..., help="Run dirs, folders of runs, or globs.")):
    """Mask activation, severity and effective horizon against train/loss/dyn."""
    _not_built("mask")


@app.command("openloop")
def openloop_cli(
    baseline: str = typer.Argument(..., help="Baseline run (dir or folder)."),
    adapt: str = typer.Argument(..., help="Adapt run (dir or folder)."),
):
    """Open-loop comparison panels: truth / baseline / adapt / error."""
    _not_built("openloop")


@app.command("best-seed")
def best_seed_cli(
    runs: list[str] = typer.Argument(..., help="Run dirs, folders of runs, or globs."),
    video: str = typer.Option(None, "--video", help="Where to write the open-loop video (.mp4)."),
):
    """Pick the best seed by final score and export its open-loop video."""
    _not_built("best-seed")


@app.command("report")
def report_cli(
    baseline: str = typer.Argument(..., help="Baseline runs."),
    adapt: str = typer.Argument(..., help="Adapt runs."),
    out: str = typer.Option(None, "--out", help="Output folder (default reports/<name>/)."),
):
    """Write the full report: report.html (self-contained) and report.pdf."""
    _not_built("report")


@app.command("runs")
def runs_cli(paths: list[str] = typer.Argument(..., help="Run dirs, folders of runs, or globs.")):
    """List the runs found: task, method, seed, steps, episodes and problems."""
    _not_built("runs")


if __name__ == "__main__":
    app()
