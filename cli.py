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


def _fail(message: str) -> None:
    """Bad input: one line on stderr, exit code 2 (never a traceback)."""
    typer.echo(f"error: {_plain(message)}", err=True)
    raise typer.Exit(code=2)


def _plain(text) -> str:
    """Text from run folders shown as itself: control characters (ANSI escapes, newlines) as `\\x1b`."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(text))


def _literal(text) -> str:
    """_plain, and rich markup in it (`[bold red]`, `[/]`) escaped: names are printed, never styled."""
    from rich.markup import escape

    return escape(_plain(text))


SEED_MAX = 2**32 - 1  # NumPy's global RNG takes seeds in 0 .. 2**32-1

CACHE_DIR = typer.Option(None, "--cache-dir", help="Ingest cache folder (default: $DREAMER_REPORT_CACHE, "
                         "else ~/.cache/dreamer-report); never inside a run dir.")
NO_CACHE = typer.Option(False, "--no-cache", help="Parse every run again and write no cache.")


def _cache(cache_dir: str | None, no_cache: bool):
    """The `cache` argument of analysis calls: off, a folder, or the default folder."""
    return False if no_cache else (cache_dir or True)


def _check_seed(seed: int, flag: str = "--seed") -> None:
    if not 0 <= seed <= SEED_MAX:
        _fail(f"{flag} {seed}: expected a whole number in 0 .. {SEED_MAX}")


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _console():
    """A rich console; wide when the output is not a terminal so tables are not cut."""
    import sys

    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160, emoji=False)


def _ci(point: float, low: float, high: float) -> str:
    return f"{point:.3f} [{low:.3f}, {high:.3f}]"


@app.command("compare")
def compare_cli(
    baseline: str = typer.Argument(..., help="Baseline runs: a run dir, a folder of runs, or a glob."),
    adapt: str = typer.Argument(..., help="Adapt runs: a run dir, a folder of runs, or a glob."),
    out: str = typer.Option(None, "--out", help="Output folder (default reports/<name>/)."),
    reps: int = typer.Option(50_000, "--reps", help="Bootstrap replications for the CIs."),
    seed: int = typer.Option(0, "--seed", help="Seed of the global NumPy RNG used by the bootstrap."),
    metric: str = typer.Option("iqm,mean,median,og", "--metric", help="Comma-separated: iqm,mean,median,og."),
    names: str = typer.Option(None, "--names", help="Method labels 'baseline,adapt' (default: from folders)."),
    window: float = typer.Option(0.1, "--window", help="Final score: mean over this last fraction of frames."),
    power_delta: float = typer.Option(None, "--power-delta", help="IQM difference for the power line (default: observed)."),
    make_report: bool = typer.Option(True, "--report/--no-report", help="Also write report.html and report.pdf."),
    cache_dir: str = CACHE_DIR,
    no_cache: bool = NO_CACHE,
):
    """Compare two methods: IQM, mean, median, optimality gap with 95% bootstrap CIs."""
    from pathlib import Path

    from analysis import compare, stats
    from analysis.ingest import IngestError

    metrics = [m.strip() for m in metric.split(",") if m.strip()]
    labels = None if names is None else [n.strip() for n in names.split(",")]
    if reps < 100:
        _fail(f"--reps {reps}: expected at least 100 bootstrap replications")
    if not 0 < window <= 1:
        _fail(f"--window {window}: expected a fraction in (0, 1]")
    if power_delta is not None and not 0 < power_delta < float("inf"):
        _fail(f"--power-delta {power_delta}: expected a positive IQM difference")
    _check_seed(seed)
    try:
        result = compare.compare([baseline], [adapt], names=labels, reps=reps, seed=seed, metrics=metrics,
                                 window=window, progress=True, power_delta=power_delta,
                                 cache=_cache(cache_dir, no_cache))
        folder = Path(out or f"reports/{result.name}")
        written = compare.write_outputs(result, folder)
        if make_report:
            from analysis import report

            data = report.from_comparison(result, written, folder, [baseline], [adapt])
            written.update(report.write(data, folder))
    except (IngestError, ValueError, OSError) as error:
        _fail(_first_line(error))
    from rich.table import Table

    console = _console()
    table = Table(title=f"{_literal(result.adapt)} vs {_literal(result.baseline)}: human-normalized final scores, 95% CIs")
    for column in ["task", "method"] + [stats.METRIC_TITLES[m] for m in result.metrics] + [f"P({_literal(result.adapt)} > {_literal(result.baseline)})"]:
        table.add_column(column)
    for scope in result.tasks + [compare.OVERALL]:
        poi = result.poi.filter(result.poi["scope"] == scope).row(0, named=True)
        for method in (result.baseline, result.adapt):
            rows = result.aggregate.filter((result.aggregate["scope"] == scope) & (result.aggregate["method"] == method))
            cells = [_ci(*rows.filter(rows["metric"] == m).select("point", "low", "high").row(0)) for m in result.metrics]
            last = _ci(poi["point"], poi["low"], poi["high"]) if method == result.adapt else ""
            table.add_row(_literal(scope.removeprefix("atari100k_")), f"{_literal(method)} (n={rows['runs'][0]})", *cells, last,
                          end_section=method == result.adapt)
    console.print(table)
    console.print(f"bootstrap: seed {result.seed}, {result.reps:,} reps (stratified over runs, percentile CIs); "
                  + stats.final_score_definition(result.window))
    console.print(_power_line(result.power))
    for note in result.notes:
        console.print(f"note: {_plain(note)}", markup=False)
    if result.data.problems.height:
        console.print(f"{result.data.problems.height} ingest problem(s); list them with `dreamer-report runs`")
    files = [path for path in written.values() if isinstance(path, Path)]
    console.print(f"wrote {len(files)} files to {_plain(folder)}", markup=False)
    if make_report:
        console.print(_plain(f"report: {written['html']} and {written['pdf']} ({written['pages']} pages)"), markup=False)


def _power_line(power: dict | None) -> str:
    if power is None:
        return "power: not computed (no IQM difference to size a study for)"
    n = power["seeds_needed"]
    needed = f"{n} seeds per method" if n else f"more than {power['max_seeds']} seeds per method"
    return (f"power: to detect an IQM difference of {power['delta']:.3f} at {power['power']:.0%} power "
            f"(alpha {power['alpha']}, {power['sims']:,} simulated studies from the observed spread): {needed}")


@app.command("mask")
def mask_cli(
    runs: list[str] = typer.Argument(..., help="Run dirs, folders of runs, or globs."),
    out: str = typer.Option("reports/mask", "--out", help="Output folder for the figures."),
    cache_dir: str = CACHE_DIR,
    no_cache: bool = NO_CACHE,
):
    """Mask activation, severity and effective horizon against train/loss/dyn."""
    from pathlib import Path

    from analysis import mask
    from analysis.ingest import IngestError

    try:
        result = mask.mask_diagnostics(runs, progress=True, cache=_cache(cache_dir, no_cache))
        written = mask.write_outputs(result, Path(out))
    except (IngestError, ValueError, OSError) as error:
        _fail(_first_line(error))
    from rich.table import Table

    table = Table(title="Adaptive horizon per run")
    for column in ("run", "log lines", "updates active", "mean horizon_eff", "mean severity", "mean loss/dyn"):
        table.add_column(column)
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    for row in result.summary.iter_rows(named=True):
        table.add_row(_literal(row["run"]), str(row["logged"]), fmt(row["frac_active"], ".1%"),
                      fmt(row["mean_horizon_eff"], ".2f"), fmt(row["mean_severity"], ".3f"),
                      fmt(row["mean_loss_dyn"], ".3f"))
    console = _console()
    console.print(table)
    console.print("'-': the run logged no train/imag_adapt keys (mask disabled)")
    console.print(f"wrote {len(written)} files to {_plain(out)}", markup=False)


@app.command("openloop")
def openloop_cli(
    baseline: str = typer.Argument(..., help="Baseline run dir (or a folder of runs: its best seed)."),
    adapt: str = typer.Argument(..., help="Adapt run dir (or a folder of runs: its best seed)."),
    out: str = typer.Option("reports/openloop", "--out", help="Output folder."),
    context: int = typer.Option(5, "--context", min=1, help="Observed frames (checkpoint source)."),
    horizon: int = typer.Option(45, "--horizon", min=1, help="Imagined frames (checkpoint source)."),
    step: int = typer.Option(None, "--step", help="Scope video step (default: the last)."),
    source: str = typer.Option("auto", "--source", help="auto (checkpoints if both have one), ckpt or scope."),
    sequences: int = typer.Option(4, "--sequences", min=1, help="Sequences to roll out (checkpoint source)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the rollout's env and actions (checkpoint source)."),
    cache_dir: str = CACHE_DIR,
    no_cache: bool = NO_CACHE,
):
    """Open-loop comparison panels: truth / baseline / adapt / error."""
    from pathlib import Path

    from analysis import openloop, ranking

    _check_seed(seed)
    try:
        runs = {}
        for side, path in (("baseline", baseline), ("adapt", adapt)):
            runs[side], why = ranking.resolve_run(path, cache=_cache(cache_dir, no_cache))
            typer.echo(_plain(f"{side}: {runs[side]} ({why})"))
        b, a, same = openloop.load_pair(runs["baseline"], runs["adapt"], source, step, context, horizon,
                                        sequences, seed)
        paths = openloop.export(b, a, same, Path(out))
    except (ValueError, OSError) as error:
        _fail(_first_line(error))
    typer.echo(_plain(f"source: {b.source} | {a.source}; {b.context} observed + {b.horizon} imagined frames"))
    for kind, files in paths.items():
        typer.echo(_plain(f"{kind}: {len(files)} file(s) in {Path(out)}"))


@app.command("best-seed")
def best_seed_cli(
    runs: list[str] = typer.Argument(..., help="Run dirs, folders of runs, or globs."),
    video: str = typer.Option(None, "--video", help="Where to write the open-loop video (.mp4)."),
    source: str = typer.Option("auto", "--source", help="auto (checkpoint if present, else scope), ckpt or scope."),
    step: int = typer.Option(None, "--step", help="Scope video step (default: the last)."),
    cache_dir: str = CACHE_DIR,
    no_cache: bool = NO_CACHE,
):
    """Pick the best seed by final score and export its open-loop video."""
    from pathlib import Path

    from analysis import openloop, ranking

    try:
        ranked = ranking.seed_table(runs, cache=_cache(cache_dir, no_cache))
        for rank, row in enumerate(ranked, 1):
            score = "no episodes" if row["final_score"] is None else f"{row['final_score']:.2f}"
            score += " (fallback: last episode)" if row["fallback"] else ""
            tie = "" if row["tie_score"] is None else f" (last 5%: {row['tie_score']:.2f})"
            typer.echo(_plain(f"{rank:>3}. {row['run']}  seed {row['seed']}  final score {score}{tie}"))
        best = ranked[0]
        if best["final_score"] is None:
            raise ValueError("no run has episode scores; cannot pick a best seed")
        typer.echo(_plain(f"best: {best['run']} ({best['path']})"))
        if video:
            ol = openloop.load_single(best["path"], source, step)
            written = openloop.single_video(ol, Path(video))
            typer.echo(_plain(f"video: {written} ({ol.source}; {ol.context} observed + {ol.horizon} imagined)"))
    except (ValueError, OSError) as error:
        _fail(_first_line(error))


@app.command("report")
def report_cli(
    baseline: str = typer.Argument(..., help="Baseline runs."),
    adapt: str = typer.Argument(..., help="Adapt runs."),
    out: str = typer.Option(None, "--out", help="Output folder (default reports/<name>/)."),
    reps: int = typer.Option(10_000, "--reps", min=100, help="Bootstrap repetitions."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    source: str = typer.Option("auto", "--openloop-source", help="Open loop from auto, ckpt or scope."),
    cache_dir: str = CACHE_DIR,
    no_cache: bool = NO_CACHE,
):
    """Write the full report: report.html (self-contained) and report.pdf."""
    from pathlib import Path

    from analysis import report

    folder = Path(out) if out else Path("reports") / f"{Path(adapt.rstrip('/')).name}_vs_{Path(baseline.rstrip('/')).name}"
    _check_seed(seed)
    try:
        data = report.collect([baseline], [adapt], folder, reps=reps, seed=seed, openloop_source=source,
                              progress=True, cache=_cache(cache_dir, no_cache))
        paths = report.write(data, folder)
    except (ValueError, OSError) as error:
        _fail(_first_line(error))
    if not data.labels:
        typer.echo("WARNING: no README beside the runs: the report's data are unlabelled.", err=True)
    typer.echo(_plain(f"report: {paths['html']} and {paths['pdf']} ({paths['pages']} pages)"))


@app.command("runs")
def runs_cli(
    paths: list[str] = typer.Argument(..., help="Run dirs, folders of runs, or globs."),
    cache_dir: str = CACHE_DIR,
    no_cache: bool = NO_CACHE,
):
    """List the runs found: task, method, seed, steps, episodes and problems."""
    from analysis import ingest

    try:
        found = ingest.discover(paths)
        data = ingest.ingest(found, progress=True, cache=_cache(cache_dir, no_cache))
    except (ingest.IngestError, ValueError, OSError) as error:
        _fail(_first_line(error))
    from rich.table import Table

    last = dict(ingest.last_steps(data.scores, data.metrics).select("run", "last_step").iter_rows())
    episodes = data.scores.filter(data.scores["key"] == "episode/score")["run"].value_counts()
    episodes = dict(episodes.iter_rows())
    problems = data.problems["run"].value_counts()
    problems = dict(problems.iter_rows())
    table = Table(title=f"{len(found)} run(s)")
    for column in ("run", "task", "method", "seed", "last step", "episodes", "problems"):
        table.add_column(column)
    for run in found:
        table.add_row(_literal(run.name), _literal(run.task), _literal(run.method), str(run.seed), f"{last.get(run.name, 0):,}",
                      str(episodes.get(run.name, 0)), str(problems.get(run.name, 0)))
    console = _console()
    console.print(table)
    for row in data.problems.iter_rows(named=True):
        where = row["file"] + (f":{row['line']}" if row["line"] is not None else "")
        console.print(_plain(f"problem: {row['run']}: {where}: {row['problem']}"), markup=False)
    if not data.problems.height:
        console.print("no problems found")


if __name__ == "__main__":
    app()
