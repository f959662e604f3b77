"""dreamerv3/checkpoint.py's loader admits plain data only: a checkpoint cannot run code."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from dreamerv3 import checkpoint


class _Touch:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_plain_data_round_trips_exactly(tmp_path):
    data = {
        "w": np.arange(6, dtype=np.float32).reshape(2, 3),
        "h": np.zeros(3, np.float16),
        "i": np.int64(7),
        "f": np.float32(2.5),
        "nested": [1, (2.0, "x"), {"k": None}],
        "s": {1, 2},
        "b": b"\x00\x01",
        "rng": {"bit_generator": "PCG64", "state": {"state": 2**100, "inc": 3}},
    }
    (tmp_path / "a.pkl").write_bytes(pickle.dumps(data))
    back = checkpoint.load_pickle(tmp_path / "a.pkl")
    assert back.keys() == data.keys()
    for key in ("w", "h"):
        assert back[key].dtype == data[key].dtype and np.array_equal(back[key], data[key])
    assert back["i"] == 7 and back["f"] == np.float32(2.5) and back["nested"] == data["nested"]
    assert back["s"] == {1, 2} and back["b"] == data["b"] and back["rng"] == data["rng"]


@pytest.mark.parametrize(
    "payload, message",
    [
        (lambda t: pickle.dumps({"w": _Touch(t / "ran")}), "refused to load: it references pathlib.Path.touch"),
        (lambda t: pickle.dumps(os.system), "refused to load: it references posix.system"),
        (lambda t: os.urandom(2048), "not a checkpoint this trainer wrote"),
        (lambda t: b"", "not a checkpoint this trainer wrote (Ran out of input)"),
        (lambda t: pickle.dumps({"a": np.ones(4)})[:-7], "not a checkpoint this trainer wrote"),
        (lambda t: pickle.dumps(np.array([1, "x"], object)[1:2].astype(object)), None),
    ],
)
def test_anything_else_is_one_error_naming_the_file(tmp_path, payload, message):
    path = tmp_path / "agent.pkl"
    path.write_bytes(payload(tmp_path))
    if message is None:  # object arrays of plain values are plain data
        assert checkpoint.load_pickle(path).tolist() == ["x"]
        return
    with pytest.raises(checkpoint.CheckpointError) as info:
        checkpoint.load_pickle(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)
    assert "\n" not in str(info.value) and not (tmp_path / "ran").exists()


class _HugeArray:
    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return (_reconstruct, (np.ndarray, (2**40,), b"b"))


def test_array_header_cannot_ask_for_a_huge_allocation(tmp_path):
    """numpy's _reconstruct makes an empty array that the file's own bytes then fill; a tiny
    file asking it for a terabyte is refused."""
    (tmp_path / "a.pkl").write_bytes(pickle.dumps(_HugeArray()))
    with pytest.raises(checkpoint.CheckpointError, match="unexpected array header"):
        checkpoint.load_pickle(tmp_path / "a.pkl")
