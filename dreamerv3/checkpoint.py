"""Crash-safe checkpoints in elements' on-disk format.

elements.Checkpoint writes each save into a new folder `<timestamp>-<step>/`
with a `done` file last, but rewrites the `latest` pointer in place, so a kill
at that moment leaves it empty. Here the pointer is written to a temp file and
renamed (atomic on POSIX), and loading never trusts it alone: it picks the
newest folder that has `done`. Folders without `done` (a save cut short) are
ignored and removed by the next successful save.
"""

import os
import pathlib

import elements
import elements.checkpoint as ecp


class Checkpoint:

  def __init__(self, directory, keep=1):
    self.directory = pathlib.Path(directory)
    self.keep = keep
    self.saveables = {}
    self.saved_step = None  # step of the last save or load in this process

  def register(self, name, obj):
    if not (callable(getattr(obj, 'save', None)) and callable(getattr(obj, 'load', None))):
      raise ValueError(f"checkpointed object '{name}' needs save() and load()")
    self.saveables[name] = obj

  def save(self, step):
    folder = f'{elements.timestamp(millis=True)}-{int(step):012d}'
    path = self.directory / folder
    ecp.save(elements.Path(path), {k: v.save for k, v in self.saveables.items()})
    tmp = self.directory / 'latest.tmp'
    tmp.write_text(folder)
    os.replace(tmp, self.directory / 'latest')
    self._cleanup(keep_name=folder)
    self.saved_step = int(step)
    return path

  def latest(self):
    return newest(self.directory)

  def load(self, path=None, keys=None):
    path = path or self.latest()
    if path is None:
      raise FileNotFoundError(f'no complete checkpoint in {self.directory}')
    keys = keys or list(self.saveables)
    ecp.load(elements.Path(path), {k: self.saveables[k].load for k in keys})
    self.saved_step = int(path.name.rsplit('-', 1)[-1])
    return path

  def _cleanup(self, keep_name):
    complete = [p for p in _folders(self.directory) if (p / 'done').exists()]
    keep = {p.name for p in complete[-self.keep:]} | {keep_name}
    for folder in _folders(self.directory):
      if folder.name not in keep:
        _remove_tree(folder)


def newest(directory):
  """The newest complete checkpoint folder under `directory`, or None."""
  directory = pathlib.Path(directory)
  if not directory.is_dir():
    return None
  complete = [p for p in _folders(directory) if (p / 'done').exists()]
  return complete[-1] if complete else None


def resolve(path):
  """A run dir, a ckpt dir or a checkpoint folder -> a complete folder."""
  path = pathlib.Path(path)
  if (path / 'done').exists():
    return path
  for candidate in (path / 'ckpt', path):
    found = newest(candidate)
    if found:
      return found
  raise FileNotFoundError(
      f'no complete checkpoint (a folder with a done file) at {path} or {path}/ckpt')


def read_item(folder, name):
  """Load one saveable's data from a checkpoint folder without an object."""
  import pickle
  folder = pathlib.Path(folder)
  single = folder / f'{name}.pkl'
  if single.exists():
    return pickle.loads(single.read_bytes())
  shards = sorted(folder.glob(f'{name}-*.pkl'))
  if not shards:
    raise KeyError(f"checkpoint {folder} has no '{name}'")
  return [pickle.loads(s.read_bytes()) for s in shards]


def _folders(directory):
  # Names start with a sortable timestamp, so name order is time order.
  return sorted(p for p in directory.iterdir() if p.is_dir())


def _remove_tree(folder):
  for child in folder.iterdir():
    child.unlink()
  folder.rmdir()
