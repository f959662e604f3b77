"""One process at a time on a folder: the trainer on each of its logdirs, a sweep on its root.

Two trainers on one logdir interleave their logs and checkpoints; two sweeps on one root
start the same runs twice. `claim` takes an exclusive lock (flock) on `<folder>/.lock` and
writes who holds it there; a second claim from another process fails with one line naming
the holder. The operating system drops the lock when the holding process ends, killed or
not, so a lock file left by a killed process is stale and simply taken over. A process that
already holds a folder may claim it again (a population, a test calling main twice).
"""

import fcntl
import os
import socket

NAME = ".lock"
_held = {}  # real path of a folder -> the open lock file (open for as long as the process lives)


def claim(folder, what="--logdir"):
    """None once this process holds `folder` (made if absent), or one line: the folder is held
    by another process (named by its pid and host), or cannot be written."""
    real = os.path.realpath(folder)
    if real in _held:
        return None
    path = os.path.join(folder, NAME)
    try:
        os.makedirs(folder, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as e:
        return f"{what} {folder}: cannot write there ({e.strerror or e})"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip().splitlines()
        os.close(fd)
        return (
            f"{what} {folder}: in use by {holder[0] if holder else 'another process'}; "
            "one process at a time (wait for it to end, or stop it)"
        )
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    _held[real] = fd
    return None


def release(folder):
    """Let go of `folder` if this process holds it."""
    fd = _held.pop(os.path.realpath(folder), None)
    if fd is not None:
        os.close(fd)
