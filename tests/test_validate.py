"""Hostile input to every parser of the trainer and the sweep: a value or one clear line, never
a traceback, a hang or a memory runaway; the same checks whether a value comes from a flag,
an arms file, a sweep file or --set. Property tests (hypothesis) throw arbitrary text and
YAML-like documents at each parser within a time bound."""

import os
import subprocess
import sys
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dreamerv3 import configs as configlib
from dreamerv3 import population, validate
from dreamerv3.errors import BadInput
from sweep import spec
from sweep.cli import app
from sweep.spec import SweepError

runner = CliRunner()
# A few seconds per property; DREAMER_HYPOTHESIS_EXAMPLES=2000 searches longer.
QUICK = settings(
    max_examples=int(os.environ.get("DREAMER_HYPOTHESIS_EXAMPLES", "60")),
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

SWEEP = """\
tasks: [dummy_disc]
configs: [debug]
arms:
  baseline: {agent.imag_adapt.enabled: false}
seeds: [0]
"""
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")
)


def one_line(error):
    message = str(error)
    assert "\n" not in message and len(message) < 400, message
    return message


def members(tmp_path, arms, *extra):
    path = tmp_path / "arms.yaml"
    path.write_text(arms)
    argv = [
        "--configs",
        "debug",
        "--logdir",
        str(tmp_path / "{arm}" / "seed{seed}"),
        "--population.arms",
        str(path),
        *extra,
    ]
    return population.member_configs(configlib.parse(argv))


# One layer: the same value refused from a flag and from an arms file.


def test_configs_parse_imports_no_jax():
    code = (
        "import sys; from dreamerv3 import configs; "
        "configs.parse(['--configs', 'debug', '--logdir', 'x', '--agent.imag_adapt.mode', 'placebo']); "
        "assert 'jax' not in sys.modules, 'jax'; "
        "from dreamerv3 import agent, settings; assert agent.COMPUTE_DTYPES == settings.COMPUTE_DTYPES"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-800:]


@pytest.mark.parametrize(
    "key, value",
    [
        ("agent.opt.lr", ".nan"),
        ("agent.opt.lr", "'nan'"),
        ("agent.opt.lr", "-1"),
        ("agent.imag_adapt.min_decay", "2"),
        ("agent.imag_adapt.warmup", "123456789012345678901234567890"),
    ],
)
def test_a_member_is_checked_as_a_solo_config_is(tmp_path, key, value):
    flag = value.strip("'").replace(".nan", "nan")
    with pytest.raises(BadInput) as solo:
        configlib.parse(["--configs", "debug", "--logdir", "x", f"--{key}", flag])
    with pytest.raises(BadInput) as member:
        members(tmp_path, f"a: {{{key}: {value}}}\n")
    assert key in one_line(solo.value) and key in one_line(member.value)


@pytest.mark.parametrize("key", ["t.*k", "(task)", "task|seed", "agent.opt.lr$", "--.*lr", "a b"])
def test_arm_keys_are_literal_never_patterns(tmp_path, key):
    with pytest.raises(BadInput) as error:
        members(tmp_path, f"a: {{'{key}': gym_os.path:Env}}\n")
    assert "dotted flag name" in one_line(error.value)


def test_an_arm_key_that_is_no_setting_is_refused(tmp_path):
    with pytest.raises(BadInput, match="not a setting"):
        members(tmp_path, "a: {agent.opt.lrr: 1}\n")


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--(a+)+b", "1"], "none on a group"),
        (["--(.*)*x", "1"], "none on a group"),
        (["--[", "1"], "not a valid pattern"),
        (["--task", "gym_os:Env"], "--task"),
        (["--task", "dummy_disc\n"], "--task"),
        (["--seed", "9" * 40], "--seed"),
        (["--seed", str(2**32)], "0 .. 4294967295"),
        (["--logdir", "runs/{seed}"], "'{seed}' is filled in only for a population"),
        (["--logdir", "runs/{arm}", "--population.seeds", " "], "'{arm}' is filled in only"),
    ],
)
def test_trainer_flags_are_one_line(argv, expected):
    argv = ["--configs", "debug", "--logdir", "x", *argv]
    started = time.time()
    with pytest.raises(BadInput) as error:
        configlib.parse(argv)
    assert expected in one_line(error.value) and time.time() - started < 2


def test_a_huge_seed_range_is_counted_not_expanded():
    started = time.time()
    with pytest.raises(BadInput, match="expected 1 to 4096"):
        population.parse_seeds("0-30000000")
    with pytest.raises(BadInput, match="goes past"):
        population.parse_seeds("0-9999999999")
    assert time.time() - started < 0.5


