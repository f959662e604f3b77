"""Which trainer code a sweep runs, and the commit its logs name.

Without --commit the runs use the dreamerv3 package this command imports, and the logs
name the commit of its checkout (`+uncommitted` when dreamerv3/ has changes git does not
have). With --commit REV the package is exported from that commit with `git archive`
into <root>/.sweep/code/<sha>/ (on the shared filesystem, so SLURM nodes see it too), so
uncommitted edits never run. Where there is no .git (a copy of the files on another
machine) GIT_COMMIT names the commit the copy is of.
"""

import io
import os
import pathlib
import subprocess
import tarfile

import dreamerv3
from sweep.spec import SweepError

REPO = pathlib.Path(dreamerv3.__file__).resolve().parents[1]


def _git(*args):
  return subprocess.run(['git', '-C', str(REPO), *args], capture_output=True, timeout=60)


def tree_commit():
  """The commit of the code this command imports: GIT_COMMIT, else git's HEAD, else 'unknown'."""
  if os.environ.get('GIT_COMMIT'):
    return os.environ['GIT_COMMIT']
  try:
    head = _git('rev-parse', '--short', 'HEAD')
    if head.returncode:
      return 'unknown'
    dirty = _git('status', '--porcelain', '--', 'dreamerv3').stdout.strip()
  except (OSError, subprocess.TimeoutExpired):
    return 'unknown'
  return head.stdout.decode().strip() + ('+uncommitted' if dirty else '')


def pinned(rev, root):
  """(folder holding dreamerv3/ exported from `rev`, short sha); exported once per commit."""
  try:
    found = _git('rev-parse', '--short', '--verify', f'{rev}^{{commit}}')
  except (OSError, subprocess.TimeoutExpired) as e:
    raise SweepError(f'--commit {rev}: git is not available here ({e})')
  if found.returncode:
    raise SweepError(f'--commit {rev}: not a commit of the checkout at {REPO.name}/')
  sha = found.stdout.decode().strip()
  dest = pathlib.Path(root) / '.sweep' / 'code' / sha
  if (dest / '.complete').exists():
    return str(dest.resolve()), sha
  archive = _git('archive', '--format=tar', sha, 'dreamerv3')
  if archive.returncode:
    raise SweepError(f'--commit {rev}: git archive failed: '
                     f'{archive.stderr.decode().strip().splitlines()[0]}')
  try:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
      tar.extractall(dest, filter='data')
    (dest / '.complete').write_text(sha + '\n')
  except OSError as e:
    raise SweepError(f'--commit {rev}: cannot write its code under {root} ({e.strerror or e})')
  return str(dest.resolve()), sha
