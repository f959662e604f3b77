"""Crash-safe checkpoints in elements' on-disk format.

elements.Checkpoint writes each save into a new folder `<timestamp>-<step>/`
with a `done` file last, but rewrites the `latest` pointer in place, so a kill
at that moment leaves it empty. Here the pointer is written to a temp file and
renamed (atomic on POSIX), and loading never trusts it alone: it picks the
newest folder that has `done`. Folders without `done` (a save cut short) are
ignored and removed by the next successful save.

Checkpoints are read with `load_pickle`, which admits only numpy arrays, dtypes and plain
containers: a run folder from someone else cannot run code when it is loaded (resume,
--run.from_checkpoint, the analysis toolkit's open-loop rollouts).
"""

import io
import math
import pathlib
import pickle
import sys

import elements
import elements.checkpoint as ecp

from dreamerv3 import safefile
from dreamerv3.errors import CheckpointError, ResumeError


class Checkpoint:
    def __init__(self, directory, keep=1):
        self.directory = pathlib.Path(directory)
        safefile.refuse_links([self.directory, self.directory / "latest"])
        self.keep = keep
        self.saveables = {}
        self.saved_step = None  # step of the last save or load in this process

    def register(self, name, obj):
        if not (callable(getattr(obj, "save", None)) and callable(getattr(obj, "load", None))):
            raise ValueError(f"checkpointed object '{name}' needs save() and load()")
        self.saveables[name] = obj

    def save(self, step):
        folder = f"{elements.timestamp(millis=True)}-{int(step):012d}"
        path = self.directory / folder
        with safefile.named(path):  # a full disk: the error names this folder, which has no `done`
            ecp.save(elements.Path(path), {k: v.save for k, v in self.saveables.items()})
        safefile.write_replace(self.directory / "latest", folder.encode())
        self._cleanup(keep_name=folder)
        self.saved_step = int(step)
        return path

    def latest(self):
        return newest(self.directory)

    def load(self, path=None, keys=None):
        """Load `path`, or the newest complete checkpoint that loads: a damaged one (a truncated
        file, weights of another model size) is skipped with one warning line for the one before
        it. ResumeError (one line) when none loads."""
        keys = keys or list(self.saveables)
        candidates = [pathlib.Path(path)] if path else complete_folders(self.directory)[::-1]
        if not candidates:
            raise FileNotFoundError(f"no complete checkpoint in {self.directory}")
        for i, folder in enumerate(candidates):
            why = self.try_load(folder, keys)
            if why is None:
                return folder
            if i + 1 == len(candidates):
                earlier = "no earlier complete checkpoint to resume from" if not path else "not loaded"
                raise ResumeError(f"checkpoint {folder}: {why} ({earlier})")
            print(
                f"Warning: checkpoint {folder}: {why}; resuming from the one before it, {candidates[i + 1].name}",
                file=sys.stderr,
            )

    def try_load(self, folder, keys=None):
        """Load one checkpoint folder; None when it loaded, else why not (one line). Every file is
        read before anything loads, but a load that fails part way (weights of another size) may
        leave some objects loaded: the caller loads another folder or stops."""
        keys = keys or list(self.saveables)
        try:
            data = {key: read_item(folder, key) for key in keys}
            for key in keys:
                self.saveables[key].load(data[key])
        except (CheckpointError, KeyError, ValueError, TypeError, OSError) as e:
            return _one_line(e)
        self.saved_step = step_of(folder)
        return None

    def _cleanup(self, keep_name):
        complete = [p for p in _folders(self.directory) if (p / "done").exists()]
        keep = {p.name for p in complete[-self.keep :]} | {keep_name}
        for folder in _folders(self.directory):
            if folder.name not in keep:
                _remove_tree(folder)


def newest(directory):
    """The newest complete checkpoint folder under `directory`, or None."""
    complete = complete_folders(directory)
    return complete[-1] if complete else None


def _one_line(error):
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def resolve(path):
    """A run dir, a ckpt dir or a checkpoint folder -> a complete folder."""
    path = pathlib.Path(path)
    if (path / "done").exists():
        return path
    for candidate in (path / "ckpt", path):
        found = newest(candidate)
        if found:
            return found
    raise ResumeError(f"no complete checkpoint (a folder with a done file) at {path} or {path}/ckpt")