def test_too_many_members_are_refused_before_any_is_built(tmp_path, monkeypatch):
    monkeypatch.setattr(population, "MAX_MEMBERS", 6)
    with pytest.raises(BadInput, match="2 arms x 4 seeds = 8 members"):
        members(tmp_path, "a: {}\nb: {}\n", "--population.seeds", "0-3")


@pytest.mark.parametrize(
    "arms, expected",
    [
        ('"a\\n": {}\n', "arm name"),  # a trailing newline is not a name
        ("a: {agent.opt.lr: [[1]]}\n", "expected a number"),
        ("a: !!binary aGk=\n", "YAML tag"),
        ("a: &x [*x]\n", "inside the node it names"),
        (BOMB, "aliases"),
        ("a: " + "[" * 40 + "]" * 40 + "\n", "nested deeper"),
        ('a: {task: "dummy_disc\\nx"}\n', "control characters"),
    ],
)
def test_bad_arms_files_are_one_line_and_cheap(tmp_path, arms, expected):
    tracemalloc.start()
    try:
        with pytest.raises(BadInput) as error:
            members(tmp_path, arms)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert expected in one_line(error.value) and peak < 20e6, (str(error.value), peak)


# The sweep file and --set go through the same checks.


def sweep_error(tmp_path, text, *sets):
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    with pytest.raises(SweepError) as error:
        spec.load(path, [s for s in sets])
    return one_line(error.value)


@pytest.mark.parametrize(
    "text, sets, expected",
    [
        (SWEEP.replace("[dummy_disc]", '["dummy_disc\\n"]'), [], "task"),
        (SWEEP.replace("baseline:", '"base\\n":'), [], "arm name"),
        (SWEEP.replace("seeds: [0]", "seeds: '0-9999999999'"), [], "goes past"),
        (SWEEP.replace("seeds: [0]", "seeds: '0-300000'"), [], "300001 seeds"),
        (SWEEP + "budget: {steps: " + "9" * 400 + "}\n", [], "expected a whole number"),
        (SWEEP + "backend: {slurm: {mem_gb: 1e300}}\n", [], "<= 100000"),
        (SWEEP + 'backend: {slurm: {partition: "gpu\\n#SBATCH --x"}}\n', [], "control characters"),
        (SWEEP + "backend: {slurm: {partition: 'gpu;rm'}}\n", [], "partition"),
        (SWEEP + "root: runs/{timestamp}\n", [], "without '{' or '}'"),
        (SWEEP + 'env: {A: "x\\ny"}\n', [], "control characters"),
        (SWEEP + BOMB.replace("a:", "z:", 1), [], "aliases"),
        (SWEEP + "flags: !!omap [a: 1]\n", [], "YAML tag"),
        (SWEEP, ["flags.agent.*=1"], "dotted flag name"),
        (SWEEP, ["arms.base\n.agent.opt.lr=1"], "expected letters"),
        (SWEEP, ["seeds=&a [*a]"], "inside the node"),
        (SWEEP, ["budget.steps=" + "9" * 400], "expected a whole number"),
        (SWEEP, ["budget.steps=" + "9" * 5000], "--set budget.steps"),
    ],
)
def test_bad_sweeps_are_one_line(tmp_path, text, sets, expected):
    started = time.time()
    assert expected in sweep_error(tmp_path, text, *sets)
    assert time.time() - started < 2


def test_the_same_arm_value_is_refused_in_a_sweep_and_an_arms_file(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP.replace("enabled: false", "enabled: false, agent.opt.lr: .nan"))
    result = runner.invoke(app, ["run", str(path), "--dry-run", "--root", str(tmp_path / "r")])
    assert result.exit_code == 2 and "agent.opt.lr" in result.output, result.output
    with pytest.raises(BadInput, match="--agent.opt.lr"):
        members(tmp_path, "a: {agent.opt.lr: .nan}\n")


# Properties: any text gives a value or one line, fast.

YAMLISH = st.lists(
    st.sampled_from(
        [
            "a",
            "b",
            ": ",
            "- ",
            "[",
            "]",
            "{",
            "}",
            ",",
            "\n",
            "  ",
            "&x ",
            "*x",
            "&y ",
            "*y",
            "!!str ",
            "!!python/object:os.system ",
            "'",
            '"',
            "0",
            "-1",
            "1e400",
            ".nan",
            "99999999999999999999999",
            "tasks",
            "arms",
            "seeds",
            "flags",
            "agent.opt.lr",
            "0-4",
            "|\n",
            "? ",
            "%TAG ! x\n",
            "---\n",
            "\t",
            "\x00",
            "#",
            "é",
        ]
    ),
    max_size=40,
).map("".join)


