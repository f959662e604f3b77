"""dreamer-report: analyse and report DreamerV3 training runs.

This file only parses arguments and prints; the work lives in `analysis/`.
Run `dreamer-report --help` for the commands.
"""

import typer

from dreamerv3 import remotepath  # the first line of an error, as the trainer prints it

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

CACHE_DIR = typer.Option(
    None,
    "--cache-dir",
    help="Ingest cache folder (default: $DREAMER_REPORT_CACHE, else ~/.cache/dreamer-report); never inside a run dir.",
)
NO_CACHE = typer.Option(False, "--no-cache", help="Parse every run again and write no cache.")


def _cache(cache_dir: str | None, no_cache: bool):
    """The `cache` argument of analysis calls: off, a folder, or the default folder."""
    return False if no_cache else (cache_dir or True)


def _check_seed(seed: int, flag: str = "--seed") -> None:
    if not 0 <= seed <= SEED_MAX:
        _fail(f"{flag} {seed}: expected a whole number in 0 .. {SEED_MAX}")


_first_line = remotepath.first_line  # the first non-blank line of an error


def _console():
    """A rich console; wide when the output is not a terminal so tables are not cut."""
    import sys

    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160, emoji=False)


# Options shared by `compare` and `report`, defined once (the library holds their defaults).
from typing import Annotated  # noqa: E402

from analysis import defaults  # noqa: E402 (imports nothing: --help stays fast)

Methods = Annotated[
    list[str],
    typer.Argument(
        metavar="REF OTHER...",
        help="One argument per method, the reference first; each a run dir, a folder of runs, or a glob.",
        show_default=False,
    ),
]
Out = Annotated[str, typer.Option("--out", help="Output folder (default reports/<task>_<ref>_vs_<others>/).")]
Reps = Annotated[int, typer.Option("--reps", help="Bootstrap replications for the CIs.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the bootstrap's NumPy RandomState.")]
Metric = Annotated[str, typer.Option("--metric", help="Comma-separated: iqm,mean,median,og.")]
Names = Annotated[
    str, typer.Option("--names", help="Method labels, one per argument: 'ref,other,...' (default: from the folders).")
]
Window = Annotated[
    float,
    typer.Option(
        "--window",
        help="Final score: mean over this last fraction of each run's frames (a run with no episode there: its last).",
    ),
]
Frames = Annotated[
    str,
    typer.Option(
        "--frames",
        help="Score instead: mean over the episodes ending in env "
        "frames (START, END], the same for every run, e.g. "
        "9500:13000 or 40k:50k.",
    ),
]
PowerDelta = Annotated[
    float,
    typer.Option("--power-delta", help="IQM difference for the power statement (default: each method's observed one)."),
]
PowerMaxSeeds = Annotated[
    int,
    typer.Option("--power-max-seeds", help="Largest study (seeds per method) the power statement tries, up to 1000."),
]
ScoreKey = Annotated[
    str,
    typer.Option("--score-key", help="TensorBoard runs and CSV exports: the tag or column holding an episode's score."),
]
StepKey = Annotated[
    str,
    typer.Option(
        "--step-key",
        help="TensorBoard runs and CSV exports: 'step' (the event's "
        "step, or the CSV column step) or the tag / column of the x.",
    ),
]
FramesPerStep = Annotated[
    float,
    typer.Option(
        "--frames-per-step", help="TensorBoard runs and CSV exports: env frames per unit of the step (e.g. 4)."
    ),
]
Summary = Annotated[
    str,
    typer.Option(
        "--summary",
        help="Each run's score: window (mean over the last --window "
        "of its frames, or over --frames), last (its last episode) "
        "or max (its best episode).",
    ),
]
Smooth = Annotated[
    str,
    typer.Option(
        "--smooth",
        help="Score curves' display smoothing: none, window:N (mean of the "
        "last N episodes) or ema:W (TensorBoard's debiased EMA); "
        "statistics are never smoothed.",
    ),
]
XAxis = Annotated[
    str,
    typer.Option(
        "--x", help="Curves' x axis: frames (env frames) or steps (agent steps: env frames / the runs' action repeat)."
    ),
]
OpenloopSource = Annotated[str, typer.Option("--openloop-source", help="Report's open loop from auto, ckpt or scope.")]


