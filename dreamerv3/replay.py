"""Replay: a ring buffer of agent steps with uniform sampling of sequences.

Each env (worker) writes its own stream, so a sampled sequence is always
consecutive steps of one env. Sequences may cross episode boundaries; the
`is_first` flag marks where a new episode starts, as the agent expects.
Storage is numpy chunks of `chunksize` steps allocated on first use, so a
large `size` costs memory only as it fills. `save()` yields the buffer as
shards (one per chunk) that elements' checkpoint writes as `replay-NNNN.pkl`;
the replay therefore lives inside `<logdir>/ckpt/<folder>/`, consistent with
the step counter and agent saved beside it.

Shapes: a step is a dict of arrays (obs keys, 'action', 'reward', 'is_first',
'is_last', 'is_terminal'); `sample(B, T)` returns a dict of arrays [B, T, ...].
"""

import numpy as np


class Replay:

  def __init__(self, size, chunksize=1024, workers=1, seed=0):
    self.workers = int(workers)
    self.chunksize = int(chunksize)
    per_worker = max(1, int(size) // self.workers)
    # Round capacity up to whole chunks so every chunk is fully used.
    self.nchunks = -(-per_worker // self.chunksize)
    self.capacity = self.nchunks * self.chunksize
    self.rng = np.random.default_rng(seed)
    self.chunks = [[None] * self.nchunks for _ in range(self.workers)]
    self.counts = np.zeros(self.workers, np.int64)  # steps ever written
    self.inserts = 0
    self.samples = 0

  def __len__(self):
    return int(np.minimum(self.counts, self.capacity).sum())

  def add(self, step, worker=0):
    """Append one step (dict of per-step arrays) to worker's stream."""
    position = int(self.counts[worker] % self.capacity)
    chunk_index, offset = divmod(position, self.chunksize)
    chunk = self.chunks[worker][chunk_index]
    if chunk is None:
      chunk = {
          k: np.zeros((self.chunksize,) + np.shape(v), np.asarray(v).dtype)
          for k, v in step.items()}
      self.chunks[worker][chunk_index] = chunk
    if set(chunk) != set(step):
      raise KeyError(
          f'replay step keys {sorted(step)} differ from stored {sorted(chunk)}')
    for key, value in step.items():
      chunk[key][offset] = value
    self.counts[worker] += 1
    self.inserts += 1

  def ready(self, length):
    """True when some worker holds at least one full sequence."""
    return bool((np.minimum(self.counts, self.capacity) >= length).any())

  def sample(self, batch, length):
    """Uniform over all stored sequences of `length` consecutive steps."""
    stored = np.minimum(self.counts, self.capacity)
    starts_per_worker = np.maximum(stored - length + 1, 0)
    total = starts_per_worker.sum()
    if total <= 0:
      raise ValueError(
          f'replay holds {stored.tolist()} steps per worker, fewer than the '
          f'sequence length {length}')
    picks = self.rng.integers(0, total, batch)
    bounds = np.cumsum(starts_per_worker)
    seqs = []
    for pick in picks:
      worker = int(np.searchsorted(bounds, pick, side='right'))
      start = int(pick - (bounds[worker] - starts_per_worker[worker]))
      seqs.append(self._sequence(worker, start, length))
    self.samples += batch
    return {k: np.stack([s[k] for s in seqs]) for k in seqs[0]}

  def _sequence(self, worker, start, length):
    # `start` counts from the oldest stored step of this worker; copy runs
    # of consecutive positions, one slice per chunk touched.
    count = int(self.counts[worker])
    position = (count - min(count, self.capacity) + start) % self.capacity
    first = self.chunks[worker][position // self.chunksize]
    out = {k: np.empty((length,) + v.shape[1:], v.dtype) for k, v in first.items()}
    done = 0
    while done < length:
      chunk_index, offset = divmod(position, self.chunksize)
      chunk = self.chunks[worker][chunk_index]
      n = min(length - done, self.chunksize - offset)
      for key, array in chunk.items():
        out[key][done:done + n] = array[offset:offset + n]
      done += n
      position = (position + n) % self.capacity
    return out

  def stats(self):
    return {
        'size': len(self), 'inserts': self.inserts, 'samples': self.samples,
        'ratio': self.samples / max(1, self.inserts)}

  def save(self):
    """Shards: a header, then one (worker, chunk index, arrays) per chunk."""
    yield {
        'workers': self.workers, 'chunksize': self.chunksize,
        'nchunks': self.nchunks, 'counts': self.counts.copy(),
        'inserts': self.inserts, 'samples': self.samples,
        'rng': self.rng.bit_generator.state}
    for worker in range(self.workers):
      for index, chunk in enumerate(self.chunks[worker]):
        if chunk is not None:
          yield {'worker': worker, 'index': index, 'chunk': chunk}

  def load(self, shards):
    shards = iter(shards)
    header = next(shards)
    mine = (self.workers, self.chunksize, self.nchunks)
    theirs = (header['workers'], header['chunksize'], header['nchunks'])
    if mine != theirs:
      raise ValueError(
          f'saved replay has (workers, chunksize, nchunks) {theirs} but this '
          f'run expects {mine}: keep run.envs and replay.* when resuming')
    self.counts = np.asarray(header['counts'], np.int64).copy()
    self.inserts = header['inserts']
    self.samples = header['samples']
    self.rng.bit_generator.state = header['rng']
    self.chunks = [[None] * self.nchunks for _ in range(self.workers)]
    for shard in shards:
      self.chunks[shard['worker']][shard['index']] = shard['chunk']
