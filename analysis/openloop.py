"""Open-loop predictions of the world model: read, split, score.

Two sources give the same structure, an `OpenLoop` (truth and predicted frames per sequence):

- the run's scope video `report/openloop/image`, which the trainer composes as up to 6
  sequences side by side, rows truth / model / error, observed frames bordered green and
  imagined frames bordered red. `split_video` finds the cells from the border colours, so
  it needs no hard-coded frame size;
- the runs' checkpoints (`from_checkpoints`): both world models watch the same real frames
  for `context` steps and imagine `horizon` more under the recorded actions.

Shapes: B sequences, T frames, H x W pixels, 3 channels; frames are uint8.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path

import av
import matplotlib.pyplot as plt
import matplotlib.text
import numpy as np
from scope import formats

from analysis import confine, figures, remote, runconfig, stats, video
from dreamerv3 import safefile

VIDEO_KEY = "report/openloop/image"
ROWS = ("truth", "model", "error")
MAX_INDEX_BYTES = 1 << 24  # a scope index holds 16 bytes per logged video


class OpenLoopError(ValueError):
    """Bad or missing open-loop input; the message names the file and what was expected."""


@dataclass(frozen=True)
class OpenLoop:
    """Truth and prediction of one run's world model on B sequences of T frames."""

    truth: np.ndarray  # uint8 [B, T, H, W, 3]
    pred: np.ndarray  # uint8 [B, T, H, W, 3]
    context: int  # frames 0..context-1 were observed, the rest imagined
    source: str  # where it came from, for captions

    @property
    def horizon(self) -> int:
        return self.truth.shape[1] - self.context


# ---- reading scope videos -------------------------------------------------------------


def video_dir(run: Path, key: str = VIDEO_KEY) -> Path:
    """The scope folder of a video key: '/' in the key becomes '-' (scope's layout)."""
    return Path(run) / "scope" / (key.replace("/", "-") + ".mp4")


def video_steps(run: Path, key: str = VIDEO_KEY) -> list[tuple[int, Path]]:
    """(step, file) for every video of `key` the run wrote, oldest first."""

    folder = video_dir(run, key)
    remote.fetch_folder(run, f"scope/{folder.name}")
    index = folder / "index"
    if not index.exists():
        raise OpenLoopError(f"{folder}: no open-loop video (expected an 'index' file from scope)")
    if not confine.inside(index, run):
        raise OpenLoopError(f"{index}: a link to a file outside the run folder; not read")
    if not index.is_file() or index.stat().st_size % 16 or index.stat().st_size > MAX_INDEX_BYTES:
        raise OpenLoopError(f"{index}: not a scope video index (expected 16-byte rows of step and id)")
    try:
        steps, files = formats.files_read(folder)
    except Exception:  # scope's reader on damaged bytes: struct, value or OS errors
        raise OpenLoopError(f"{index}: not a scope video index (expected 16-byte rows of step and id)") from None
    pairs = sorted(zip((int(s) for s in steps), files), key=lambda p: p[0])
    return [(s, f) for s, f in pairs if confine.run_file(run, f)]  # a video linked out of the run is no video


def read_video(run: Path, step: int | None = None, key: str = VIDEO_KEY) -> tuple[int, np.ndarray]:
    """The video at `step` (default: the last one written) as uint8 [T, H, W, 3]."""

    pairs = video_steps(run, key)
    if not pairs:
        raise OpenLoopError(f"{video_dir(run, key)}: the index lists no video file that exists")
    if step is None:
        chosen = pairs[-1]
    else:
        matches = [p for p in pairs if p[0] == step]
        if not matches:
            have = ", ".join(str(s) for s, _ in pairs[-5:])
            raise OpenLoopError(f"{video_dir(run, key)}: no video at step {step} (last steps: {have})")
        chosen = matches[-1]
    try:
        frames = formats.Video().decode(chosen[1].read_bytes())
    except (av.error.FFmpegError, ValueError, TypeError, IndexError, OSError) as error:
        raise OpenLoopError(f"{chosen[1]}: not a readable mp4 ({error})") from None
    return chosen[0], frames


# ---- splitting the composed video -------------------------------------------------------


