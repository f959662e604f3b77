"""Runs in object storage: `s3://`, `gs://` and `az://` paths read through fsspec (docs/storage.md).

A remote path is listed once (one recursive listing per path or glob match); its run dirs are
found from the key names by the rules a local walk uses (a folder holding scores.jsonl or
metrics.jsonl, or their .gz, or a TensorBoard event file; nothing below a run, in ckpt/, replay/, scope/ or a hidden folder, is another
run). Each run is mirrored into a private staging folder that exists for this process only,
`<stage>/<scheme>/<bucket>/<key>`, so every later stage (ingest, cache, report, open loop) reads
local files and labels runs exactly as it labels a local copy. Files are fetched when a stage
asks for them, many at once (`fetch_logs`, `fetch_folder`), never more than once; ingest has the
next batch's logs downloaded in a background thread while it parses one (`prefetch_logs`);
`watch` reads appended bytes by range instead (`origin`). READMEs are asked for only where the
listing shows one, or above the listed path. Only keys at or below a listed run, and READMEs of
its parent folders, are read; a key whose name would leave its folder ("..", empty parts) is
never copied. Remote inputs are never written.

Credentials and endpoints come from each cloud's standard environment variables (AWS_*,
including AWS_ENDPOINT_URL; GOOGLE_APPLICATION_CREDENTIALS or STORAGE_EMULATOR_HOST;
AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_NAME/_KEY). Any failure of a call (bad
credentials, a missing bucket, no network) is one RemoteError (an OSError) naming the URL, and
every call has a deadline, so a command never hangs on a dead endpoint.
"""

from __future__ import annotations

import atexit
import fnmatch
import os
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import fsspec
from fsspec.exceptions import FSTimeoutError

from analysis import defaults
from dreamerv3 import remotepath

# The scheme table, client options, gcsfs's default and the key rule are shared with the trainer.
PROTOCOLS = remotepath.PROTOCOLS  # URL scheme -> fsspec's
RUN_FILES = defaults.RUN_FILES  # the logs, plain or gzipped
SKIP_DIRS = {"ckpt", "replay", "scope"}
README_NAMES = ("README.md", "README_PRUEBA.md", "README.txt")
LIGHT_FILES = ("config.yaml",) + README_NAMES  # fetched when a run is found (labels, report)
STAGE_MARK = ".dreamer-report-stage"  # the staging root: a README search stops here
DEADLINE = float(os.environ.get("DREAMER_REPORT_REMOTE_TIMEOUT", "60"))  # seconds for one call
BATCH_BYTES = 64 << 20  # fetched per concurrent batch, so memory stays bounded


class RemoteError(OSError):
    """A remote call failed; the message is one line naming the URL."""


@dataclass(eq=False)  # a dict key by identity
class Staged:
    """One remote run dir and its local mirror."""

    url: str  # scheme://bucket/prefix/run, as the user would write it
    fs: fsspec.AbstractFileSystem
    keys: dict[str, int]  # key relative to the run -> size, from the listing
    fetched: set[str] = field(default_factory=set)

    def key(self, rel: str) -> str:
        return _bare(self.url) + "/" + rel


_RUNS: dict[Path, Staged] = {}  # local mirror of a run -> where it comes from
_STAGE: list[Path] = []  # the staging root, made on first use
_FS: dict[str, fsspec.AbstractFileSystem] = {}
_AHEAD: dict[Staged, Future] = {}  # runs whose logs are being downloaded in the background
_POOL: list[ThreadPoolExecutor] = []  # the one background thread, made on first use


is_remote = remotepath.is_remote
_scheme = remotepath.scheme
_bare = remotepath.bare
_first_line = remotepath.first_line
_safe = remotepath.safe_key  # listings and globs alike


def _url(scheme: str, bare: str) -> str:
    return f"{scheme}://{bare}"