def _compare_and_report(
    methods,
    out,
    reps,
    seed,
    metric,
    names,
    window,
    power_delta,
    make_report,
    source,
    cache,
    frames=None,
    power_max_seeds=defaults.POWER_MAX_SEEDS,
    score_key=defaults.SCORE_KEY,
    step_key="step",
    frames_per_step=1.0,
    summary="window",
    smooth="window:10",
    x="frames",
) -> None:
    """`compare` and `report`: one pipeline (analysis.pipeline.run); print its table and files."""
    from analysis import compare, foreign, pipeline, stats
    from analysis.ingest import IngestError

    if len(methods) < 2:
        _fail(f"got {len(methods)} method argument(s); expected REF OTHER [OTHER ...]")
    _check_seed(seed)
    if not (0 < frames_per_step < float("inf")):
        _fail(f"--frames-per-step {frames_per_step}: expected a positive number of env frames")
    keys = foreign.KeyMap(score_key, step_key, frames_per_step)
    metrics = [m.strip() for m in metric.split(",") if m.strip()]
    labels = None if names is None else [n.strip() for n in names.split(",")]
    try:
        interval = None if frames is None else stats.parse_frames(frames)
        done = pipeline.run(
            [[m] for m in methods],
            out,
            labels,
            reps,
            seed,
            metrics,
            window,
            power_delta,
            make_report,
            source,
            progress=True,
            cache=cache,
            frames=interval,
            power_max_seeds=power_max_seeds,
            keys=keys,
            summary=summary,
            smooth=smooth,
            x=x,
        )
    except (IngestError, ValueError, OSError) as error:
        _fail(_first_line(error))
    from rich.table import Table
    from rich.text import Text

    result = done.result
    columns, rows = compare.table_rows(result)
    table = Table(title=Text(_plain(f"{', '.join(result.others)} vs {result.reference}: {result.unit}s, 95% CIs")))
    for column in columns:
        table.add_column(Text(_plain(column)))
    for i, row in enumerate(rows):  # Text: names from disk print literally, never as markup
        table.add_row(*(Text(_plain(cell)) for cell in row), end_section=(i + 1) % len(result.methods) == 0)
    console = _console()
    console.print(table)
    for line in (
        compare.coverage_sentences(result)
        + [compare.bootstrap_sentence(result)]
        + compare.difference_sentences(result)
        + compare.power_sentences(result)
    ):
        console.print(_plain(line), markup=False)
    for note in result.notes:
        console.print(_plain(f"note: {note}"), markup=False)
    if result.data.problems.height:
        console.print(f"{result.data.problems.height} ingest problem(s); list them with `dreamer-report runs`")
    console.print(_plain(f"wrote {len(done.written)} files to {done.folder}"), markup=False)
    if done.report:
        console.print(
            _plain(f"report: {done.report['html']} and {done.report['pdf']} ({done.report['pages']} pages)"),
            markup=False,
        )
        if not done.labelled:
            typer.echo("WARNING: no README beside the runs: the report's data are unlabelled.", err=True)


@app.command("compare")
def compare_cli(
    methods: Methods,
    out: Out = None,
    reps: Reps = defaults.REPS,
    seed: Seed = 0,
    metric: Metric = ",".join(defaults.METRICS),
    names: Names = None,
    window: Window = defaults.WINDOW,
    frames: Frames = None,
    power_delta: PowerDelta = None,
    power_max_seeds: PowerMaxSeeds = defaults.POWER_MAX_SEEDS,
    make_report: Annotated[
        bool, typer.Option("--report/--no-report", help="Also write report.html and report.pdf.")
    ] = True,
    source: OpenloopSource = defaults.OPENLOOP_SOURCE,
    cache_dir: str = CACHE_DIR,
    no_cache: bool = NO_CACHE,
    score_key: ScoreKey = defaults.SCORE_KEY,
    step_key: StepKey = "step",
    frames_per_step: FramesPerStep = 1.0,
    summary: Summary = "window",
    smooth: Smooth = "window:10",
    x: XAxis = "frames",
):
    """Compare methods against the first: IQM, mean, median, optimality gap with 95% bootstrap CIs,
    probability of improvement and seeds needed; writes figures and the report."""
    _compare_and_report(
        methods,
        out,
        reps,
        seed,
        metric,
        names,
        window,
        power_delta,
        make_report,
        source,
        _cache(cache_dir, no_cache),
        frames,
        power_max_seeds,
        score_key,
        step_key,
        frames_per_step,
        summary,
        smooth,
        x,
    )


