"""analysis/runconfig.py: config.yaml read bounded; a hostile one is refused, never expanded."""

import time

import pytest

from analysis import runconfig

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi")
)  # 9**9 leaves if walked


@pytest.mark.parametrize(
    "text, message",
    [
        (BOMB, "config.yaml:1: YAML anchors and aliases are not accepted"),
        ("a: &a [*a]\n", "YAML anchors and aliases are not accepted"),
        ("a: " + "[" * 200 + "]" * 200 + "\n", "nested deeper than 32"),
        ("seed: 1\n" + "#" * (runconfig.MAX_CONFIG_BYTES + 1), "larger than the 1,048,576 a config can be"),
        ("a: [\n", "not valid YAML"),
        ("- 1\n- 2\n", "a YAML list, expected a mapping"),
    ],
)
def test_hostile_configs_are_refused_quickly(tmp_path, text, message):
    (tmp_path / "config.yaml").write_text(text)
    start = time.perf_counter()
    with pytest.raises(runconfig.ConfigError, match=message):
        runconfig.read_flat(tmp_path / "config.yaml")
    assert time.perf_counter() - start < 5


def test_a_trainer_config_flattens(tmp_path):
    (tmp_path / "config.yaml").write_text("seed: 3\ntask: atari100k_pong\nrun:\n  steps: 5\n  envs: [1, 2]\n")
    assert runconfig.read_flat(tmp_path / "config.yaml") == {
        "seed": 3,
        "task": "atari100k_pong",
        "run.steps": 5,
        "run.envs": [1, 2],
    }


@pytest.mark.parametrize(
    "line, seed, noted",
    [
        ("seed: 3", 3, False),
        ("seed: '7'", 7, False),
        ("seed: 4  # why", 4, False),
        ("seed: 1e30", None, True),
        ("seed: 99999999999999999999", None, True),
        ("seed: abc", None, True),
        ("seed: ٣", None, True),
        ("seed:", None, False),
    ],
)
def test_seed_from_the_line_scan(tmp_path, line, seed, noted):
    (tmp_path / "config.yaml").write_text(f"task: atari100k_pong\n{line}\n")
    fields, notes = runconfig.top_fields(tmp_path)
    assert runconfig.seed_of(fields) == seed and fields["task"] == "atari100k_pong"
    assert bool(notes) == noted and all(n.startswith("config.yaml: seed") for n in notes)


def test_line_scan_has_no_backtracking(tmp_path):
    """A regular expression `key:(.*?)[ \\t]*(#.*)?$` took quadratic time on a long line of spaces."""
    (tmp_path / "config.yaml").write_text("task:" + " " * 1_000_000 + "x\n")
    start = time.perf_counter()
    fields, _ = runconfig.top_fields(tmp_path)
    assert fields == {"task": "x"} and time.perf_counter() - start < 1