def filesystem(scheme: str) -> fsspec.AbstractFileSystem:
    """The fsspec filesystem of a URL scheme, with few retries and short connect timeouts."""
    protocol = PROTOCOLS[scheme]
    if protocol not in _FS:
        fs = remotepath.filesystem(scheme, RemoteError)
        if hasattr(fs, "retries"):
            fs.retries = 2  # s3fs's own retry loop (botocore's is set above)
        _FS[protocol] = fs
    return _FS[protocol]


def call(url: str, method: str, *args, **kwargs):
    """`fs.<method>(*args)` with the deadline; any failure becomes one RemoteError naming `url`."""
    fs = filesystem(_scheme(url))
    try:
        return (
            getattr(fs, method)(*args, timeout=DEADLINE, **kwargs)
            if getattr(fs, "async_impl", False)
            else getattr(fs, method)(*args, **kwargs)
        )
    except FileNotFoundError as error:
        raise RemoteError(f"{url}: not found ({_first_line(error)})") from None
    except Exception as error:  # botocore, aiohttp, azure and fsspec errors have no common base
        raise RemoteError(f"{url}: {_why(error)}") from None


def _why(error: Exception) -> str:
    """An error as one line; a call that ran out of time says which deadline it was."""
    if isinstance(error, (FSTimeoutError, TimeoutError)):
        return f"no answer within {DEADLINE:g} s (the deadline of one call; DREAMER_REPORT_REMOTE_TIMEOUT changes it)"
    return f"{type(error).__name__}: {_first_line(error)}"


# ---------------------------------------------------------------- finding runs


def run_dirs(spec: str) -> list[Path]:
    """The local mirrors of the runs under a remote path or glob (config and READMEs fetched)."""
    scheme, bare = _scheme(spec), _bare(spec)
    if "/" not in bare and any(ch in bare for ch in "*?["):
        raise RemoteError(f"{spec}: a glob in the bucket name is not supported")
    roots = [bare]
    if any(ch in bare.split("/", 1)[-1] for ch in "*?[") and not call(spec, "exists", bare):
        roots = sorted(root for root in call(spec, "glob", bare) if _safe(root.strip("/")))
        if not roots:
            raise RemoteError(f"{spec}: no path matches this glob")
    found: dict[str, Staged] = {}
    listed: set[str] = set()  # every key the listings returned: READMEs below a root need no GET to be ruled out
    filesystem(scheme).invalidate_cache()  # listed afresh: `watch` looks again for new runs
    for i, root in enumerate(roots):
        listing = call(_url(scheme, root), "find", root, detail=True)
        if not listing and call(_url(scheme, root), "isfile", root):
            listing = {root: call(_url(scheme, root), "info", root)}
        if root in listing and defaults.is_run_file(root.rsplit("/", 1)[-1]):  # a run file names its folder
            root = roots[i] = root.rsplit("/", 1)[0]
            listing = call(_url(scheme, root), "find", root, detail=True)
        listed |= {name.strip("/") for name in listing}
        for run, keys in _runs_in(root, listing).items():
            found.setdefault(run, Staged(_url(scheme, run), filesystem(scheme), keys))
    if not found:
        return []
    runs = []
    for run in (found[name] for name in sorted(found, key=lambda name: name.split("/"))):
        known = _RUNS.setdefault(local_path(run.url), run)  # found again (watch): keep what was fetched
        known.keys = run.keys
        runs.append(known)
    _fetch_readmes(scheme, runs, roots, listed)
    _fetch({run: [rel for rel in LIGHT_FILES if rel in run.keys] for run in runs})
    return [local_path(run.url) for run in runs]


