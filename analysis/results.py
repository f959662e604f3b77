"""Every number the documents quote about the shipped runs, computed from the run files.

`build(root)` reads the run sets under `root` (the repository's `artifacts/`) through
`ingest` and `readout`, and returns the Markdown of `docs/results.md`: one section per set,
each a few lines of facts and tables. A study's numbers are in its own folder
(`studies/<study>/results.md`, written by its results module with the helpers here). The labels in
`artifacts/` say how each set was made and link to its section here instead of retyping
figures; `make results` (`dreamer-report results`) rewrites the file, and a test regenerates
it and fails on any difference. Everything here is deterministic: the bootstrap CIs use a
fixed seed and the same 50,000 reps as `make demo`.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from analysis import compare, defaults, figures, gzlog, ingest, longrun, ranking, readout, stats
from dreamerv3 import safefile

REPS = 50_000  # the demo's bootstrap reps, so both print the same intervals
SEED = 0
ALIEN_RANDOM = 227.8  # analysis/atari.py


@dataclass
class Section:
    title: str  # its heading; the anchor labels link to is GitHub's slug of it
    lines: list[str]


def table(columns: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table, one line per row."""
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(map(str, row)) + " |" for row in rows),
    ]


def _read(folder: Path) -> ingest.Ingested:
    runs = sorted(ingest.discover([str(folder)]), key=lambda r: (r.method, r.seed))
    data = ingest.ingest(runs, cache=False)
    return ingest.Ingested(
        data.runs,
        *(t.with_columns(pl.col(pl.Categorical).cast(pl.String)) for t in (data.scores, data.metrics)),
        data.problems,
    )


def _values(data: ingest.Ingested, run: str, key: str, table: str = "metrics") -> np.ndarray:
    rows = getattr(data, table).filter((pl.col("run") == run) & (pl.col("key") == key)).sort("step")
    return rows["value"].to_numpy()


def _steps(data: ingest.Ingested, run: str, key: str, table: str = "metrics") -> np.ndarray:
    rows = getattr(data, table).filter((pl.col("run") == run) & (pl.col("key") == key)).sort("step")
    return rows["step"].to_numpy()


def _last(data: ingest.Ingested, run: str, key: str) -> str:
    """The last logged value of a count (updates, parameters) with thousands separators; '-' when
    the run does not log the key (runs made before the trainer logged it)."""
    values = _values(data, run, key)
    return f"{int(values[-1]):,}" if values.size else "-"


SPEED_KEYS = {"fps/train": ",.0f", "timer/train/mean": ".3f", "timer/train/frac": ".2f"}


