"""dreamer-sweep without running the trainer: the sweep file's checks (one line naming the
file and line, exit 2), its expansion into run dirs and commands, the population grouping,
packing. The runs themselves: test_sweep_runs.py."""

import pathlib
import shlex
import tarfile

import pytest
from typer.testing import CliRunner

from dreamerv3 import configs as configlib
from dreamerv3 import population
from sweep import execute, launch, pack, plan, spec
from sweep.cli import app

ROOT = pathlib.Path(__file__).parent.parent
SHIFT = ROOT / "studies" / "shift_cartpole" / "sweep.yaml"
# The shift study's pilot: its sweep file with the pilot's seeds, one process a run.
PILOT_SETS = ["seeds='0-4'", "population=false", "population_seeds=0"]
PILOT = [arg for item in PILOT_SETS for arg in ("--set", item)]
runner = CliRunner()

GOOD = """\
tasks: [gym_CartPole-v1]
configs: [cartpole, debug]
flags:
  run.envs: 1
arms:
  baseline: {agent.imag_adapt.enabled: false}
  adapt: {agent.imag_adapt.enabled: true}
seeds: [0, 1]
budget: {steps: 40}
"""


def write(tmp_path, text, name="sweep.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def flat(config):
    out = {}

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                out[prefix + key] = value

    walk(dict(config), "")
    return out


def dry_run(path, *options):
    """The trainer flags of each process the sweep would start (finished runs: their names)."""
    result = runner.invoke(app, ["run", str(path), "--dry-run", *options])
    assert result.exit_code == 0, result.output
    return [
        shlex.split(line)[3:] if not line.startswith("finished") else line.split()[1:]
        for line in result.output.splitlines()
    ]


def test_shift_sweep_gives_four_arms_that_differ_only_in_the_method(tmp_path):
    commands = dry_run(SHIFT, *PILOT, "--root", str(tmp_path), "--set", "seeds=0-1")
    assert len(commands) == 8
    configs = {}
    for argv in commands:
        config = configlib.parse(argv)
        arm = pathlib.Path(config.logdir).parent.name.removeprefix("shift_cartpole_")
        assert pathlib.Path(config.logdir).name == f"seed{config.seed}"
        configs[(arm, config.seed)] = flat(config)
    assert set(configs) == {(a, s) for a in ("baseline", "adapt", "placebo", "fixed") for s in (0, 1)}
    base = configs[("baseline", 0)]
    assert base["task"] == "gym_CartPole-v1" and base["agent.rssm.deter"] == 512  # size1m
    assert base["run.steps"] == 13000 and base["env.gym.shift.step"] == 9500
    assert base["env.gym.shift.gravity"] == 4.0 and base["env.gym.shift.length"] == 0.25
    assert base["agent.imag_adapt.enabled"] is False and base["agent.imag_adapt.warmup"] == 300
    expected = {
        "adapt": {"agent.imag_adapt.enabled": True},
        "placebo": {
            "agent.imag_adapt.enabled": True,
            "agent.imag_adapt.mode": "placebo",
            "agent.imag_adapt.placebo_rate": 0.11,
            "agent.imag_adapt.placebo_severity": 0.2,
        },
        "fixed": {"agent.imag_length": 14},
    }
    for arm, want in expected.items():
        differs = {k: v for k, v in configs[(arm, 0)].items() if base[k] != v and k not in ("logdir", "method")}
        assert differs == want, (arm, differs)
    differs = {k for k, v in configs[("adapt", 1)].items() if configs[("adapt", 0)][k] != v}
    assert differs == {"seed", "logdir"}


def test_overrides_reach_every_run(tmp_path):
    commands = dry_run(
        SHIFT,
        *PILOT,
        "--root",
        str(tmp_path),
        "--set",
        "seeds=[3]",
        "--set",
        "flags.jax.platform=cuda",
        "--set",
        "budget.duration=470",
        "--set",
        "arms.placebo.agent.imag_adapt.placebo_rate=0.2",
        "--arms",
        "placebo,fixed",
    )
    assert len(commands) == 2
    for argv in commands:
        config = configlib.parse(argv)
        assert config.jax.platform == "cuda" and config.run.duration == 470 and config.seed == 3
    assert configlib.parse(commands[0]).agent.imag_adapt.placebo_rate == 0.2


def test_members_that_differ_only_in_varying_values_form_one_group(tmp_path):
    runs = plan.runs(spec.load(SHIFT, PILOT_SETS), str(tmp_path))
    groups = plan.groups(runs)
    arms = [sorted({r.arm for r in group}) for group in groups]
    assert arms == [["adapt", "baseline", "placebo"], ["fixed"]]  # imag_length fixes shapes
    assert [len(g) for g in groups] == [15, 5]


def test_population_processes_make_the_same_members_as_the_solo_runs(tmp_path):
    """Each population command's members (the trainer's own expansion) have exactly the
    configs of the solo runs they replace."""
    root = str(tmp_path / "runs")
    solo = {}
    for argv in dry_run(SHIFT, *PILOT, "--root", root, "--set", "seeds=0-1"):
        config = configlib.parse(argv)
        solo[config.logdir] = flat(config)
    commands = dry_run(SHIFT, *PILOT, "--root", root, "--set", "seeds=0-1", "--population")
    assert len(commands) == 2
    members = {}
    for argv in commands:
        assert "--population.seeds" in argv and argv[argv.index("--population.seeds") + 1] == "0,1"
        for member in population.member_configs(configlib.parse(argv)):
            members[member.logdir] = flat(member)
    assert set(members) == set(solo)
    for logdir, config in members.items():
        differs = {k for k, v in config.items() if solo[logdir].get(k) != v}
        assert differs <= {"population.seeds", "population.arms"}, (logdir, differs)
    # Half of the seeds finished: the rest is one population per group again, seed 1 only.
    for run in plan.runs(spec.load(SHIFT, [*PILOT_SETS, "seeds=0-1"]), root):
        if run.seed == 0:
            execute.mark_finished(run, "abc", 1.0)
    again = dry_run(SHIFT, *PILOT, "--root", root, "--set", "seeds=0-1", "--population")
    assert len([a for a in again if a[0] != "--logdir"]) == 4  # the finished runs' lines
    rest = [a for a in again if a[0] == "--logdir"]
    assert len(rest) == 2 and all(a[a.index("--population.seeds") + 1] == "1" for a in rest)


def test_population_seeds_splits_each_group_into_processes_of_that_many_seeds(tmp_path):
    """population_seeds: 2 with seeds 0-4: three processes per group (seeds 0,1 / 2,3 / 4),
    every run made exactly once; a negative or fractional value is refused with its line."""
    root = str(tmp_path / "runs")
    commands = dry_run(
        SHIFT, *PILOT, "--root", root, "--set", "seeds=0-4", "--set", "population_seeds=2", "--population"
    )
    seeds = sorted(a[a.index("--population.seeds") + 1] for a in commands)
    assert seeds == sorted(["0,1", "2,3", "4"] * 2)  # (baseline, adapt, placebo) and fixed
    members = [m.logdir for argv in commands for m in population.member_configs(configlib.parse(argv))]
    assert len(members) == len(set(members)) == 20
    for bad in ("-1", "1.5"):
        result = runner.invoke(app, ["run", str(SHIFT), "--dry-run", "--set", f"population_seeds={bad}"])
        assert result.exit_code == 2 and "population_seeds" in result.output and "whole number" in result.output


def test_finished_means_a_marker_with_the_same_flags(tmp_path):
    prepared = launch.prepare(write(tmp_path, GOOD), root=str(tmp_path / "runs"))
    run = prepared.runs[0]
    assert len(prepared.todo) == 4 and not plan.is_finished(run)
    from sweep import execute

    execute.mark_finished(run, "abc1234", 1.0)
    assert plan.is_finished(run)
    again = launch.prepare(write(tmp_path, GOOD), root=str(tmp_path / "runs"))
    assert [r.name for r in again.todo] == [r.name for r in prepared.runs[1:]]
    more = launch.prepare(write(tmp_path, GOOD), ["budget.steps=80"], root=str(tmp_path / "runs"))
    assert len(more.todo) == 4  # another budget: not finished, the trainer resumes it


@pytest.mark.parametrize(
    "text, options, expected",
    [
        ("tasks: [a\n", [], "sweep.yaml, line 2"),
        (GOOD + "sedes: [0]\n", [], "sweep.yaml, line 10: unknown key 'sedes'"),
        (GOOD.replace("seeds: [0, 1]", "seeds: [0, -1]"), [], "sweep.yaml, line 8: expected seeds"),
        (GOOD.replace("seeds: [0, 1]", "seeds: [1, 1]"), [], "line 8: a seed is listed twice"),
        (
            GOOD.replace("{agent.imag_adapt.enabled: true}", "{agent.imag_adapt.enabld: true}"),
            [],
            "sweep.yaml, line 7: task gym_CartPole-v1, arm adapt:",
        ),
        (
            GOOD.replace("{agent.imag_adapt.enabled: true}", "{agent.imag_adapt.enabled: maybe}"),
            [],
            "line 7: task gym_CartPole-v1, arm adapt: Expected bool",
        ),
        (GOOD.replace("run.envs: 1", "logdir: /elsewhere"), [], "line 4: logdir cannot be set here"),
        (GOOD.replace("run.envs: 1", "run.envs: {a: 1}"), [], "line 4: flag run.envs: expected"),
        (GOOD.replace("baseline:", "../x:"), [], "line 6: arm name '../x'"),
        (GOOD.replace("tasks: [gym_CartPole-v1]", "tasks: {'a/b': gym_CartPole-v1}"), [], "line 1: task label 'a/b'"),
        (GOOD.replace("[cartpole, debug]", "[cartpole, tiny]"), [], "unknown preset 'tiny'"),
        (GOOD.replace("{steps: 40}", "{steps: 4.5}"), [], "line 9: expected a whole number"),
        (GOOD + "backend: {slurm: {gpus: 1}}\n", [], "line 10: unknown key 'gpus' in backend.slurm"),
        (GOOD + "env: {XLA_FLAGS: [1]}\n", [], "line 10: XLA_FLAGS: expected a text"),
        (GOOD, ["--set", "budget.steps"], "--set budget.steps: expected KEY=VALUE"),
        (GOOD, ["--set", "budget.steps=-3"], "--set budget.steps: expected a whole number >= 0"),
        (GOOD, ["--set", "bogus=1"], "--set bogus=1: unknown key 'bogus'"),
        (GOOD, ["--arms", "oracle"], "--arms: no arm 'oracle'"),
        (GOOD, ["--backend", "pbs"], "--backend pbs: expected local or slurm"),
        ("[1, 2]\n", [], "expected a YAML mapping"),
        ("tasks: [a]\narms: {x: {}}\n", [], "no seeds: given"),
    ],
)
def test_bad_sweep_files_exit_2_with_one_line(tmp_path, text, options, expected):
    path = write(tmp_path, text)
    result = runner.invoke(app, ["run", str(path), "--dry-run", *options])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines


def test_missing_file_and_bad_commit_exit_2(tmp_path):
    result = runner.invoke(app, ["run", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2 and "none.yaml: cannot read it" in result.output
    result = runner.invoke(
        app, ["run", str(write(tmp_path, GOOD)), "--root", str(tmp_path / "r"), "--commit", "no-such-commit"]
    )
    assert result.exit_code == 2 and "--commit no-such-commit: not a commit" in result.output
    assert not (tmp_path / "r").exists()
    (tmp_path / "file").write_text("")
    result = runner.invoke(app, ["run", str(write(tmp_path, GOOD)), "--root", str(tmp_path / "file")])
    assert result.exit_code == 2 and "cannot write there" in result.output, result.output


def test_commit_pinning_exports_the_trainer_code_of_that_commit(tmp_path):
    prepared = launch.prepare(write(tmp_path, GOOD), root=str(tmp_path / "runs"), commit="HEAD")
    job = prepared.jobs[0]
    exported = pathlib.Path(job.code)
    assert exported.parent == (tmp_path / "runs" / ".sweep" / "code").resolve()
    assert exported.name == job.commit and (exported / "dreamerv3" / "main.py").is_file()
    assert not (exported / "tests").exists()


def test_pack_leaves_checkpoints_and_replay_behind(tmp_path):
    prepared = launch.prepare(write(tmp_path, GOOD), root=str(tmp_path / "artifacts"))
    run = prepared.runs[0]
    for sub in ("ckpt", "replay", "scope"):
        (pathlib.Path(run.logdir) / sub).mkdir(parents=True)
        (pathlib.Path(run.logdir) / sub / "x").write_text("x")
    (pathlib.Path(run.logdir) / "metrics.jsonl").write_text("{}\n")
    pathlib.Path(run.log).parent.mkdir(parents=True)
    pathlib.Path(run.log).write_text("commit abc: python dreamerv3/main.py\n")
    out = tmp_path / "runs.tgz"
    assert pack.pack(prepared.runs, prepared.root, str(out)) == 1
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    assert "artifacts/gym_CartPole-v1_baseline/seed0/metrics.jsonl" in names
    assert "artifacts/gym_CartPole-v1_baseline/seed0/scope/x" in names
    assert "artifacts/logs/gym_CartPole-v1_baseline_seed0.log" in names
    assert not [n for n in names if "/ckpt" in n or "/replay" in n]
    # A population process writes one log for its members: it goes in; another task's does not.
    logs = pathlib.Path(prepared.root) / "logs"
    (logs / "gym_CartPole-v1_population_0123456789.log").write_text("commit abc: python ...\n")
    (logs / "other_population_0123456789.log").write_text("x\n")
    pack.pack(prepared.runs, prepared.root, str(out))
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
    assert "artifacts/logs/gym_CartPole-v1_population_0123456789.log" in names
    assert "artifacts/logs/other_population_0123456789.log" not in names


def _logged_runs(tmp_path):
    """The GOOD sweep's four run dirs holding factory logs and scope/: baseline's seed 1 and
    adapt's seed 0 score ten times higher than the other seed of their arm."""
    from runfactory import write_run

    prepared = launch.prepare(write(tmp_path, GOOD), root=str(tmp_path / "artifacts"))
    for run in prepared.runs:
        high = (run.arm, run.seed) in (("baseline", 1), ("adapt", 0))
        made = write_run(
            tmp_path / "factory",
            run.task,
            run.arm,
            run.seed,
            frames=20_000,
            episodes=20,
            log_lines=10,
            score_level=1000.0 if high else 100.0,
            scope=True,
        )
        pathlib.Path(run.logdir).parent.mkdir(parents=True, exist_ok=True)
        made.rename(run.logdir)
    return prepared


def test_pack_gzips_logs_and_keeps_scope_of_the_best_seeds(tmp_path):
    from analysis import ingest

    prepared = _logged_runs(tmp_path)
    out = tmp_path / "small.tgz"
    result = runner.invoke(
        app,
        [
            "pack",
            str(write(tmp_path, GOOD)),
            "--root",
            prepared.root,
            "--out",
            str(out),
            "--gzip-logs",
            "--scope",
            "best",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "scope/ of gym_CartPole-v1_baseline: gym_CartPole-v1_baseline/seed1" in result.output
    assert "scope/ of gym_CartPole-v1_adapt: gym_CartPole-v1_adapt/seed0" in result.output
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        tar.extractall(tmp_path / "unpacked", filter="data")
    base = "artifacts/gym_CartPole-v1_"
    assert f"{base}baseline/seed0/metrics.jsonl.gz" in names and f"{base}adapt/seed1/scores.jsonl.gz" in names
    assert not [n for n in names if n.endswith(".jsonl")]
    assert {n.split("/scope")[0] for n in names if "/scope" in n} == {f"{base}baseline/seed1", f"{base}adapt/seed0"}
    for arm in ("baseline", "adapt"):  # the unpacked runs read as the originals (scope/ aside)
        near = ingest.ingest(ingest.discover([f"{prepared.root}/gym_CartPole-v1_{arm}"]), cache=False)
        far = ingest.ingest(ingest.discover([str(tmp_path / "unpacked" / f"{base}{arm}")]), cache=False)
        assert far.scores.equals(near.scores)


def test_pack_scope_none_and_bad_input(tmp_path):
    prepared = _logged_runs(tmp_path)
    out = tmp_path / "none.tgz"
    args = ["pack", str(write(tmp_path, GOOD)), "--root", prepared.root, "--out", str(out)]
    assert runner.invoke(app, args + ["--scope", "none"]).exit_code == 0
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert (
        names
        and not [n for n in names if "/scope" in n]
        and "artifacts/gym_CartPole-v1_adapt/seed0/metrics.jsonl" in names
    )
    result = runner.invoke(app, args + ["--scope", "some"])
    assert result.exit_code == 2 and "--scope some: expected one of all, best, none" in result.output
    logdir = pathlib.Path(prepared.runs[0].logdir)
    (logdir / "metrics.jsonl.gz").write_bytes(b"")
    for extra in (["--gzip-logs"], ["--scope", "best"]):
        result = runner.invoke(app, args + extra)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1, result.output
        assert "holds both metrics.jsonl and metrics.jsonl.gz" in lines[0]
