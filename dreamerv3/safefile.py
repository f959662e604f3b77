"""The trainer writes and deletes only real files and folders inside its logdir.

A logdir can be shared, copied or prepared by someone else, and a link planted in it (a
`ckpt/` entry, `metrics.jsonl`, a temporary-file name) would make a write or a cleanup land
outside it. `refuse_links` finds such links before a run starts (one line, exit 2);
`write_replace` writes a file through a fresh temporary file that is never a link.

The same rules serve every command that writes (the sweep's logs, markers and archives, the
toolkit's reports, figures and results): `write` and `replacing` refuse a target inside an
input or reached through a link, then write by replace. This module imports nothing of the
project but its errors, so the toolkit and the sweep use it without the trainer.
"""

import contextlib
import os
import pathlib
import stat

from dreamerv3 import remotepath
from dreamerv3.errors import LinkInLogdir


def refuse_links(paths):
    """LinkInLogdir naming the first of `paths` that is a symbolic link, or a FIFO, device or
    socket (a write there blocks or goes elsewhere); absent paths are fine."""
    for path in paths:
        path = pathlib.Path(path)
        if path.is_symlink():
            raise LinkInLogdir(
                f"{path}: a symbolic link; the trainer writes only real files and folders inside its "
                "logdir (remove the link)"
            )
        if path.exists() and not (path.is_file() or path.is_dir()):
            raise LinkInLogdir(
                f"{path}: not a regular file or folder (a FIFO, a device or a socket); the trainer "
                "writes only real files and folders inside its logdir (remove it)"
            )


def write_replace(path, data):
    """Write `data` (bytes) to `path` through `<name>.tmp`: a link planted under the temporary
    name is removed, never followed (O_EXCL | O_NOFOLLOW), then renamed over `path` (the link
    itself if `path` is one: its target is never written)."""
    path = pathlib.Path(path)
    with named(path):
        tmp, fd = _fresh_temporary(path)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)


def _fresh_temporary(path):
    """(`<name>.tmp` beside `path`, a descriptor open for writing on it), the file created anew:
    whatever was planted under that name (a link, a FIFO) is removed, never written through."""
    tmp = path.with_name(path.name + ".tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)


def append(path, data):
    """Append `data` (bytes) to `path`, refusing (OSError) to follow a link there."""
    with named(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        with os.fdopen(fd, "ab") as f:
            f.write(data)


@contextlib.contextmanager
def named(path):
    """An OSError raised while writing `path` names it: a write on a full disk names no file."""
    try:
        yield
    except OSError as e:
        if e.filename is None:
            e.filename = str(path)
        raise


# Every command's writes: the trainer's run dirs above, the sweep's logs, markers and packs,
# the toolkit's reports, figures and results below. One rule for all: a target is never
# inside an input, never reached through a link, and is written by replace.


class UnsafeTarget(ValueError):
    """A write target inside an input, or a symbolic link: one line naming the flag."""


class OutputInInput(UnsafeTarget):
    """An output path that lies inside an input; the message names the flag and the input."""


def inside(path, root):
    """True when `path`, links followed, is `root` or lies below it (links of `root` followed
    too). A path not created yet is placed by its existing part."""
    try:
        real, base = pathlib.Path(path).resolve(), pathlib.Path(root).resolve()
    except (OSError, RuntimeError):  # a link loop
        return False
    return real == base or base in real.parents


def refuse_inside(output, inputs, flag, what="input"):
    """OutputInInput when `output` is one of `inputs` (files) or lies inside one (folders);
    UnsafeTarget when it names object storage (these outputs are local files)."""
    remotepath.refuse_url(output, flag, UnsafeTarget)
    for source in inputs:
        if inside(output, source):
            raise OutputInInput(
                f"{flag} {output}: inside the {what} {source}; write outputs outside the {what}s (nothing was written)"
            )


def refuse_linked(path, flag, within=None):
    """UnsafeTarget when `path` is a symbolic link, or (given `within`) when any folder between
    `within` and `path` is one: a planted link never steers a write."""
    path = pathlib.Path(path)
    steps = [path]
    if within is not None:
        base = pathlib.Path(within)
        try:
            rel = path.relative_to(base)
        except ValueError:
            rel = None
        if rel is not None:
            steps += [base / pathlib.Path(*rel.parts[:i]) for i in range(1, len(rel.parts))]
    for step in steps:
        if step.is_symlink():
            raise UnsafeTarget(
                f"{flag} {path}: {step} is a symbolic link; outputs are written only as "
                "real files and folders (remove the link)"
            )


def write(path, data, inputs=(), flag="--out", within=None):
    """The one way a command writes a file: refused inside any of `inputs` or through a link
    (refuse_inside, refuse_linked), folders made as needed, then `write_replace`. `data`: bytes
    or text (UTF-8). Returns the path."""
    refuse_inside(path, inputs, flag)
    path = pathlib.Path(path)
    refuse_linked(path, flag, within)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_replace(path, data.encode("utf-8") if isinstance(data, str) else data)
    return path


@contextlib.contextmanager
def replacing(path, inputs=(), flag="--out", within=None):
    """`write` for a writer that streams (an archive, a figure, a CSV): yields a binary file
    on `<name>.tmp` (created fresh, never through a link), renamed over `path` when the block
    ends without an error; removed when it raises."""
    refuse_inside(path, inputs, flag)
    path = pathlib.Path(path)
    refuse_linked(path, flag, within)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, fd = _fresh_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def open_append(path):
    """A binary file appending to `path` (created if absent); OSError rather than follow a link."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    return os.fdopen(fd, "ab")


def read_small(path, limit=1 << 20):
    """The bytes of `path` when it is a regular file (not a link, a FIFO or a device) of at
    most `limit` bytes, else None: a marker or record file planted as something else is no
    record, and reading it never blocks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        return f.read(limit + 1)[:limit]
