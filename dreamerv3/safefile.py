"""The trainer writes and deletes only real files and folders inside its logdir.

A logdir can be shared, copied or prepared by someone else, and a link planted in it (a
`ckpt/` entry, `metrics.jsonl`, a temporary-file name) would make a write or a cleanup land
outside it. `refuse_links` finds such links before a run starts (one line, exit 2);
`write_replace` writes a file through a fresh temporary file that is never a link.
"""

import os
import pathlib

from dreamerv3.errors import LinkInLogdir


def refuse_links(paths):
  """LinkInLogdir naming the first of `paths` that is a symbolic link (absent paths are fine)."""
  for path in paths:
    path = pathlib.Path(path)
    if path.is_symlink():
      raise LinkInLogdir(
          f'{path}: a symbolic link; the trainer writes only real files and folders inside its '
          'logdir (remove the link)')


def write_replace(path, data):
  """Write `data` (bytes) to `path` through `<name>.tmp`: a link planted under the temporary
  name is removed, never followed (O_EXCL | O_NOFOLLOW), then renamed over `path` (the link
  itself if `path` is one: its target is never written)."""
  path = pathlib.Path(path)
  tmp = path.with_name(path.name + '.tmp')
  if tmp.is_symlink() or tmp.exists():
    tmp.unlink()
  fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_NOFOLLOW', 0), 0o644)
  with os.fdopen(fd, 'wb') as f:
    f.write(data)
  os.replace(tmp, path)


def append(path, data):
  """Append `data` (bytes) to `path`, refusing (OSError) to follow a link there."""
  fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, 'O_NOFOLLOW', 0), 0o644)
  with os.fdopen(fd, 'ab') as f:
    f.write(data)
