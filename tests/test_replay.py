"""Replay ring buffer: capacity, sampling uniformity and order, save/load."""

import numpy as np
import pytest

from dreamerv3.replay import Replay


def step(i, worker=0):
    return {
        "x": np.int64(i),
        "w": np.int8(worker),
        "is_first": i % 7 == 0,
        "image": np.full((2, 2, 3), i % 256, np.uint8),
    }


def test_ring_buffer_keeps_newest_steps():
    replay = Replay(size=10, chunksize=4)
    assert replay.capacity == 12  # rounded up to whole chunks
    for i in range(30):
        replay.add(step(i))
    assert len(replay) == 12
    data = replay.sample(64, 12)
    assert data["x"].shape == (64, 12)
    # Only one sequence of length 12 exists: the newest 12 steps, in order.
    assert (data["x"] == np.arange(18, 30)).all()


def test_sequences_are_consecutive_and_cover_all_starts():
    replay = Replay(size=100, chunksize=8)
    for i in range(50):
        replay.add(step(i))
    data = replay.sample(4000, 5)
    assert (np.diff(data["x"], axis=1) == 1).all()
    starts = np.bincount(data["x"][:, 0], minlength=46)
    assert len(starts) == 46 and starts.min() > 40  # uniform over 46 starts (~87 each)
    assert data["image"].shape == (4000, 5, 2, 2, 3)
    assert (data["is_first"] == (data["x"] % 7 == 0)).all()


def test_workers_do_not_mix():
    replay = Replay(size=40, chunksize=4, workers=2)
    for i in range(30):
        replay.add(step(i, 0), worker=0)
        replay.add(step(1000 + i, 1), worker=1)
    data = replay.sample(500, 6)
    assert (data["w"] == data["w"][:, :1]).all()
    assert (np.diff(data["x"], axis=1) == 1).all()
    assert set(np.unique(data["w"])) == {0, 1}


def test_too_few_steps_raises():
    replay = Replay(size=100, chunksize=8)
    for i in range(3):
        replay.add(step(i))
    assert not replay.ready(5)
    with pytest.raises(ValueError, match="fewer than the sequence length"):
        replay.sample(2, 5)


def test_save_load_roundtrip_continues_identically():
    a = Replay(size=20, chunksize=4, seed=3)
    for i in range(27):
        a.add(step(i))
    shards = list(a.save())
    b = Replay(size=20, chunksize=4, seed=99)
    b.load(iter(shards))
    assert len(b) == len(a) and b.stats() == a.stats()
    for i in range(27, 33):
        a.add(step(i))
        b.add(step(i))
    assert (a.sample(8, 6)["x"] == b.sample(8, 6)["x"]).all()


def test_load_refuses_other_layout():
    a = Replay(size=20, chunksize=4)
    a.add(step(0))
    with pytest.raises(ValueError, match="keep run.envs and replay"):
        Replay(size=40, chunksize=4).load(a.save())


def test_online_queue_trains_each_new_sequence_first():
    """replay.online (official): every completed non-overlapping sequence is
    queued when its last step arrives and sampled before uniform draws."""
    replay = Replay(size=100, chunksize=8, length=5, online=True, seed=1)
    for i in range(16):
        replay.add(step(i))
    assert list(replay.queue) == [(0, 1), (0, 6), (0, 11)]
    report = replay.sample(3, 4, mode="report")  # reports never take queued sequences
    assert len(replay.queue) == 3 and report["x"].shape == (3, 4)
    first = replay.sample(2)
    assert first["x"].tolist() == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]
    second = replay.sample(2)
    assert second["x"][0].tolist() == [11, 12, 13, 14, 15] and not replay.queue
    assert (np.diff(second["x"][1]) == 1).all()  # then uniform
    plain = Replay(size=100, chunksize=8, length=5, seed=1)
    for i in range(16):
        plain.add(step(i))
    assert not plain.queue


def test_online_queue_skips_overwritten_sequences_and_survives_save():
    replay = Replay(size=8, chunksize=4, length=3, online=True)
    for i in range(13):
        replay.add(step(i))
    # queued at steps 3, 6, 9, 12 -> starts 1, 4, 7, 10; capacity 8 keeps steps 5..12
    assert list(replay.queue) == [(0, 1), (0, 4), (0, 7), (0, 10)]
    restored = Replay(size=8, chunksize=4, length=3, online=True)
    restored.load(replay.save())
    assert list(restored.queue) == list(replay.queue)
    data = restored.sample(2)
    assert data["x"].tolist() == [[7, 8, 9], [10, 11, 12]]


def test_stepid_and_update_write_back():
    replay = Replay(size=12, chunksize=4, length=4, seed=0)
    for i in range(14):  # capacity 12: steps 2..13 stored
        replay.add({**step(i), "z": np.float32(0)})
    data = replay.sample(5)
    assert (data["stepid"][..., 0] == 0).all()
    assert (data["stepid"][..., 1] == data["x"]).all()  # stepid = index in the stream
    replay.update({"stepid": data["stepid"], "z": data["x"].astype(np.float32) * 10})
    whole = replay.sample(1, 12)
    stored = dict(zip(whole["x"][0].tolist(), whole["z"][0].tolist()))
    written = set(data["x"].ravel().tolist())
    assert all(stored[x] == (10 * x if x in written else 0) for x in stored)
    # A step overwritten after sampling is not written: the ring moved on.
    old = replay.sample(1)
    for i in range(14, 26):
        replay.add({**step(i), "z": np.float32(0)})
    replay.update({"stepid": old["stepid"], "z": np.full((1, 4), 7, np.float32)})
    assert (replay.sample(1, 12)["z"] == 0).all()


def test_stats_have_the_official_keys():
    replay = Replay(size=100, chunksize=8, length=5, workers=2)
    for i in range(10):
        replay.add(step(i), worker=0)
    replay.add(step(0), worker=1)
    replay.sample(4)
    replay.sample(2, 3, mode="report")
    stats = replay.stats()
    assert stats["items"] == 6 and stats["streams"] == 2 and stats["chunks"] == 3
    assert stats["inserts"] == 11 and stats["samples"] == 4 and stats["updates"] == 0
    assert stats["replay_ratio"] == 5 * 4 / 11
    nbytes = sum(a.nbytes for a in replay.chunks[0][0].values())
    assert stats["ram_gb"] == 3 * nbytes / 1024**3
    assert stats["size"] == 11
    again = replay.stats()  # interval counts restart, totals do not
    assert again["inserts"] == 0 and again["size"] == 11 and np.isnan(again["replay_ratio"])
