"""Replay ring buffer: capacity, sampling uniformity and order, save/load."""

import numpy as np
import pytest

from dreamerv3.replay import Replay


def step(i, worker=0):
    return {"x": np.int64(i), "w": np.int8(worker), "is_first": i % 7 == 0,
            "image": np.full((2, 2, 3), i % 256, np.uint8)}


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