def _runs_in(root: str, listing: dict) -> dict[str, dict[str, int]]:
    """run prefix -> {key below it: size} for the runs in a listing under `root`, as a walk finds them."""
    sizes = {
        name.strip("/"): int(info.get("size") or 0)
        for name, info in listing.items()
        if info.get("type", "file") == "file"
    }
    below = {name[len(root) + 1 :]: size for name, size in sizes.items() if name.startswith(root + "/")}
    folders = {
        rel.rsplit("/", 1)[0] if "/" in rel else "" for rel in below if defaults.is_run_file(rel.rsplit("/", 1)[-1])
    }
    runs = []
    for folder in sorted(folders):
        parts = folder.split("/") if folder else []
        if any(not part or part in (".", "..") or part.startswith(".") or part in SKIP_DIRS for part in parts):
            continue
        if any("/".join(parts[:i]) in folders for i in range(len(parts))):
            continue  # inside another run
        runs.append(folder)
    out: dict[str, dict[str, int]] = {folder: {} for folder in runs}
    for rel, size in below.items():  # each key to its run: one pass, not one per run (a sweep has thousands)
        parts = rel.split("/")
        folder = next((f for f in ("/".join(parts[:i]) for i in range(len(parts))) if f in out), None)
        if folder is not None and _safe(rest := rel[len(folder) + 1 :] if folder else rel):
            out[folder][rest] = size
    return {f"{root}/{folder}" if folder else root: keys for folder, keys in out.items()}


def _fetch_readmes(scheme: str, runs: list[Staged], roots: list[str], listed: set[str]) -> None:
    """READMEs of the folders above the runs (up to the bucket), as a local report looks for them.

    Below a listed root the listing says which exist; only folders above the roots (a few) are
    asked for blindly (one GET each, most of them answered "not found")."""
    wanted = set()
    for run in runs:
        parts = _bare(run.url).split("/")
        for folder in ("/".join(parts[:i]) for i in range(1, len(parts))):
            known = any(folder == root or folder.startswith(root + "/") for root in roots)
            wanted |= {key for key in (f"{folder}/{name}" for name in README_NAMES) if not known or key in listed}
    wanted = sorted(wanted)
    for bare, data in zip(wanted, _cat(_url(scheme, wanted[0]), wanted) if wanted else []):
        if not isinstance(data, Exception):  # most folders have no README
            _write(local_path(_url(scheme, bare)), data)


# ---------------------------------------------------------------- fetching into the mirror


def local_path(url: str) -> Path:
    """Where the object or folder at `url` is mirrored; a key that would leave the staging
    folder ('..', empty parts) is refused."""
    if not _safe(_bare(url)):
        raise RemoteError(f"{url}: a key with an empty, '.' or '..' part; never mirrored")
    return _stage() / _scheme(url) / Path(*_bare(url).split("/"))


def _stage() -> Path:
    if not _STAGE:
        root = Path(tempfile.mkdtemp(prefix="dreamer-report-remote-"))
        (root / STAGE_MARK).write_text("a process's copy of remote runs; removed when it exits\n")
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _STAGE.append(root)
    return _STAGE[0]


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _fetch(wanted: dict[Staged, list[str]]) -> None:
    """Copy these keys (relative to their runs) into the mirror: concurrent reads, in batches."""
    todo = [(run, rel) for run, rels in wanted.items() for rel in rels if rel not in run.fetched]
    for batch in _batches(todo):
        data = _cat(batch[0][0].url, [run.key(rel) for run, rel in batch])
        for (run, rel), got in zip(batch, data):
            if isinstance(got, Exception):
                raise RemoteError(f"{run.url}/{rel}: {_why(got)}")
            _write(local_path(run.url) / Path(*rel.split("/")), got)
            run.fetched.add(rel)


def _batches(todo: list) -> list[list]:
    """`todo` cut into batches of about BATCH_BYTES (by the listed sizes)."""
    batches, size = [[]], 0
    for run, rel in todo:
        if batches[-1] and size + run.keys.get(rel, 0) > BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append((run, rel))
        size += run.keys.get(rel, 0)
    return [batch for batch in batches if batch]


def _cat(url: str, keys: list[str], start: int | None = None, end: int | None = None) -> list:
    """The bytes of each key, or the exception reading it raised; read concurrently.

    `cat_ranges`, not `cat`: `cat` would read a key with `[` or `*` in its name as a glob.
    """
    return call(url, "cat_ranges", keys, start, end, on_error="return")