# `report` is `compare` under another name (the report is written by default): one command
# function, one pipeline, the same options and defaults.
app.command(
    "report",
    help="Write the full report (report.html, self-contained, and report.pdf) of the comparison: "
    "`compare` under another name.",
)(compare_cli)


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
    shifted = result.summary["shift_step"].is_not_null().any()
    columns = ["run", "log lines", "updates active", "mean horizon_eff", "mean severity", "mean loss/dyn"]
    if shifted:
        columns += ["shift at", "active before", "active after", "first on after"]
    for column in columns:  # a long run name wraps instead of being cut to "shift_cartpole_b…"
        table.add_column(column, overflow="fold" if column == "run" else "ellipsis")
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    for row in result.summary.iter_rows(named=True):
        cells = [
            _literal(row["run"]),
            str(row["logged"]),
            fmt(row["frac_active"], ".1%"),
            fmt(row["mean_horizon_eff"], ".2f"),
            fmt(row["mean_severity"], ".3f"),
            fmt(row["mean_loss_dyn"], ".3f"),
        ]
        if shifted:
            cells += [
                fmt(row["shift_step"], ","),
                fmt(row["active_before"], ".1%"),
                fmt(row["active_after"], ".1%"),
                fmt(row["first_active_after"], ","),
            ]
        table.add_row(*cells)
    console = _console()
    console.print(table)
    console.print("'-': the run logged no train/imag_adapt keys (mask disabled)")
    if shifted:
        console.print(
            "around the shift (env.*.shift.step): fractions of updates; 'first on after' is the "
            "end step of the first logged interval after the shift with the mask on",
            markup=False,
        )
    console.print(f"wrote {len(written)} files to {_plain(out)}", markup=False)


@app.command("openloop")
def openloop_cli(
    baseline: str = typer.Argument(..., help="Baseline run dir (or a folder of runs: its best seed)."),
    adapt: str = typer.Argument(..., help="Adapt run dir (or a folder of runs: its best seed)."),
    out: str = typer.Option("reports/openloop", "--out", help="Output folder."),
    context: int = typer.Option(
        5, "--context", min=1, max=defaults.MAX_FRAMES, help="Observed frames (checkpoint source)."
    ),
    horizon: int = typer.Option(
        45, "--horizon", min=1, max=defaults.MAX_FRAMES, help="Imagined frames (checkpoint source)."
    ),
    step: int = typer.Option(None, "--step", help="Scope video step (default: the last)."),
    source: str = typer.Option("auto", "--source", help="auto (checkpoints if both have one), ckpt or scope."),
    sequences: int = typer.Option(
        4, "--sequences", min=1, max=defaults.MAX_SEQUENCES, help="Sequences to roll out (checkpoint source)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the rollout's env and actions (checkpoint source)."),
    cache_dir: str = CACHE_DIR,
    no_cache: bool = NO_CACHE,
):
    """Open-loop comparison panels: truth / baseline / adapt / error."""
    from pathlib import Path

    from analysis import confine, ingest, openloop, ranking

    _check_seed(seed)
    try:
        runs = {}
        for side, path in (("baseline", baseline), ("adapt", adapt)):
            runs[side], why = ranking.resolve_run(path, cache=_cache(cache_dir, no_cache))
            typer.echo(_plain(f"{side}: {runs[side]} ({why})"))
        confine.refuse_inside(out, [*runs.values(), *ingest.input_runs([baseline, adapt])], "--out")
        b, a, same = openloop.load_pair(
            runs["baseline"], runs["adapt"], source, step, context, horizon, sequences, seed
        )
        written = openloop.export(b, a, same, Path(out))
    except (ValueError, OSError) as error:
        _fail(_first_line(error))
    typer.echo(_plain(f"source: {b.source} | {a.source}; {b.context} observed + {b.horizon} imagined frames"))
    for kind in ("panels", "video", "errors"):
        typer.echo(_plain(f"{kind}: {len(written[kind])} file(s) in {Path(out)}"))


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

    from analysis import confine, openloop, ranking

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
            confine.refuse_inside(video, [row["path"] for row in ranked], "--video")
            if Path(video).exists() and not Path(video).is_file():  # a FIFO would block the writer forever
                raise ValueError(f"--video {video}: exists and is not a regular file; expected an .mp4 file name")
            ol = openloop.load_single(best["path"], source, step)
            written = openloop.single_video(ol, Path(video))
            typer.echo(_plain(f"video: {written} ({ol.source}; {ol.context} observed + {ol.horizon} imagined)"))
    except (ValueError, OSError) as error:
        _fail(_first_line(error))


