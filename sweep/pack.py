"""A sweep's run dirs and logs in one .tgz, without checkpoints or replay: what comes back
from a machine that ran it (finished or not: the metrics say how far each run got).

Names in the archive start with the root's own folder name (`artifacts/<task>_<arm>/seed0/...`,
`artifacts/logs/...`), never with a path of the machine.
"""

import os
import tarfile

SKIP = ('ckpt', 'replay')  # folders of a run dir that stay behind


def pack(runs, root, out):
  """Write `out` (.tgz) with every existing run dir of `runs` and its log; returns how many
  run dirs went in."""
  base = os.path.basename(os.path.normpath(root)) or 'runs'
  count = 0

  def keep(info):
    parts = info.name.split('/')
    return None if len(parts) > 3 and parts[3] in SKIP else info

  with tarfile.open(out, 'w:gz') as tar:
    for run in runs:
      if os.path.isdir(run.logdir) and not os.path.islink(run.logdir):
        tar.add(run.logdir, arcname=f'{base}/{os.path.relpath(run.logdir, root)}', filter=keep)
        count += 1
      if os.path.isfile(run.log):
        tar.add(run.log, arcname=f'{base}/{os.path.relpath(run.log, root)}')
  return count
