"""A logdir in object storage (`--logdir gs://...`, `s3://...`, `az://...`), through fsspec.

Object stores can neither append to an object nor rename one, and the trainer relies on both:
JSONL logs grow line by line, scope files grow record by record, and a checkpoint is published
by renaming its `latest` pointer after its folder is complete. So a run with a remote logdir
writes, unchanged, into a local mirror folder, and `Mirror` keeps the remote copy in step:

- `pull` copies the remote logdir down before the run starts (a resume from a remote checkpoint);
- `push` uploads what changed since the last push: a checkpoint folder only once its `done`
  file exists, `ckpt/latest` only after the folder it names, and checkpoint folders the
  trainer removed are removed remotely; nothing outside the logdir's prefix is touched;
- `syncing` pushes every `run.sync_every` seconds on a thread and once when the run ends.

Credentials and endpoints come from each cloud's environment variables (AWS_*, including
AWS_ENDPOINT_URL; GOOGLE_APPLICATION_CREDENTIALS or STORAGE_EMULATOR_HOST;
AZURE_STORAGE_CONNECTION_STRING). Failures are `StorageError`, one line naming the URL.
"""

import contextlib
import pathlib
import shutil
import sys
import tempfile
import threading

from dreamerv3 import remotepath
from dreamerv3.errors import StorageError
from dreamerv3.remotepath import PROTOCOLS, is_remote, safe_key  # noqa: F401  (one table for all)
from dreamerv3.remotepath import first_line as _first_line

DEADLINE = 120.0  # seconds for one remote call (a whole batch of uploads)


class Mirror:
    """A remote logdir and the local folder the trainer writes instead."""

    def __init__(self, url, local=None):
        self.url = str(url).rstrip("/")
        scheme, self.prefix = self.url.split("://", 1)
        try:  # fsspec is imported there: local logdirs train where it is not installed
            self.fs = remotepath.filesystem(scheme, StorageError)
        except StorageError as e:
            raise StorageError(f"{self.url}: {str(e).split(': ', 1)[1]}") from None
        self.local = pathlib.Path(local or tempfile.mkdtemp(prefix="dreamer-logdir-"))
        self.sent = {}  # relative path -> (size, mtime_ns) last uploaded
        self.lock = threading.Lock()

    def _call(self, method, *args, **kwargs):
        try:
            if getattr(self.fs, "async_impl", False):
                kwargs["timeout"] = DEADLINE
            return getattr(self.fs, method)(*args, **kwargs)
        except Exception as e:  # botocore, aiohttp, azure and fsspec errors share no base
            raise StorageError(f"{self.url}: {type(e).__name__}: {_first_line(e)}") from None

    def pull(self):
        """Copy the remote logdir into the local folder (nothing there: a new run)."""
        keys = [k for k in self._call("find", self.prefix) if k.startswith(self.prefix + "/")]
        rels = [k[len(self.prefix) + 1 :] for k in keys]
        safe = [(k, r) for k, r in zip(keys, rels) if safe_key(r)]
        for _, rel in safe:
            (self.local / rel).parent.mkdir(parents=True, exist_ok=True)
        if safe:
            self._call("get", [k for k, _ in safe], [str(self.local / r) for _, r in safe])
        for _, rel in safe:
            st = (self.local / rel).stat()
            self.sent[rel] = (st.st_size, st.st_mtime_ns)
        return len(safe)

    def push(self):
        """Upload what changed since the last push, checkpoints only when complete."""
        with self.lock:
            ckpt = self.local / "ckpt"
            latest = (ckpt / "latest").read_text().strip() if (ckpt / "latest").is_file() else None
            complete = {p.name for p in ckpt.iterdir() if (p / "done").is_file()} if ckpt.is_dir() else set()
            changed = {}
            for path in sorted(self.local.rglob("*")):
                rel = path.relative_to(self.local).as_posix()
                if path.is_symlink() or not path.is_file() or path.name.endswith(".tmp") or rel == "ckpt/latest":
                    continue
                parts = rel.split("/")
                if parts[0] == "ckpt" and len(parts) > 2 and parts[1] not in complete:
                    continue  # being written; the next push takes it
                st = path.stat()
                if self.sent.get(rel) != (st.st_size, st.st_mtime_ns):
                    changed[rel] = (st.st_size, st.st_mtime_ns)
            if changed:
                self._call("put", [str(self.local / r) for r in changed], [f"{self.prefix}/{r}" for r in changed])
                self.sent.update(changed)
            if latest in complete:
                self._call("pipe_file", f"{self.prefix}/ckpt/latest", latest.encode())
                self._drop_removed_checkpoints(complete)
            return len(changed)

    def _drop_removed_checkpoints(self, complete):
        """Remove remote checkpoint folders the trainer removed locally (old-checkpoint cleanup)."""
        remote = self._call("ls", f"{self.prefix}/ckpt", detail=False)
        for key in remote:
            name = key.rstrip("/").rsplit("/", 1)[-1]
            if name != "latest" and name not in complete and key.rstrip("/").startswith(self.prefix + "/ckpt/"):
                self._call("rm", key.rstrip("/"), recursive=True)
                self.sent = {r: s for r, s in self.sent.items() if not r.startswith(f"ckpt/{name}/")}


@contextlib.contextmanager
def syncing(mirrors, every):
    """Push every `every` seconds while the block runs (0: only at the end), and once after it.
    `mirrors`: a Mirror, a list of them (a population's members, pushed in turn by one thread)
    or None. A final push that fails raises StorageError naming where that local copy is kept;
    the other mirrors are pushed all the same, and their local copies removed."""
    mirrors = [] if mirrors is None else [mirrors] if isinstance(mirrors, Mirror) else list(mirrors)
    if not mirrors:
        yield
        return
    stop = threading.Event()

    def loop():
        while not stop.wait(every):
            for mirror in mirrors:
                try:
                    mirror.push()
                except StorageError as e:  # the run goes on; the final push tries again
                    print(f"warning: {e}", file=sys.stderr)

    thread = threading.Thread(target=loop, daemon=True) if every > 0 else None
    if thread:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if thread:
            thread.join()
        failed = []
        for mirror in mirrors:
            try:
                mirror.push()
            except StorageError as e:
                failed.append((mirror, e))
    kept = [mirror for mirror, _ in failed]
    discard(m for m in mirrors if m not in kept)  # everything else is remote now
    if failed:
        (mirror, error), more = failed[0], len(failed) - 1
        others = f" ({more} other logdirs failed too, each kept locally)" if more else ""
        raise StorageError(f"{error}; the local copy is in {mirror.local}{others}")


def discard(mirrors):
    """Remove the local folders of `mirrors` (their runs are remote, or never started)."""
    for mirror in mirrors:
        shutil.rmtree(mirror.local, ignore_errors=True)
