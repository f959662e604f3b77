"""The run's logger (docs/design.md, "The run directory") and the log trimming that makes resume exact.

Outputs, chosen by `logger.outputs` as in the official DreamerV3 (default
[jsonl, scope]); the terminal always prints the keys matching `logger.filter`.
  jsonl:       `metrics.jsonl` (every scalar) and `scores.jsonl` (only
               `episode/score` and `episode/length`)
  scope:       `scope/` (scalars as `.float`, the open-loop video as
               `report-openloop-image.mp4/`; see scope_output)
  tensorboard: event files in the run dir (needs tensorflow installed)
  wandb:       a Weights & Biases run named after the run dir (needs wandb)
  mlflow:      an MLflow run (needs mlflow; MLFLOW_TRACKING_URI says where)
The logger's step is env frames: agent steps times the action repeat.

On resume the run restarts from its checkpoint's step, so anything logged
after that step by the killed process would be logged again. `trim` drops
those rows (and a torn last line) from the JSONL files and scope scalars.
"""

import importlib.util
import json
import pathlib
import re

import elements
import numpy as np

from dreamerv3 import safefile, scopefile

SCORES = r"^episode/(score|length)$"
SCOPE_KEY = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+)*$")

# Output name -> the module it needs (None: always available).
OUTPUTS = {"jsonl": None, "scope": None, "tensorboard": "tensorflow", "wandb": "wandb", "mlflow": "mlflow"}


def check_outputs(names):
    """None, or one line naming the first `logger.outputs` entry that cannot
    work here (unknown, or its package is not installed)."""
    for name in names:
        if name not in OUTPUTS:
            return f"logger.outputs: unknown output '{name}' (known: {', '.join(OUTPUTS)})"
        module = OUTPUTS[name]
        if module and importlib.util.find_spec(module) is None:
            return (
                f"logger.outputs has '{name}' but the package '{module}' is not "
                f"installed (pip install {module}, or drop '{name}')"
            )
    return None


def make_logger(logdir, step, multiplier=1, terminal=True, cfg=None):
    """The run's logger; cfg is the `logger` config block (defaults if None)."""
    outputs_ = list(cfg.outputs) if cfg else ["jsonl", "scope"]
    error = check_outputs(outputs_)
    if error:
        raise ValueError(error)
    refuse_links(logdir)
    outputs = []
    if terminal:
        outputs.append(elements.logger.TerminalOutput(cfg.filter if cfg else r".*"))
    for name in outputs_:
        outputs += _make_output(name, pathlib.Path(logdir), cfg, terminal)
    return elements.Logger(step, outputs, multiplier)


def _make_output(name, logdir, cfg, terminal=True):
    if name == "jsonl":
        # A run with a terminal prints elements' "Writing metrics" line at each write, as the
        # official; a population's other members write the same lines without it.
        kind = JSONL if terminal else QuietJSONL
        return [kind(logdir, "metrics.jsonl"), kind(logdir, "scores.jsonl", SCORES)]
    if name == "scope":
        return [scope_output(logdir, say=terminal)]
    if name == "tensorboard":
        return [elements.logger.TensorBoardOutput(str(logdir), cfg.fps if cfg else 15)]
    if name == "wandb":
        # The official names the W&B run by the last four parts of the logdir.
        return [elements.logger.WandBOutput("/".join(logdir.parts[-4:]))]
    if name == "mlflow":
        output = elements.logger.MLFlowOutput(run_name=logdir.name)
        output._pattern = re.compile(r".*")  # elements' MLFlowOutput never sets it
        return [output]
    raise ValueError(f"logger.outputs: unknown output '{name}'")