@QUICK
@given(st.one_of(st.text(max_size=60), YAMLISH))
def test_any_seed_text_is_a_list_or_one_line(text):
    try:
        seeds = validate.seeds(text, "seeds", 4096)
    except validate.Invalid as e:
        one_line(e)
    else:
        assert 1 <= len(seeds) <= 4096 and len(set(seeds)) == len(seeds)


@QUICK
@given(st.one_of(st.text(max_size=200), YAMLISH))
def test_any_document_loads_or_is_one_line(text):
    for kind in ("safe", "rt"):
        try:
            validate.load_yaml(text, "doc", kind=kind)
        except validate.Invalid as e:
            one_line(e)


@QUICK
@given(st.one_of(st.text(max_size=120), YAMLISH))
def test_any_arms_file_gives_members_or_one_line(tmp_path, text):
    try:
        members(tmp_path, text)
    except BadInput as e:
        one_line(e)


@QUICK
@given(st.one_of(st.text(max_size=120), YAMLISH), st.lists(st.one_of(st.text(max_size=30), YAMLISH), max_size=2))
def test_any_sweep_file_and_set_give_a_sweep_or_one_line(tmp_path, text, sets):
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP + text, encoding="utf-8", errors="replace")
    try:
        spec.load(path, sets)
    except SweepError as e:
        one_line(e)


FLAGS = st.sampled_from(
    [
        "--seed",
        "--agent.opt.lr",
        "--task",
        "--run.steps",
        "--logdir",
        "--population.seeds",
        "--.*lr",
        "--(",
        "--agent.imag_adapt.mode",
        "--batch_size",
    ]
)


@QUICK
@given(st.lists(st.one_of(FLAGS, st.text(max_size=20), YAMLISH), max_size=6))
def test_any_trainer_command_line_gives_a_config_or_one_line(argv):
    try:
        configlib.parse(["--configs", "debug", "--logdir", "x", *argv])
    except BadInput as e:
        one_line(e)
    except SystemExit:  # --help prints the keys and exits, as elements does
        pass


@pytest.mark.parametrize("text", ["0:1e30", "0:1e400", "1e20:1e21"])
def test_an_absurd_frames_window_is_one_line(text):
    from analysis import stats

    with pytest.raises(ValueError, match="START < END <="):
        stats.parse_frames(text)


@QUICK
@given(st.one_of(st.text(max_size=30), st.from_regex(r"\A-?[0-9.e+k_,]{0,12}:-?[0-9.e+k_,]{0,12}\Z")))
def test_any_frames_text_is_a_window_or_one_line(text):
    from analysis import stats

    try:
        start, end = stats.parse_frames(text)
    except ValueError as e:
        one_line(e)
    else:
        assert 0 <= start < end <= stats.MAX_FRAMES


def test_resume_drops_damaged_log_lines_instead_of_failing(tmp_path):
    from dreamerv3 import logs

    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n[1, 2]\n5\n{"step": "x"}\n{"step": 3}\n{"step": 9}\n')
    logs.trim(tmp_path, 5)
    assert (tmp_path / "metrics.jsonl").read_text() == '{"step": 1}\n{"step": 3}\n'


def test_scope_files_with_negative_steps_nan_values_or_a_huge_size_are_named(tmp_path, monkeypatch):
    import numpy as np

    from analysis import defaults, ingest

    scope = tmp_path / "run" / "scope"
    scope.mkdir(parents=True)
    rows = np.array([(-5, 1.0), (1, float("nan")), (2, 3.0)], dtype=[("step", ">i8"), ("value", ">f8")])
    (scope / "episode-score.float").write_bytes(rows.tobytes())
    with open(scope / "huge.float", "wb") as f:
        f.truncate(1 << 20)  # sparse: claims a size, holds nothing
    monkeypatch.setattr(defaults, "MAX_UNZIPPED_LOG_BYTES", 1 << 16)
    problems = []
    frame = ingest.read_scope_scalars(scope, problems)
    said = " | ".join(p["problem"] for p in problems)
    assert "1 records with a negative step skipped" in said and "1 NaN/inf values" in said, said
    assert "more than the 65,536" in said, said
    assert sorted(frame["step"].to_list()) == [1, 2]