def border_masks(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels that are clearly green / clearly red, tolerant of H.264 colour drift."""
    f = frames.astype(np.int16)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    green = (g > 150) & (r < 110) & (b < 110)
    red = (r > 150) & (g < 110) & (b < 110)
    return green, red


def _blocks(is_border: np.ndarray, min_size: int = 8) -> list[tuple[int, int]]:
    """Maximal runs of non-border positions between border lines, as (start, stop)."""
    blocks, start = [], None
    for i, border in enumerate(list(is_border) + [True]):
        if not border and start is None:
            start = i
        elif border and start is not None:
            if i - start >= min_size:
                blocks.append((start, i))
            start = None
    return blocks


def _same_size(blocks: list[tuple[int, int]], what: str) -> list[tuple[int, int]]:
    """Crop blocks to one common size (the smallest), centred; refuse wildly unequal cells."""
    sizes = [b - a for a, b in blocks]
    size = min(sizes)
    if max(sizes) - size > 4:
        raise OpenLoopError(f"cells of unequal {what} {sizes}: not the truth/model/error layout")
    return [(a + (b - a - size) // 2, a + (b - a - size) // 2 + size) for a, b in blocks]


@dataclass(frozen=True)
class Layout:
    """Where the cells are: column blocks are sequences, row blocks are truth/model/error."""

    cols: list[tuple[int, int]]
    rows: list[tuple[int, int]]
    kinds: np.ndarray  # per frame: 'context', 'imagined' or 'blank'


def find_layout(frames: np.ndarray, threshold: float = 0.8) -> Layout:
    """Locate the cells from lines that are border-coloured across the whole frame."""
    green, red = border_masks(frames)
    border = green | red
    framed = border.mean(axis=(1, 2)) > 0.02
    if not framed.any():
        raise OpenLoopError("no green or red border in any frame: not an open-loop video")
    col_frac = border[framed].mean(axis=1).mean(axis=0)
    row_frac = border[framed].mean(axis=2).mean(axis=0)
    cols = _blocks(col_frac > threshold)
    row_blocks = _blocks(row_frac > threshold)
    if not cols or not row_blocks:
        raise OpenLoopError(f"found {len(cols)} columns and {len(row_blocks)} rows of cells")
    if len(row_blocks) == 1:  # one framed column per sequence: split it into the 3 rows
        a, b = row_blocks[0]
        h = (b - a) // len(ROWS)
        row_blocks = [(a + i * h, a + (i + 1) * h) for i in range(len(ROWS))]
    if len(row_blocks) != len(ROWS):
        raise OpenLoopError(f"found {len(row_blocks)} rows of cells, expected {len(ROWS)}")
    on_lines = np.zeros(frames.shape[1:3], bool)
    on_lines[:, col_frac > threshold] = True
    on_lines[row_frac > threshold, :] = True
    n_green = (green & on_lines).sum(axis=(1, 2))
    n_red = (red & on_lines).sum(axis=(1, 2))
    enough = on_lines.sum() * 0.5
    kinds = np.where(n_green > enough, "context", np.where(n_red > enough, "imagined", "blank"))
    return Layout(_same_size(cols, "width"), _same_size(row_blocks, "height"), kinds)


def split_video(frames: np.ndarray) -> tuple[dict[str, np.ndarray], int]:
    """Cut a composed open-loop video into {'truth','model','error': uint8 [B, T, h, w, 3]}.

    Blank frames (the trainer pads the video with black frames) are dropped; the context
    length is the number of green-bordered frames, which must all come first.
    """
    layout = find_layout(frames)
    keep = layout.kinds != "blank"
    kinds = layout.kinds[keep]
    context = int((kinds == "context").sum())
    if (kinds[:context] != "context").any():
        raise OpenLoopError("green (observed) frames do not all come before red (imagined) ones")
    kept = frames[keep]
    rows = {}
    for name, (y0, y1) in zip(ROWS, layout.rows):
        rows[name] = np.stack([kept[:, y0:y1, x0:x1] for x0, x1 in layout.cols])
    return rows, context


def from_scope(run: Path, step: int | None = None, key: str = VIDEO_KEY) -> OpenLoop:
    """The open-loop sequences a run logged to scope at `step` (default: the last)."""
    step, frames = read_video(run, step, key)
    try:
        rows, context = split_video(frames)
    except OpenLoopError as error:
        raise OpenLoopError(f"{video_dir(run, key)} (step {step}): {error}") from None
    return OpenLoop(rows["truth"], rows["model"], context, f"scope video, step {step}")


# ---- from checkpoints ------------------------------------------------------------------


def has_checkpoint(run: Path) -> bool:
    """True when the run kept a complete checkpoint (a folder under ckpt/ with its 'done' file).
    Folders reached through a link out of the run are not the run's (the trainer skips links too)."""
    folder = Path(run) / "ckpt"
    remote.fetch_folder(run, "ckpt")
    return (
        folder.is_dir()
        and confine.inside(folder, run)
        and any(
            (child / "done").exists() for child in folder.iterdir() if child.is_dir() and confine.inside(child, run)
        )
    )


def rollout(env, n_seq: int, length: int, seed: int) -> dict[str, np.ndarray]:
    """B fresh episodes of `length` steps under a seeded random action sequence."""
    rng = np.random.default_rng(seed)
    space = env.act_space["action"]
    seqs = []
    for _ in range(n_seq):
        steps = []
        action = _sample(space, rng)
        obs = env.step({"action": action, "reset": True})
        for _ in range(length):
            action = _sample(space, rng)
            steps.append({**{k: np.asarray(v) for k, v in obs.items()}, "action": action})
            obs = env.step({"action": action, "reset": bool(obs["is_last"])})
        seqs.append({k: np.stack([s[k] for s in steps]) for k in steps[0]})
    return {k: np.stack([s[k] for s in seqs]) for k in seqs[0]}


def _sample(space, rng: np.random.Generator) -> np.ndarray:
    if space.discrete:
        return rng.integers(space.low, space.high, space.shape).astype(space.dtype)
    return rng.uniform(space.low, space.high, space.shape).astype(space.dtype)


def from_checkpoints(
    runs: dict[str, Path], context: int = 5, horizon: int = 45, n_seq: int = 4, seed: int = 0
) -> tuple[np.ndarray, dict[str, OpenLoop]]:
    """Load each run's world model and predict the same real sequences (the '5plus45' view).

    The sequences come from a fresh rollout of the first run's task with a fixed seed and
    a fixed random action sequence, so every model sees exactly the same frames and actions.
    """
    from dreamerv3 import envs, restore  # deferred: the trainer imports jax, needed for checkpoints only

    loaded = {name: _load_agent(restore, Path(path)) for name, path in runs.items()}
    tasks = {name: cfg.task for name, (_, cfg) in loaded.items()}
    if len(set(tasks.values())) > 1:
        raise OpenLoopError(f"the runs are of different tasks: {tasks}")
    first_cfg = next(iter(loaded.values()))[1]
    env = envs.make_env(first_cfg.task, first_cfg, index=0)
    try:
        data = rollout(env, n_seq, context + horizon, seed)
    finally:
        getattr(env, "close", lambda: None)()
    result, truth = {}, None
    for name, (agent, _) in loaded.items():
        out = agent.openloop(data, context)
        truth = np.asarray(out["truth"])
        result[name] = OpenLoop(truth, np.asarray(out["pred"]), context, f"checkpoint of {runs[name]}")
    return truth, result


def _load_agent(restore, path: Path):
    """(agent, config) of a run's newest checkpoint; anything wrong with it is one OpenLoopError.

    The config is checked first (size, no YAML aliases) and the weights load through the
    trainer's plain-data unpickler, so a run folder from someone else cannot run code here.
    """

    if not has_checkpoint(path):
        raise OpenLoopError(f"{path / 'ckpt'}: no finished checkpoint")
    try:
        runconfig.load(path / "config.yaml")
        agent, config = restore.load_agent(path)
    except (runconfig.ConfigError, restore.UsageError, ValueError, KeyError, TypeError, OSError) as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OpenLoopError(f"{path}: cannot load its checkpoint ({detail})") from None
    if not agent.model.imgkeys:
        raise OpenLoopError(f"{path}: its task ({config.task}) has no image observation to predict")
    return agent, config


# ---- error against the imagined step ---------------------------------------------------


def error_image(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """The trainer's error picture: (pred - true + 255) / 2, grey where they agree."""
    return ((pred.astype(np.int16) - truth.astype(np.int16) + 255) // 2).astype(np.uint8)


def abs_error_image(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """|pred - true| per pixel, black where they agree."""
    return np.abs(pred.astype(np.int16) - truth.astype(np.int16)).astype(np.uint8)


def step_errors(ol: OpenLoop) -> dict[str, np.ndarray]:
    """MSE (pixels in [0, 1]) and PSNR (dB) of every imagined frame: {'mse','psnr': [B, horizon]}."""
    truth = ol.truth[:, ol.context :].astype(np.float64) / 255.0
    pred = ol.pred[:, ol.context :].astype(np.float64) / 255.0
    mse = ((pred - truth) ** 2).mean(axis=(2, 3, 4))
    psnr = 10.0 * np.log10(1.0 / np.maximum(mse, 1e-10))
    return {"mse": mse, "psnr": psnr}


# ---- choosing a source and exporting ---------------------------------------------------


def trainer_available() -> bool:
    """True when the trainer exposes `dreamerv3.restore.load_agent` (needed for checkpoints)."""
    try:
        from dreamerv3 import restore
    except ImportError:
        return False
    return hasattr(restore, "load_agent")


def load_pair(
    baseline: Path,
    adapt: Path,
    source: str = "auto",
    step: int | None = None,
    context: int = 5,
    horizon: int = 45,
    n_seq: int = 4,
    seed: int = 0,
) -> tuple[OpenLoop, OpenLoop, bool]:
    """Open-loop data of two runs and whether they share the same truth frames.

    source 'ckpt' loads both world models on the same fresh sequences; 'scope' reads each
    run's logged video (each on its own replay, so the truths differ); 'auto' prefers
    checkpoints when both runs have one and the trainer can load them, and falls back to the
    scope videos when a checkpoint does not load (the reason is kept in each `source`).
    """
    if source not in ("auto", "ckpt", "scope"):
        raise OpenLoopError(f"source must be auto, ckpt or scope, got {source!r}")
    if Path(baseline).resolve() == Path(adapt).resolve():
        raise OpenLoopError(f"both sides are the same run ({baseline}): a comparison needs two different runs")
    use_ckpt = source == "ckpt" or (
        source == "auto" and has_checkpoint(baseline) and has_checkpoint(adapt) and trainer_available()
    )
    if use_ckpt:
        try:
            _, pair = from_checkpoints({"baseline": baseline, "adapt": adapt}, context, horizon, n_seq, seed)
            return pair["baseline"], pair["adapt"], True
        except OpenLoopError as error:
            if source == "ckpt":
                raise
            why = error
        return _scope_instead(baseline, step, why), _scope_instead(adapt, step, why), False
    return from_scope(baseline, step), from_scope(adapt, step), False


def _scope_instead(run: Path, step: int | None, why: Exception) -> OpenLoop:
    """The run's scope video, its source saying why the checkpoint was not used."""

    ol = from_scope(run, step)
    return dataclasses.replace(ol, source=f"{ol.source} (checkpoint not used: {str(why).splitlines()[0]})")


def load_single(
    run: Path,
    source: str = "auto",
    step: int | None = None,
    context: int = 5,
    horizon: int = 45,
    n_seq: int = 4,
    seed: int = 0,
) -> OpenLoop:
    """One run's open-loop data: from its checkpoint when possible (or asked), else its scope video
    ('auto' also when the checkpoint does not load; the reason is kept in `source`)."""
    if source not in ("auto", "ckpt", "scope"):
        raise OpenLoopError(f"source must be auto, ckpt or scope, got {source!r}")
    if source == "ckpt" or (source == "auto" and has_checkpoint(run) and trainer_available()):
        try:
            return from_checkpoints({"run": run}, context, horizon, n_seq, seed)[1]["run"]
        except OpenLoopError as error:
            if source == "ckpt":
                raise
            return _scope_instead(run, step, error)
    return from_scope(run, step)


def comparison_rows(
    baseline: OpenLoop, adapt: OpenLoop, same_truth: bool, names: tuple[str, str] = ("baseline", "adapt")
) -> list[tuple[str, np.ndarray]]:
    """Rows for panels and video: [(label, frames [B, T, h, w, 3])], cropped to a common B and T."""
    B = min(baseline.truth.shape[0], adapt.truth.shape[0])
    T = min(baseline.truth.shape[1], adapt.truth.shape[1])
    b_truth, b_pred = baseline.truth[:B, :T], baseline.pred[:B, :T]
    a_truth, a_pred = adapt.truth[:B, :T], adapt.pred[:B, :T]
    if same_truth:
        return [
            ("truth", b_truth),
            (names[0], b_pred),
            (names[1], a_pred),
            (f"|err| {names[0]}", abs_error_image(b_truth, b_pred)),
            (f"|err| {names[1]}", abs_error_image(a_truth, a_pred)),
        ]
    return [
        (f"{names[0]} truth", b_truth),
        (f"{names[0]} model", b_pred),
        (f"{names[0]} error", error_image(b_truth, b_pred)),
        (f"{names[1]} truth", a_truth),
        (f"{names[1]} model", a_pred),
        (f"{names[1]} error", error_image(a_truth, a_pred)),
    ]


def error_table(errors: dict[str, dict[str, np.ndarray]], reps: int = 2000) -> list[dict]:
    """One row per method and imagined step: mean and 95% CI of MSE and PSNR over sequences."""
    table = []
    for method, err in errors.items():
        cis = {key: stats.mean_ci(err[key], reps) for key in ("mse", "psnr")}
        for k in range(err["mse"].shape[1]):
            row = {"method": method, "imagined_step": k + 1, "sequences": err["mse"].shape[0]}
            for key, (mean, lo, hi) in cis.items():
                row.update({key: float(mean[k]), f"{key}_lo": float(lo[k]), f"{key}_hi": float(hi[k])})
            table.append(row)
    return table


def error_figure(table: list[dict], note: str = ""):
    """MSE and PSNR against the imagined step, mean and 95% bootstrap CI over sequences."""

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for method in dict.fromkeys(row["method"] for row in table):
        rows = [r for r in table if r["method"] == method]
        k = [r["imagined_step"] for r in rows]
        for ax, key in zip(axes, ("mse", "psnr")):
            (line,) = ax.plot(k, [r[key] for r in rows], label=method)
            ax.fill_between(
                k, [r[f"{key}_lo"] for r in rows], [r[f"{key}_hi"] for r in rows], color=line.get_color(), alpha=0.25
            )
    axes[0].set_ylabel("MSE (pixels in [0, 1])")
    axes[1].set_ylabel("PSNR (dB)")
    for ax in axes:
        ax.set_xlabel("imagined step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    n = table[0]["sequences"] if table else 0
    fig.suptitle(f"Open-loop prediction error, mean and 95% CI over {n} sequences. {note}", fontsize=9)
    for text in fig.findobj(matplotlib.text.Text):  # method names are drawn as written, never as mathtext
        text.set_parse_math(False)
    fig.tight_layout()
    return fig


def export(
    baseline: OpenLoop,
    adapt: OpenLoop,
    same_truth: bool,
    out: Path,
    names: tuple[str, str] = ("baseline", "adapt"),
    offsets: list[int] | None = None,
    fps: int = 10,
    reps: int = 2000,
    within: Path | None = None,
) -> dict[str, list]:
    """Write panels (PNG+PDF per sequence), the side-by-side mp4, the error plot and its CSV;
    `within`: the command's output folder (no folder from there down to `out` may be a link).

    Returns the paths by kind ('panels', 'video', 'errors') and, under 'rendered', each figure's
    (stem, figures.Rendered) so a report embeds them without reading the files back.
    """

    if baseline.context != adapt.context:
        raise OpenLoopError(f"context lengths differ: {names[0]} {baseline.context}, {names[1]} {adapt.context}")
    out = Path(out)
    if within is not None:
        safefile.refuse_linked(out, "--out", within)
    out.mkdir(parents=True, exist_ok=True)
    rows = comparison_rows(baseline, adapt, same_truth, names)
    context = baseline.context
    note = (
        "Same real frames for both models."
        if same_truth
        else "Scope videos: each run predicts its own replay, so the truth rows differ."
    )
    rendered = {}
    for b in range(rows[0][1].shape[0]):
        fig = video.panel_figure(
            [(label, frames[b]) for label, frames in rows],
            context,
            offsets,
            title=f"Sequence {b + 1}: {context} observed, {rows[0][1].shape[1] - context} imagined. {note}",
        )
        rendered[f"panel_seq{b + 1}"] = figures.render(fig)
    T = rows[0][1].shape[1]
    crop = {
        name: OpenLoop(ol.truth[:, :T], ol.pred[:, :T], context, ol.source)
        for name, ol in zip(names, (baseline, adapt))
    }
    table = error_table({name: step_errors(ol) for name, ol in crop.items()}, reps)
    rendered["error_vs_horizon"] = figures.render(error_figure(table, note))
    written = figures.write_rendered(rendered, out, within)
    paths: dict[str, list] = {
        "panels": [p for name, p in written.items() if name.startswith("panel_")],
        "video": [video.write_mp4(video.grid_video(rows, context), out / "openloop.mp4", fps)],
        "errors": [written["error_vs_horizon.png"], written["error_vs_horizon.pdf"], out / "error_vs_horizon.csv"],
        "rendered": list(rendered.items()),
    }
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(table[0]))
    writer.writeheader()
    writer.writerows(table)
    safefile.write(out / "error_vs_horizon.csv", text.getvalue(), within=within)
    return paths


def single_video(ol: OpenLoop, path: Path, fps: int = 10) -> Path:
    """One run's open-loop video: rows truth / model / error, sequences side by side."""

    rows = [("truth", ol.truth), ("model", ol.pred), ("error", error_image(ol.truth, ol.pred))]
    return video.write_mp4(video.grid_video(rows, ol.context), path, fps)