class QuietJSONL(elements.logger.AsyncOutput):
    """The `jsonl` output's lines (one per step: its scalar summaries whose names match
    `pattern`), written without a line on the terminal."""

    say = False

    def __init__(self, logdir, filename, pattern=r".*"):
        super().__init__(self._write, True)
        self._pattern = re.compile(pattern)
        self._path = pathlib.Path(logdir) / filename

    def _write(self, summaries):
        rows = {}
        for step, name, value in summaries:
            if self._pattern.search(name) and isinstance(value, np.ndarray) and value.ndim == 0:
                rows.setdefault(step, {})[name] = float(value)
        self.say and print(f"Writing metrics: {self._path}")
        with safefile.named(self._path), self._path.open("a") as f:  # a full disk names the file
            f.write("".join(json.dumps({"step": step, **values}) + "\n" for step, values in rows.items()))


class JSONL(QuietJSONL):
    """The same lines as elements' JSONLOutput, each write announced as it does."""

    say = True


def scope_output(logdir, say=True):
    """scope's own writer where the package is installed, else the same files
    written by `scopefile.ScopeFiles` (the GPU image lacks `scope` and `av`); `say`: print
    which (a population's first member says it for all)."""
    if scopefile.scope_installed():
        return elements.logger.ScopeOutput(logdir)
    if say:
        print(
            f"scope is not installed: scope/ is written by dreamerv3/scopefile.py "
            f"(videos with {scopefile.video_encoder() or 'no encoder: none written'})"
        )
    return scopefile.ScopeFiles(logdir)


def scope_safe(metrics):
    """Drop what scope rejects: it asserts on other keys and values in its background thread,
    and the error surfaces only at a later write or is lost at close."""
    safe = {}
    for key, value in metrics.items():
        value = np.asarray(value)
        if not SCOPE_KEY.match(key):
            continue
        if scopefile.is_scalar(value):
            safe[key] = value
        elif scopefile.is_video(value):
            # libx264 needs even sizes: crop one row/column if needed.
            T, H, W, C = value.shape
            safe[key] = value[:, : H - H % 2, : W - W % 2]
    return safe


def close(logger):
    """Flush every output and wait for scope's writer threads (its close does not wait for them)."""
    logger.close()
    for output in logger.outputs:
        writer = getattr(output, "writer", None)
        if writer is not None and getattr(writer, "futures", None) is not None:
            list(writer.futures)


def trim(logdir, max_step):
    """Remove rows with step > max_step from the run's JSONL and scope scalars."""
    logdir = pathlib.Path(logdir)
    refuse_links(logdir)
    for name in ("metrics.jsonl", "scores.jsonl"):
        path = logdir / name
        if path.exists():
            _trim_jsonl(path, max_step)
    scope = logdir / "scope"
    if scope.is_dir():
        for path in scope.glob("*.float"):
            _trim_float(path, max_step)


def count_lines(path):
    path = pathlib.Path(path)
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def _trim_jsonl(path, max_step):
    kept = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
            step = row.get("step", 0) if isinstance(row, dict) else None
            if isinstance(step, bool) or not isinstance(step, (int, float)):
                continue  # not a row the trainer writes (a damaged line): dropped as a torn one is
        except json.JSONDecodeError:
            continue  # a torn line from the killed process
        if step <= max_step:
            kept.append(line + "\n")
    safefile.write_replace(path, "".join(kept).encode())


def _trim_float(path, max_step):
    data = path.read_bytes()
    rows = np.frombuffer(data[: len(data) - len(data) % 16], np.dtype([("step", ">i8"), ("value", ">f8")]))
    safefile.write_replace(path, rows[rows["step"] <= max_step].tobytes())


def refuse_links(logdir):
    """LinkInLogdir (one line, exit 2) when config.yaml, a log file or a scope entry is a
    symbolic link or a special file: writes, appends and trims would go through it, outside the
    logdir, or block on it."""
    logdir = pathlib.Path(logdir)
    scope = logdir / "scope"
    entries = sorted(scope.iterdir()) if scope.is_dir() and not scope.is_symlink() else []
    inner = [p / "index" for p in entries if p.is_dir() and not p.is_symlink()]
    files = [logdir / "config.yaml", logdir / "metrics.jsonl", logdir / "scores.jsonl", scope]
    safefile.refuse_links(files + entries + inner)
