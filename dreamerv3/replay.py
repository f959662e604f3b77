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
'is_last', 'is_terminal', and with `replay_context` the policy's latent state
'dyn/deter', 'dyn/stoch'); `sample(B, T)` returns a dict of arrays [B, T, ...]
plus 'stepid' [B, T, 2] = (worker, index of the step in its stream), which
`update()` takes back to overwrite stored values (the official replay.update:
fresh posteriors after each update).

Online (`replay.online`, the official's default): each time a worker completes
a new non-overlapping sequence of `length` steps it is queued, and training
samples take queued sequences first, so every step is trained on soon after it
was collected. As in the official, the queued sequences start at steps
1, length + 1, 2 length + 1, ... of each stream.
"""

import collections

import numpy as np


class Replay:
    def __init__(self, size, chunksize=1024, workers=1, seed=0, length=None, online=False):
        self.length = length  # the training sequence length (for online and stats)
        self.online = bool(online)
        if self.online and not length:
            raise ValueError("Replay(online=True) needs the training sequence length")
        self.queue = collections.deque()  # (worker, stream index) of unsampled new sequences
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
        self.interval = {"inserts": 0, "samples": 0, "updates": 0}  # since the last stats()

    def __len__(self):
        return int(np.minimum(self.counts, self.capacity).sum())

    def add(self, step, worker=0):
        """Append one step (dict of per-step arrays) to worker's stream."""
        position = int(self.counts[worker] % self.capacity)
        chunk_index, offset = divmod(position, self.chunksize)
        chunk = self.chunks[worker][chunk_index]
        if chunk is None:
            chunk = {k: np.zeros((self.chunksize,) + np.shape(v), np.asarray(v).dtype) for k, v in step.items()}
            self.chunks[worker][chunk_index] = chunk
        if set(chunk) != set(step):
            raise KeyError(f"replay step keys {sorted(step)} differ from stored {sorted(chunk)}")
        for key, value in step.items():
            chunk[key][offset] = value
        index = int(self.counts[worker])
        self.counts[worker] += 1
        self.inserts += 1
        self.interval["inserts"] += 1
        if self.online and index >= self.length and index % self.length == 0:
            self.queue.append((worker, index - self.length + 1))

    def ready(self, length):
        """True when some worker holds at least one full sequence."""
        return bool((np.minimum(self.counts, self.capacity) >= length).any())

    def sample(self, batch, length=None, mode="train"):
        """`batch` sequences of `length` consecutive steps (default: the training
        length): queued online sequences first (mode 'train' only), then uniform
        over all stored ones."""
        length = length or self.length
        stored = np.minimum(self.counts, self.capacity)
        starts_per_worker = np.maximum(stored - length + 1, 0)
        total = starts_per_worker.sum()
        if total <= 0:
            raise ValueError(
                f"replay holds {stored.tolist()} steps per worker, fewer than the sequence length {length}"
            )
        starts = []
        while mode == "train" and self.queue and length == self.length and len(starts) < batch:
            worker, index = self.queue.popleft()
            if index >= self.counts[worker] - self.capacity:  # not yet overwritten
                starts.append((worker, index))
        picks = self.rng.integers(0, total, batch - len(starts))
        bounds = np.cumsum(starts_per_worker)
        for pick in picks:
            worker = int(np.searchsorted(bounds, pick, side="right"))
            offset = int(pick - (bounds[worker] - starts_per_worker[worker]))
            oldest = int(self.counts[worker] - stored[worker])
            starts.append((worker, oldest + offset))
        seqs = [self._sequence(worker, index, length) for worker, index in starts]
        if mode == "train":
            self.samples += batch
            self.interval["samples"] += batch
        data = {k: np.stack([s[k] for s in seqs]) for k in seqs[0]}
        data["stepid"] = np.stack(
            [np.stack([np.full(length, w), np.arange(i, i + length)], -1) for w, i in starts]
        ).astype(np.int64)
        return data

    def update(self, data):
        """Overwrite stored values at data['stepid'] [B, T, 2] with data's other
        keys [B, T, ...]; steps overwritten since they were sampled are skipped."""
        stepid = np.asarray(data["stepid"])
        assert stepid.ndim == 3 and stepid.shape[-1] == 2, stepid.shape
        values = {k: np.asarray(v) for k, v in data.items() if k != "stepid"}
        self.interval["updates"] += int(np.prod(stepid.shape[:2]))
        for b, t in np.ndindex(*stepid.shape[:2]):
            worker, index = (int(x) for x in stepid[b, t])
            if index < self.counts[worker] - self.capacity or index >= self.counts[worker]:
                continue
            chunk_index, offset = divmod(index % self.capacity, self.chunksize)
            chunk = self.chunks[worker][chunk_index]
            for key, value in values.items():
                chunk[key][offset] = value[b, t]

    def _sequence(self, worker, index, length):
        # `index` counts the worker's steps since its first; copy runs of
        # consecutive positions, one slice per chunk touched.
        position = index % self.capacity
        first = self.chunks[worker][position // self.chunksize]
        out = {k: np.empty((length,) + v.shape[1:], v.dtype) for k, v in first.items()}
        done = 0
        while done < length:
            chunk_index, offset = divmod(position, self.chunksize)
            chunk = self.chunks[worker][chunk_index]
            n = min(length - done, self.chunksize - offset)
            for key, array in chunk.items():
                out[key][done : done + n] = array[offset : offset + n]
            done += n
            position = (position + n) % self.capacity
        return out

    def stats(self):
        """The official replay metrics (inserts, samples, updates and replay_ratio
        over the interval since the last call; items = sequences of the training
        length that can be sampled) plus ours: size (steps stored) and ratio
        (sequences sampled per step inserted, over the whole run)."""
        stored = np.minimum(self.counts, self.capacity)
        chunks = [c for worker in self.chunks for c in worker if c is not None]
        m = self.interval
        stats = {
            "items": int(np.maximum(stored - (self.length or 1) + 1, 0).sum()),
            "chunks": len(chunks),
            "streams": int((self.counts > 0).sum()),
            "ram_gb": sum(a.nbytes for c in chunks for a in c.values()) / 1024**3,
            "inserts": m["inserts"],
            "samples": m["samples"],
            "updates": m["updates"],
            "replay_ratio": ((self.length or 1) * m["samples"] / m["inserts"] if m["inserts"] else float("nan")),
            "size": len(self),
            "ratio": self.samples / max(1, self.inserts),
        }
        self.interval = {k: 0 for k in m}
        return stats

    def save(self):
        """Shards: a header, then one (worker, chunk index, arrays) per chunk."""
        yield {
            "workers": self.workers,
            "chunksize": self.chunksize,
            "nchunks": self.nchunks,
            "counts": self.counts.copy(),
            "inserts": self.inserts,
            "samples": self.samples,
            "rng": self.rng.bit_generator.state,
            "queue": list(self.queue),
            "interval": dict(self.interval),
        }
        for worker in range(self.workers):
            for index, chunk in enumerate(self.chunks[worker]):
                if chunk is not None:
                    yield {"worker": worker, "index": index, "chunk": chunk}

    def load(self, shards):
        shards = iter(shards)
        header = next(shards)
        mine = (self.workers, self.chunksize, self.nchunks)
        theirs = (header["workers"], header["chunksize"], header["nchunks"])
        if mine != theirs:
            raise ValueError(
                f"saved replay has (workers, chunksize, nchunks) {theirs} but this "
                f"run expects {mine}: keep run.envs and replay.* when resuming"
            )
        self.counts = np.asarray(header["counts"], np.int64).copy()
        self.inserts = header["inserts"]
        self.samples = header["samples"]
        self.rng.bit_generator.state = header["rng"]
        self.queue = collections.deque(tuple(x) for x in header.get("queue", []))
        self.interval = dict(header.get("interval", self.interval))
        self.chunks = [[None] * self.nchunks for _ in range(self.workers)]
        for shard in shards:
            self.chunks[shard["worker"]][shard["index"]] = shard["chunk"]