@app.command("runs")
def runs_cli(
    paths: list[str] = typer.Argument(..., help="Run dirs, folders of runs, or globs."),
    cache_dir: str = CACHE_DIR,
    no_cache: bool = NO_CACHE,
    score_key: ScoreKey = defaults.SCORE_KEY,
    step_key: StepKey = "step",
    frames_per_step: FramesPerStep = 1.0,
):
    """List the runs found: task, method, seed, steps, episodes and problems."""
    from analysis import foreign, ingest

    if not (0 < frames_per_step < float("inf")):
        _fail(f"--frames-per-step {frames_per_step}: expected a positive number of env frames")
    try:
        found = ingest.discover(paths)
        data = ingest.ingest(
            found,
            progress=True,
            cache=_cache(cache_dir, no_cache),
            keys=foreign.KeyMap(score_key, step_key, frames_per_step),
        )
    except (ingest.IngestError, ValueError, OSError) as error:
        _fail(_first_line(error))
    from rich.table import Table

    columns, rows = ingest.run_table(data)
    table = Table(title=f"{len(found)} run(s)")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_literal(cell) for cell in row))
    console = _console()
    console.print(table)
    for row in data.problems.iter_rows(named=True):
        where = row["file"] + (f":{row['line']}" if row["line"] is not None else "")
        console.print(_plain(f"problem: {row['run']}: {where}: {row['problem']}"), markup=False)
    if not data.problems.height:
        console.print("no problems found")


@app.command("results")
def results_cli(
    root: str = typer.Option("artifacts", "--root", help="The folder of shipped run sets."),
    out: str = typer.Option("docs/results.md", "--out", help="Where the Markdown goes."),
    redraw: bool = typer.Option(
        False,
        "--figures",
        help="Also redraw the figures beside the runs "
        "(Road Runner curve.png, the long Alien run's curve.png and losses.png).",
    ),
):
    """Compute every number the documents quote about the shipped runs and write them to --out."""
    from analysis import ingest, results

    try:
        results.check_out(out, root)
        text = results.build(root)
        written = results.redraw_figures(root) if redraw else []
        results.write(text, out, inputs=[root])
    except (ingest.IngestError, ValueError, OSError) as error:
        _fail(_first_line(error))
    for path in [out, *written]:
        typer.echo(f"wrote {path}")


@app.command("watch")
def watch_cli(
    paths: Annotated[list[str], typer.Argument(help="Run dirs, folders of runs, or globs (new runs are picked up).")],
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, max=86_400.0, help="Seconds between refreshes.")
    ] = 2.0,
    html: Annotated[str, typer.Option("--html", help="Also keep this self-refreshing HTML page up to date.")] = None,
    torn_after: Annotated[
        float,
        typer.Option(
            "--torn-after", min=0.0, help="Seconds a last line may stay unterminated before it is reported torn."
        ),
    ] = 10.0,
    iterations: Annotated[
        int, typer.Option("--iterations", min=0, help="Stop after this many refreshes (0: until Ctrl-C).")
    ] = 0,
):
    """A live view of runs while they write: last step, fps, scores, mask activity, problems."""
    from rich.live import Live
    from rich.table import Table
    from rich.text import Text

    from analysis import watch
    from analysis.confine import UnsafeTarget
    from analysis.ingest import IngestError

    try:
        watch.check_page(html)
        watcher = watch.Watcher(paths, torn_after=torn_after)
    except (IngestError, ValueError, OSError) as error:
        _fail(_first_line(error))
    console = _console()
    fits = max(1, console.height - 8) if console.is_terminal else None  # rows a terminal shows

    def view(frame) -> Table:
        columns, rows, stamp = frame
        more = f"; {len(rows) - fits} more below (all in --html)" if fits and len(rows) > fits else ""
        table = Table(title=f"{len(rows)} run(s) at {stamp}{more}; Ctrl-C to stop")
        for column in columns:
            table.add_column(column)
        for row in rows[:fits]:  # Text: names from disk print literally, never as markup
            table.add_row(*(Text(_plain(cell)) for cell in row))
        return table

    frames = watch.follow(watcher, interval, iterations, html)
    try:
        if console.is_terminal:
            with Live(console=console, auto_refresh=False) as live:
                for frame in frames:
                    live.update(view(frame), refresh=True)
        else:  # a log or a pipe: one table per refresh
            for frame in frames:
                console.print(view(frame))
    except KeyboardInterrupt:
        pass
    except (OSError, UnsafeTarget) as error:  # the --html page cannot or may not be written
        _fail(_first_line(error))
    console.print(f"watch stopped; {watcher.bytes_read():,} bytes read", markup=False)


if __name__ == "__main__":
    app()