def fetch_file(url: str) -> Path:
    """One remote object (a CSV export named on the command line) mirrored into the stage: its
    local path. A key whose name would leave its folder is refused."""
    bare = _bare(url)
    if "/" not in bare or not _safe(bare.split("/", 1)[1]):
        raise RemoteError(f"{url}: expected a bucket and a plain key")
    (got,) = _cat(url, [bare])
    if isinstance(got, Exception):
        raise RemoteError(f"{url}: {_why(got)}")
    path = local_path(url)
    _write(path, got)
    return path


def fetch_logs(run_dirs) -> None:
    """The files ingest parses (the JSONL logs and scope/*.float) of the staged runs among `run_dirs`;
    a download started by `prefetch_logs` is waited for."""
    wanted = {}
    for run_dir in run_dirs:
        run = _staged(run_dir)
        if run is not None:
            ahead = _AHEAD.pop(run, None)
            if ahead is not None:
                ahead.exception()  # waits; what a failed download missed is fetched below, its error raised here
            wanted[run] = _log_keys(run)
    _fetch(wanted)


def prefetch_logs(run_dirs) -> None:
    """Start downloading what `fetch_logs` would, in one background thread: ingest parses a batch
    of runs while the next batch downloads (a fetch waits on the network and the server, the
    parse on the CPU)."""
    runs = [run for run in map(_staged, run_dirs) if run is not None and run not in _AHEAD]
    if not runs:
        return
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(1, thread_name_prefix="dreamer-report-prefetch"))
    future = _POOL[0].submit(_fetch, {run: _log_keys(run) for run in runs})
    _AHEAD.update(dict.fromkeys(runs, future))


def _log_keys(run: Staged) -> list[str]:
    return [
        rel
        for rel in run.keys
        if rel in RUN_FILES
        or defaults.is_event_file(rel)
        or fnmatch.fnmatchcase(rel, "scope/*.float")
        and rel.count("/") == 1
    ]


def fetch_folder(run_dir, folder: str) -> None:
    """Every file under `folder` (e.g. 'ckpt', 'scope/openloop-video.mp4') of a staged run."""
    run = _staged(run_dir)
    if run is not None:
        _fetch({run: [rel for rel in run.keys if rel.startswith(folder.strip("/") + "/")]})


def _staged(run_dir) -> Staged | None:
    if not _STAGE:
        return None
    return _RUNS.get(Path(run_dir))


def listed(run_dir) -> set[str] | None:
    """The keys of a staged run (relative to it) as listed, None for a local run."""
    run = _staged(run_dir)
    return None if run is None else set(run.keys)


def origin(path) -> str | None:
    """The URL a mirrored run's file comes from, None for a local file."""
    run = _staged(Path(path).parent)
    return None if run is None else f"{run.url}/{Path(path).name}"


def size(url: str) -> int:
    """The current size of a remote file (listing caches bypassed: it may be growing)."""
    filesystem(_scheme(url)).invalidate_cache(_bare(url))
    return int(call(url, "info", _bare(url))["size"])


def read_range(url: str, start: int, end: int) -> bytes:
    """Bytes [start, end) of a remote file: what `watch` reads of an appended log."""
    got = _cat(url, [_bare(url)], start, end)[0]
    if isinstance(got, Exception):
        raise RemoteError(f"{url}: {_why(got)}")
    return got


def shown(path) -> str:
    """A path as the user named it: the URL for a mirrored run, else the path itself."""
    path = Path(path)
    if _STAGE and path.is_relative_to(_STAGE[0]) and len(path.relative_to(_STAGE[0]).parts) >= 2:
        scheme, *rest = path.relative_to(_STAGE[0]).parts
        return f"{scheme}://" + "/".join(rest)
    return str(path)


def identity(run_dir) -> str:
    """A run's name that outlives this process (its URL, or its real local path): the cache's entry name."""
    run = _staged(run_dir)
    return run.url if run is not None else str(Path(run_dir).resolve())