def _late_median(data: ingest.Ingested, run: str, key: str, fmt: str) -> str:
    """Median of a key over the second half of its log lines (past compiles and prefill)."""
    values = _values(data, run, key)
    return format(float(np.median(values[len(values) // 2 :])), fmt) if values.size else "-"


def _num(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}"


def _problems(data: ingest.Ingested) -> str:
    runs, problems = len(data.runs), data.problems.height
    return f"{runs} run{'s' * (runs != 1)}, {problems} ingest problem{'s' * (problems != 1)}"


# ---------------------------------------------------------------- the sets


def alien_demo(root: Path) -> Section:
    """The demo's Alien runs: updates, loss/dyn, episodes and the rule's ratio per run."""
    rows, episodes = [], {}
    for method in ("baseline", "adapt"):
        data = _read(root / f"atari100k_alien_{method}")
        for run in data.runs:
            dyn = _values(data, run.name, "train/loss/dyn")
            ratio = _values(data, run.name, "train/imag_adapt/ratio")
            active = _values(data, run.name, "train/imag_adapt/active")
            scores = _values(data, run.name, "episode/score", "scores")
            episodes[method, run.seed] = scores.tolist()
            rows.append(
                [
                    method,
                    run.seed,
                    f"{dyn[0]:.3f} -> {dyn[-1]:.3f}",
                    len(scores),
                    f"{scores.min():g}-{scores.max():g}",
                    f"{ratio.min():.3f}-{ratio.max():.3f}",
                    f"{active.max():g}",
                ]
            )
    same = all(episodes["baseline", s] == episodes["adapt", s] for s in (0, 1, 2))
    return Section(
        "Alien demo runs",
        [
            "`artifacts/atari100k_alien_{baseline,adapt}/`, what `make demo` reports on. Per run: "
            "`train/loss/dyn` first and last logged value, "
            "episodes, their score range (raw), the rule's ratio `train/imag_adapt/ratio` (range of "
            "the logged values) and the largest logged `train/imag_adapt/active`.",
            "",
            *table(["method", "seed", "loss/dyn first -> last", "episodes", "scores", "ratio", "max active"], rows),
            "",
            f"Alien's random score: {ALIEN_RANDOM}. Each seed's episodes are the same in both methods "
            f"(score for score): {'yes' if same else 'no'}.",
        ],
    )


def alien_long(root: Path) -> Section:
    """The long Alien run: scores per 10k frames, and whether the world model's losses fell."""
    data = _read(root / "atari100k_alien_long")
    (run,) = data.runs
    steps = _steps(data, run.name, "episode/score", "scores")
    scores = _values(data, run.name, "episode/score", "scores")
    rows = []
    for start in range(0, int(steps.max()), readout.BIN):
        inside = scores[(steps > start) & (steps <= start + readout.BIN)]
        if inside.size:
            rows.append(
                [readout.bin_label(start), inside.size, _num(inside.mean()), f"{inside.min():g}", f"{inside.max():g}"]
            )
    rec, dyn = _values(data, run.name, "train/loss/image"), _values(data, run.name, "train/loss/dyn")
    dyn_steps = _steps(data, run.name, "train/loss/dyn")
    floor = dyn_steps[np.flatnonzero(dyn <= 1.01)[0]] if (dyn <= 1.01).any() else None
    entropy = _values(data, run.name, "train/ent/action")
    last = int(_steps(data, run.name, "train/loss/dyn")[-1])
    return Section(
        "Alien long run",
        [
            f"`artifacts/atari100k_alien_long/`, one seed: {_problems(data)}; last logged step {last:,} env frames.",
            "",
            *table(["env frames", "episodes", "mean score", "min", "max"], rows),
            "",
            f"{scores.size} episodes, mean {_num(scores.mean())}; first 10 {_num(scores[:10].mean())}, last 10 "
            f"{_num(scores[-10:].mean())} (Alien's random score: {ALIEN_RANDOM}). Policy entropy "
            f"`train/ent/action` {entropy.min():.3f}-{entropy.max():.3f} (uniform over 18 actions: "
            f"{longrun.UNIFORM_ENTROPY:.3f}).",
            "",
            f"Image reconstruction loss `train/loss/image` (logged as `train/loss/rec`): first {_num(rec[0])}, "
            f"last {_num(rec[-1])}. `train/loss/dyn`: first {dyn[0]:.3f}, last {dyn[-1]:.3f}, first logged at "
            f"or under 1.01 (its free-nats floor is 1.0) at step " + (f"{floor:,}." if floor is not None else "never."),
        ],
    )


def road_runner(root: Path, folder: str, title: str) -> Section:
    """A Road Runner set beside the published curve: scores and diagnostics per 10k frames."""
    data = _read(root / folder)
    per_run = readout.score_bins(data.scores)
    last = max(int(_steps(data, r.name, "train/loss/dyn")[-1]) for r in data.runs)
    facts = []
    for run in data.runs:
        scores = _values(data, run.name, "episode/score", "scores")
        image, dyn = _values(data, run.name, "train/loss/image"), _values(data, run.name, "train/loss/dyn")
        facts.append(
            [
                run.seed,
                f"{int(_steps(data, run.name, 'train/loss/dyn')[-1]):,}",
                _last(data, run.name, "train/opt/updates"),
                _last(data, run.name, "train/opt/param_count"),
                scores.size,
                int((scores > 0).sum()),
                _num(image[0]) + " -> " + _num(image[-1]),
                f"{dyn[0]:.2f} -> {dyn[-1]:.2f}",
                f"{_values(data, run.name, 'train/rand/action')[-1]:.4f}",
                *(_late_median(data, run.name, key, fmt) for key, fmt in SPEED_KEYS.items()),
            ]
        )
    return Section(
        title,
        [
            f"`artifacts/{folder}/`: {_problems(data)}. Per run: last logged step (env frames), updates, "
            "parameters, episodes, episodes that scored, `train/loss/image` and `train/loss/dyn` first -> last, "
            "the last logged normalised policy entropy `train/rand/action` (1: uniform), and over the second "
            "half of each run's log lines the median of `fps/train` (replayed steps per second), "
            "`timer/train/mean` (seconds per update) and `timer/train/frac` (share of wall time training); "
            "'-' where the run does not log the key.",
            "",
            *table(
                [
                    "seed",
                    "last step",
                    "updates",
                    "parameters",
                    "episodes",
                    "scoring",
                    "image loss",
                    "loss/dyn",
                    "last rand/action",
                    *SPEED_KEYS,
                ],
                facts,
            ),
            "",
            f"Mean episode score (raw) per 10k env frames, episodes ending in the bin; random {readout.RANDOM}. "
            "Published: the official DreamerV3's 5 seeds (`published:dreamerv3`), mean [range] of each seed's mean "
            "in the bin.",
            "",
            *table(*readout.score_table(per_run, last)),
            "",
            'Diagnostics: the mean over runs of the values logged in each bin; "replayed rew/step" is the '
            "score per agent step of the episodes ending in the bin.",
            "",
            *table(*readout.diagnostic_table(per_run, data.metrics, last)),
        ],
    )


ROAD_RUNNER_SETS = (
    ("atari100k_road_runner_dreamerv3", "size1m"),
    ("atari100k_road_runner_lr3e-4", "size1m-lr3e-4"),
    ("gpu_road_runner_size12m", "size12m"),
)


def road_runner_vs_published(root: Path) -> Section:
    """Each shipped Road Runner set against the published DreamerV3 at equal env frames: the
    compare command's numbers (`dreamer-report compare published:dreamerv3 <set>`)."""
    lines = [
        "Each set against the official DreamerV3's published Road Runner runs (`published:dreamerv3`), "
        "the published runs cut at the last env frame the set reached, so both sides are scored at equal "
        "frames; human-normalised final scores, 95% stratified bootstrap CIs. What `dreamer-report compare "
        "published:dreamerv3 artifacts/<set>` prints.",
        "",
    ]
    rows, notes = [], []
    for folder, label in ROAD_RUNNER_SETS:
        try:
            result = compare.compare(
                [["published:dreamerv3"], [str(root / folder)]],
                names=["published", label],
                reps=REPS,
                seed=SEED,
                metrics=["iqm", "mean"],
                cache=False,
            )
        except compare.CompareError as error:
            notes.append(f"- `{folder}`: not compared: {error}")
            continue
        agg = {(r["scope"], r["method"], r["metric"]): r for r in result.aggregate.iter_rows(named=True)}
        poi = result.poi.filter(pl.col("scope") == compare.OVERALL).row(0, named=True)
        cut = next(n for n in result.notes if "cut at" in n).split(" cut at ")[1].split(" env frames")[0]
        for method in result.methods:
            cells = [_ci(agg[compare.OVERALL, method, m]) for m in ("iqm", "mean")]
            rows.append(
                [
                    f"`{folder}`",
                    "published DreamerV3" if method == "published" else "this trainer",
                    agg[compare.OVERALL, method, "iqm"]["runs"],
                    cut,
                    *cells,
                    _ci(poi) if method != "published" else "",
                ]
            )
    lines += table(
        ["set", "runs of", "runs", "env frames", "IQM [95% CI]", "mean [95% CI]", "P(set > published)"], rows
    )
    return Section(
        "Road Runner against the published DreamerV3",
        lines
        + ([""] + notes if notes else [])
        + ["", stats.final_score_definition(compare.DEFAULT_WINDOW, None) + f"; bootstrap seed {SEED}, {REPS:,} reps."],
    )


def _ci(row: dict) -> str:
    return f"{row['point']:.3f} [{row['low']:.3f}, {row['high']:.3f}]"


def cartpole(root: Path) -> Section:
    """The CartPole learning benchmark: when each seed's mean of 10 episodes reached 200."""
    folder = root / "cartpole_dreamerv3"
    rows = []
    for run in sorted(ingest.discover([str(folder)]), key=lambda r: r.seed):
        clock = _clock(run.path / "wall_clock.csv")
        scores = np.array([c[2] for c in clock])
        means = np.convolve(scores, np.ones(10) / 10, mode="valid")  # means[i]: episodes i..i+9
        hit = np.flatnonzero(means >= 200)
        reached = clock[hit[0] + 9] if hit.size else None
        rows.append(
            [
                run.seed,
                len(clock),
                f"step {reached[0]:,}" if reached else "never",
                f"{reached[1] / 60:.1f} min" if reached else "-",
                _num(means[-1]),
                _num(means.max()),
            ]
        )
    return Section(
        "CartPole learning benchmark",
        [
            "`artifacts/cartpole_dreamerv3/`, from each run's `wall_clock.csv` (env step, seconds since the "
            'three runs were launched, episode score). "Reached": the first episode at which the mean of the '
            "last 10 episodes is 200 or more. Random play scores about 22.",
            "",
            *table(
                ["seed", "episodes", "mean of 10 reached 200 at", "after", "final mean of 10", "best mean of 10"], rows
            ),
        ],
    )


def gpu_alien(root: Path) -> Section:
    """The two size200m runs on the GPU, stopped during replay prefill."""
    rows = []
    for method in ("baseline", "adapt"):
        (run,) = [p for p in (root / f"gpu_atari100k_alien_{method}").iterdir() if p.is_dir()]
        lines = _rows(run, "metrics.jsonl", "step")
        scores = [row["episode/score"] for row in _rows(run, "scores.jsonl", "episode/score")]
        trained = any(key.startswith("train/") for row in lines for key in row)
        rows.append(
            [
                method,
                f"{max(row['step'] for row in lines):,}",
                ", ".join(f"{s:g}" for s in scores),
                "yes" if trained else "no",
            ]
        )
    return Section(
        "GPU Alien runs (prefill only)",
        [
            "`artifacts/gpu_atari100k_alien_{baseline,adapt}/`: last logged step (env frames), episode scores, "
            "whether any update was logged (`train/*`).",
            "",
            *table(["method", "last step", "scores", "updates"], rows),
        ],
    )


def _clock(path: Path) -> list[tuple[int, float, float]]:
    """(step, seconds, score) of each row of a wall_clock.csv; IngestError names the file and line."""
    rows = []
    with open(path, newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                rows.append((int(float(row["step"])), float(row["seconds"]), float(row["score"])))
            except (KeyError, TypeError, ValueError, OverflowError):
                raise ingest.IngestError(
                    f"{path}, line {line}: expected numbers in the columns step, seconds and score"
                ) from None
    if not rows:
        raise ingest.IngestError(f"{path}: no rows; expected the columns step, seconds and score")
    return rows


def _rows(run: Path, name: str, key: str) -> list[dict]:
    """The JSON objects of a shipped run's log, each with a finite number under `key`."""
    rows = []
    for line, text in enumerate(_log_text(run, name).splitlines(), start=1):
        try:
            row = json.loads(text)
            if not np.isfinite(float(row[key])):
                raise ValueError(key)
        except (KeyError, TypeError, ValueError, OverflowError):
            raise ingest.IngestError(
                f"{ingest.log_file(run, name)}, line {line}: expected a JSON object with a number under '{key}'"
            ) from None
        rows.append(row)
    return rows


def _log_text(run: Path, name: str) -> str:
    """A shipped run's log as text, stored plain or gzipped."""
    path = ingest.log_file(run, name)
    if not gzlog.is_gzip(path):
        return path.read_text()
    data, note = gzlog.unzip(path)
    if data is None or note:
        raise ingest.IngestError(f"{path}: {note}")
    return data.decode()


PARAMETER_LINE = re.compile(r"Parameter count: total ([\d,]+)")


def _terminal_logs(root: Path) -> dict[str, list[Path]]:
    """The trainer's terminal outputs kept beside the runs, by set: `logs/<set>_seed<N>.log`, and
    a run's own `train.log`."""
    sets: dict[str, list[Path]] = {}
    for path in sorted((root / "logs").glob("*.log")):
        sets.setdefault(re.sub(r"_seed\d+$", "", path.stem), []).append(path)
    for path in sorted(root.glob("*/*/train.log")):
        sets.setdefault(path.parent.parent.name, []).append(path)
    return sets


def parameter_counts(root: Path) -> list[list[str]]:
    """Per set of terminal logs: how many logs, and the parameter counts they printed."""
    rows = []
    for name, paths in _terminal_logs(root).items():
        counts = {
            int(m.group(1).replace(",", ""))
            for path in paths
            for m in PARAMETER_LINE.finditer(path.read_text(errors="replace"))
        }
        rows.append([f"`{name}`", len(paths), ", ".join(f"{c:,}" for c in sorted(counts)) or "not printed"])
    return rows


def best_seeds(root: Path) -> list[str]:
    """The demo's Alien runs: each method's best seed by final score (as `best-seed` ranks them),
    and the seeds with an episode in the final window (the others' score is their last episode)."""
    lines = []
    for method in ("baseline", "adapt"):
        ranked = ranking.seed_table([str(root / f"atari100k_alien_{method}")], cache=False)
        scored = sorted(r["seed"] for r in ranked if r["final_score"] is not None and not r["fallback"])
        lines.append(
            f"- {method}: best seed {ranked[0]['seed']}; seeds with an episode in the final window: "
            + (", ".join(map(str, scored)) or "none")
            + "."
        )
    return lines


def run_facts(root: Path) -> Section:
    """Facts the labels in artifacts/ point to: parameter counts from the terminal logs, the
    demo's best seeds."""
    return Section(
        "Run facts",
        [
            "Parameter counts, from the `Parameter count: total` line each terminal log kept in "
            "`artifacts/logs/` (and a run's `train.log`) printed; a set is a log name without its seed:",
            "",
            *table(["logs", "files", "parameters"], parameter_counts(root)),
            "",
            f"The demo's Alien runs, ranked by final score (mean episode score over the last "
            f"{defaults.WINDOW:.0%} of each run's env frames, "
            "`dreamer-report best-seed`):",
            "",
            *best_seeds(root),
        ],
    )


# ---------------------------------------------------------------- the document


HEADER = [
    "# Results: every number about the shipped runs",
    "",
    "Generated by `make results` (`dreamer-report results`, `analysis/results.py`) from the run files "
    "in `artifacts/`; do not edit by hand. A test regenerates it and fails on any difference. How each "
    "set was made, and what it is not, is in its folder's README.",
]


def sections(root: Path) -> list[Section]:
    root = Path(root)
    return [
        alien_demo(root),
        alien_long(root),
        road_runner(root, "atari100k_road_runner_dreamerv3", "Road Runner at the official settings, size1m"),
        road_runner(root, "atari100k_road_runner_lr3e-4", "Road Runner at lr 3e-4, size1m"),
        road_runner(root, "gpu_road_runner_size12m", "Road Runner at the official settings, size12m, GPU"),
        road_runner_vs_published(root),
        cartpole(root),
        gpu_alien(root),
        run_facts(root),
    ]


def build(root: Path) -> str:
    """docs/results.md's text from the sets under `root`."""
    parts = sections(root)
    lines = [*HEADER, "", *(f"- [{s.title}](#{slug(s.title)})" for s in parts)]
    for s in parts:
        lines += ["", f"## {s.title}", "", *s.lines]
    return "\n".join(lines) + "\n"


def slug(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as '-'."""
    kept = "".join(ch for ch in title.lower() if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


def check_out(out: Path | str, root: Path | str) -> None:
    """UnsafeTarget (a ValueError) before any work when `out` lies in the run sets or names a bucket."""
    safefile.refuse_inside(out, [root], "--out")


def write(text: str, out: Path, inputs=()) -> Path:
    """`text` to `out` by replace; refused inside any of `inputs` (the run sets) or through a link."""
    return safefile.write(out, text, inputs, "--out")


def redraw_figures(root: Path) -> list[Path]:
    """The figures beside the runs (curve.png, losses.png): never inside a run dir."""
    root = Path(root)
    written = []
    for folder, label in (
        ("atari100k_road_runner_dreamerv3", "size1m"),
        ("atari100k_road_runner_lr3e-4", "size1m, lr 3e-4"),
        ("gpu_road_runner_size12m", "size12m, official settings (GPU)"),
    ):
        fig = readout.curve_figure(readout.score_bins(_read(root / folder).scores), label)
        written.append(_save(fig, root / folder / "curve.png"))
    data = _read(root / "atari100k_alien_long")
    curve = figures.plot_score_curves(data.scores, {data.runs[0].method: "C0"}, smooth=5)
    written.append(_save(curve, root / "atari100k_alien_long" / "curve.png"))
    written.append(_save(longrun.loss_figure(data.metrics), root / "atari100k_alien_long" / "losses.png"))
    return written


def _save(fig, path: Path) -> Path:
    with safefile.replacing(path, flag="a figure") as f:  # a link planted at the name is refused
        fig.savefig(f, dpi=110, format=path.suffix[1:])
    plt.close(fig)
    return path