def load_item(obj, folder, name):
    """obj.load(read_item(folder, name)); a damaged file or weights of another model size are
    one ResumeError line (exit 2), not a traceback."""
    try:
        obj.load(read_item(folder, name))
    except (CheckpointError, KeyError, ValueError, TypeError, OSError) as e:
        raise ResumeError(f"checkpoint {folder}: {_one_line(e)}") from None


def read_item(folder, name):
    """Load one saveable's data from a checkpoint folder without an object
    (a list of shards for sharded items), through `load_pickle`."""
    folder = pathlib.Path(folder)
    single = folder / f"{name}.pkl"
    if single.exists() or single.is_symlink():
        return load_pickle(_inside(single, folder))
    shards = sorted(folder.glob(f"{name}-*.pkl"))
    if not shards:
        raise KeyError(f"checkpoint {folder} has no '{name}'")
    return [load_pickle(_inside(s, folder)) for s in shards]


def _inside(path, folder):
    """`path`, refused when a link takes it out of its checkpoint folder (never read from elsewhere)."""
    real, base = pathlib.Path(path).resolve(), pathlib.Path(folder).resolve()
    if base not in real.parents:
        raise CheckpointError(f"{path}: a link to a file outside the checkpoint folder; not read")
    return path


def load_pickle(path):
    """Unpickle a checkpoint file admitting only numpy arrays, dtypes, numpy
    scalars and plain containers (what Agent/Replay/Bookkeeping.save return).
    Anything else, and any damage, is a CheckpointError naming the file:
    pickle would otherwise call whatever the file names (code execution)."""
    path = pathlib.Path(path)
    if not path.is_file():  # a FIFO or device would block or never end
        raise CheckpointError(f"{path}: not a regular file")
    data = path.read_bytes()
    try:
        return _PlainData(io.BytesIO(data)).load()
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except Exception as e:  # damaged bytes raise many types (EOFError, KeyError, ...)
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a checkpoint this trainer wrote ({detail})") from None


def _reconstruct(subtype, shape, dtype):
    """numpy's ndarray unpickling hook, for ndarray only and no larger than
    the file could describe (a tiny file cannot ask for a huge allocation)."""
    import numpy as np

    if subtype is not np.ndarray:
        raise CheckpointError(f"refused to build {subtype!r}; only numpy arrays are allowed")
    if not isinstance(shape, tuple) or math.prod(shape) > 1:
        raise CheckpointError("unexpected array header")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


class _PlainData(pickle.Unpickler):
    def find_class(self, module, name):
        import numpy as np

        if module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            if name == "_reconstruct":
                return _reconstruct
            if name == "scalar":
                return _scalar
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        raise CheckpointError(
            f"refused to load: it references {module}.{name} (a checkpoint may "
            "hold only numpy arrays and plain containers; loading it could run code)"
        )


def _scalar(dtype, data=None):
    """numpy scalars (np.float32(1.0) pickles through this)."""
    import numpy as np

    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise CheckpointError("refused an object-typed numpy scalar")
    return np.frombuffer(data, dtype, count=1)[0]


def _folders(directory):
    """The checkpoint folders: real folders only, never a link (it may lead out of the logdir,
    where cleanup would delete). Names start with a sortable timestamp: name order is time order."""
    return sorted(p for p in directory.iterdir() if p.is_dir() and not p.is_symlink())


def _remove_tree(folder):
    """Delete a checkpoint folder's files; a link inside is removed as a link, its target untouched."""
    # `done` first: a removal cut short must not leave a folder that looks complete.
    (folder / "done").unlink(missing_ok=True)
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            _remove_tree(child)
        else:
            child.unlink()
    folder.rmdir()


def complete_folders(directory):
    """The complete checkpoint folders under `directory`, oldest first ([] if none)."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return []
    return [p for p in _folders(directory) if (p / "done").exists()]


def step_of(folder):
    """The step a checkpoint folder holds, from its name `<timestamp>-<step>`."""
    return int(pathlib.Path(folder).name.rsplit("-", 1)[-1])


def remove_folder(folder):
    """Delete one checkpoint folder (a population's save that its other members lack)."""
    _remove_tree(pathlib.Path(folder))
