"""Which trainer code a sweep runs, and the commit its logs name.

Without --commit the runs use the dreamerv3 package this command imports, and the logs
name the commit of its checkout (`+uncommitted` when dreamerv3/ has changes git does not
have). With --commit REV the package is exported from that commit with `git archive`
into <root>/.sweep/code/<sha>/ (on the shared filesystem, so SLURM nodes see it too), so
uncommitted edits never run. Where there is no .git (a copy of the files on another
machine) GIT_COMMIT names the commit the copy is of.
"""

import hashlib
import io
import os
import pathlib
import subprocess
import tarfile

import dreamerv3
from dreamerv3 import safefile
from sweep.spec import SweepError

REPO = pathlib.Path(dreamerv3.__file__).resolve().parents[1]


def _git(*args):
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, timeout=60)


def tree_commit():
    """The commit of the code this command imports: GIT_COMMIT, else git's HEAD, else 'unknown'."""
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        head = _git("rev-parse", "--short", "HEAD")
        if head.returncode:
            return "unknown"
        dirty = _git("status", "--porcelain", "--", "dreamerv3").stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return head.stdout.decode().strip() + ("+uncommitted" if dirty else "")


def pinned(rev, root):
    """(folder holding dreamerv3/ exported from `rev`, short sha); exported once per commit."""
    try:
        found = _git("rev-parse", "--short", "--verify", f"{rev}^{{commit}}")
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SweepError(f"--commit {rev}: git is not available here ({e})")
    if found.returncode:
        raise SweepError(f"--commit {rev}: not a commit of the checkout at {REPO.name}/")
    sha = found.stdout.decode().strip()
    dest = pathlib.Path(root) / ".sweep" / "code" / sha
    if (dest / ".complete").exists():
        verify(dest, sha)  # found, not made here: run it only if it is the commit's code
        return str(dest.resolve()), sha
    archive = _git("archive", "--format=tar", sha, "dreamerv3")
    if archive.returncode:
        raise SweepError(f"--commit {rev}: git archive failed: {archive.stderr.decode().strip().splitlines()[0]}")
    try:
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(dest, filter="data")
    except OSError as e:
        raise SweepError(f"--commit {rev}: cannot write its code under {root} ({e.strerror or e})")
    verify(dest, sha)  # a folder planted there before the export keeps its extra files
    safefile.write_replace(dest / ".complete", (sha + "\n").encode())
    return str(dest.resolve()), sha


def blob_hash(data):
    """git's id of a file's content (SHA-1 of 'blob <size>\\0' + content)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def verify(dest, sha):
    """SweepError unless `dest` holds exactly the dreamerv3/ files of commit `sha`, byte for
    byte (content hashes against git's tree): no file more or less, no link, no cache folder."""
    listing = _git("ls-tree", "-r", "-z", sha, "dreamerv3")
    if listing.returncode:
        raise SweepError(f"--commit {sha}: git ls-tree failed")
    expected = {}
    for entry in listing.stdout.decode().split("\0"):
        if entry:
            meta, path = entry.split("\t", 1)
            expected[path] = meta.split()[2]
    found = {}
    for folder, dirs, files in os.walk(dest):
        for name in dirs + files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, dest)
            if os.path.islink(path):
                raise SweepError(f"{dest}: {rel} is a link; not the code of commit {sha} (remove the folder)")
            rel = rel.replace(os.sep, "/")
            if name in dirs and not any(p.startswith(rel + "/") for p in expected):
                found[rel + "/"] = "a folder"  # an empty folder the commit does not have (__pycache__)
            elif name in files and rel != ".complete":
                with open(path, "rb") as f:
                    found[rel] = blob_hash(f.read())
    if found != expected:
        odd = sorted(set(found) ^ set(expected)) or sorted(k for k in found if found[k] != expected[k])
        raise SweepError(
            f"{dest}: differs from commit {sha} ({odd[0]}); remove the folder and the sweep exports the commit again"
        )
