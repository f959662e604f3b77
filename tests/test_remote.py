"""Runs in object storage against real local servers: moto (S3) and gcp-storage-emulator (GCS).

The servers are started once per test run (tests/object_servers.py). dreamer-report must give
the same output on s3:// and gs:// as on local copies (gzipped logs too), follow a remote log by
range reads, fail in one line with exit 2, and the trainer must write its logdir to s3:// and
resume from it. Azure has no server on PyPI (Azurite is an npm package), so az:// is tested for
its errors only.

Failures tested against real servers: a wrong secret key (moto checks signatures once its
authentication is switched on through its /moto-api/reset-auth endpoint, for an access key of
an IAM user made in it), a missing bucket, a closed port (connection refused) and a port that
accepts but never answers (each call's deadline ends it). Not tested: an endpoint whose packets
are dropped (no reply, not even a refusal), which needs a firewall rule: botocore's 5 s connect
timeout and the same deadline bound it.
"""

import gzip
import json
import os
import shutil
import socket
import threading
import time
import urllib.request

import fsspec
import object_servers
import polars as pl
import pytest
from runfactory import write_run
from typer.testing import CliRunner

from analysis import ingest, remote, watch
from cli import app

runner = CliRunner()
LATE_KEY = "report/late/only"  # first written after polars' 100 schema-inference rows


@pytest.fixture(scope="module")
def servers():
    s3, gcs = object_servers.start_s3(), object_servers.start_gcs()
    saved = dict(os.environ)
    object_servers.set_env({**s3.env, **gcs.env})
    remote._FS.clear()
    yield {"s3": s3, "gs": gcs}
    s3.stop()
    gcs.stop()
    os.environ.clear()
    os.environ.update(saved)
    remote._FS.clear()


def _fs(scheme):
    return fsspec.filesystem(remote.PROTOCOLS[scheme], skip_instance_cache=True)


def _add_late_key(run_dir, at=150):
    """A metrics.jsonl key that first appears on line `at` (train, report and episode keys mix so)."""
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines()
    while len(lines) <= at:
        lines.append(json.dumps({"step": 1000 * len(lines), "train/loss/dyn": 1.0}))
    row = json.loads(lines[at])
    row[LATE_KEY] = 42.5
    lines[at] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def study(tmp_path_factory, servers):
    """Two methods x 3 seeds, locally and uploaded unchanged to s3://runs-bkt and gs://runs-bkt."""
    root = tmp_path_factory.mktemp("local") / "study"
    for method in ("baseline", "adapt"):
        for seed in range(3):
            run = write_run(root, "atari100k_alien", method, seed, episodes=40, log_lines=60, scope=True)
            if (method, seed) == ("adapt", 1):
                _add_late_key(run)
    for scheme in ("s3", "gs"):
        fs = _fs(scheme)
        fs.mkdir("runs-bkt")
        fs.put(str(root) + "/", "runs-bkt/study", recursive=True)
    return root


def _compare(paths, out):
    result = runner.invoke(app, ["compare", *paths, "--no-report", "--reps", "200", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return result.output.replace(str(out), "OUT") if out.name == "b" else result.output


@pytest.fixture(scope="module")
def local_compare(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "a"
    return out, _compare([str(study / "atari100k_alien_baseline"), str(study / "atari100k_alien_adapt")], out)


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_compare_remote_equals_local_copy(study, local_compare, scheme, tmp_path):
    (tmp_path / "a").symlink_to(local_compare[0])
    local = local_compare[1].replace(str(local_compare[0]), "OUT")
    url = f"{scheme}://runs-bkt/study"
    far = _compare([f"{url}/atari100k_alien_baseline", f"{url}/atari100k_alien_adapt"], tmp_path / "b")
    assert far == local
    written = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.suffix in (".csv", ".json")
    )
    assert written
    for rel in written:
        near, far = ((tmp_path / side / rel).read_text() for side in "ab")
        if rel.name == "summary.json":  # runs are named where they are: the local folder, the URL
            near, far = json.loads(near), json.loads(far)
            assert [r.pop("path") for r in far["runs"]][0].startswith(f"{url}/atari100k_alien_baseline/seed0")
            assert [r.pop("path") for r in near["runs"]][0].startswith(str(study))
        assert far == near, rel


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_glob_and_a_key_that_first_appears_late(study, scheme):
    far = ingest.ingest(ingest.discover([f"{scheme}://runs-bkt/study/*_adapt"]), cache=False)
    near = ingest.ingest(ingest.discover([str(study / "*_adapt")]), cache=False)
    assert (
        [r.name for r in far.runs]
        == [r.name for r in near.runs]
        == ["adapt/alien/s0", "adapt/alien/s1", "adapt/alien/s2"]
    )
    for data in (far, near):
        late = data.metrics.filter(pl.col("key") == LATE_KEY)
        assert late["value"].to_list() == [42.5] and late["run"].to_list() == ["adapt/alien/s1"]
    assert far.metrics.sort("run", "step", "key").equals(near.metrics.sort("run", "step", "key"))
    assert far.scores.height == near.scores.height > 0


def test_cache_is_keyed_by_content_outside_the_bucket(study, tmp_path):
    url = "s3://runs-bkt/study/atari100k_alien_baseline"
    before = set(_fs("s3").find("runs-bkt"))
    for _ in range(2):
        result = runner.invoke(app, ["runs", url, "--cache-dir", str(tmp_path / "cache")])
        assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "cache").glob("run-*.parquet"))) == 3
    assert set(_fs("s3").find("runs-bkt")) == before  # nothing written remotely


def test_best_seed_video_from_remote_scope(servers, tmp_path):
    from openloop_factory import compose, known_sequences, write_video

    run = write_run(tmp_path / "v", "atari100k_alien", "adapt", 0, episodes=20, log_lines=20)
    truth, pred = known_sequences(B=2, T=10)
    write_video(run, compose(truth, pred, 4))
    _fs("s3").put(str(tmp_path / "v") + "/", "runs-bkt/video", recursive=True)
    out = tmp_path / "best.mp4"
    result = runner.invoke(app, ["best-seed", "s3://runs-bkt/video", "--video", str(out), "--source", "scope"])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0


def test_watch_follows_appended_bytes_by_range(servers):
    fs = _fs("gs")
    fs.mkdir("watch-bkt")
    lines = [json.dumps({"step": 10 * i, "episode/score": float(i)}) + "\n" for i in range(6)]
    fs.pipe_file("watch-bkt/live/task_m/seed0/scores.jsonl", "".join(lines[:3]).encode())
    watcher = watch.Watcher(["gs://watch-bkt/live"], rediscover=1e9)
    (state,) = watcher.refresh(now=0.0)
    assert state.scores == [0.0, 1.0, 2.0]
    fs.pipe_file("watch-bkt/live/task_m/seed0/scores.jsonl", "".join(lines).encode())  # a writer appended
    (state,) = watcher.refresh(now=1.0)
    assert state.scores == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0] and state.last_step == 50
    assert watcher.bytes_read() == len("".join(lines))  # each byte read once


def _one_line_exit_2(args, env, monkeypatch, seconds=25.0):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if monkeypatch is not None:
        monkeypatch.setattr(remote, "_FS", {})
    start = time.monotonic()
    result = runner.invoke(app, args)
    assert time.monotonic() - start < seconds
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_missing_bucket_and_dead_endpoints_give_one_line(servers, monkeypatch):
    assert "not found" in _one_line_exit_2(["runs", "s3://no-such-bkt/x"], {}, monkeypatch)
    assert "no runs found" in _one_line_exit_2(["compare", "gs://runs-bkt/empty", "gs://runs-bkt/x"], {}, monkeypatch)
    dead = f"http://127.0.0.1:{object_servers.free_port()}"
    monkeypatch.setattr(remote, "DEADLINE", 4.0)
    line = _one_line_exit_2(["runs", "s3://runs-bkt/study"], {"AWS_ENDPOINT_URL": dead}, monkeypatch)
    assert line.startswith("error: s3://runs-bkt/study")
    line = _one_line_exit_2(
        ["watch", "gs://runs-bkt/study", "--iterations", "1"], {"STORAGE_EMULATOR_HOST": dead}, monkeypatch
    )
    assert line.startswith("error: gs://runs-bkt/study")


def test_azure_paths_without_a_server(monkeypatch):
    monkeypatch.setattr(remote, "DEADLINE", 4.0)
    assert remote.is_remote("az://container/runs") and remote.is_remote("abfs://c/x")
    assert not remote.is_remote("runs/az:/x") and not remote.is_remote("file:///tmp")
    for key in [k for k in os.environ if k.startswith("AZURE_")]:
        monkeypatch.delenv(key)
    line = _one_line_exit_2(["runs", "az://container/runs"], {}, monkeypatch)
    assert line.startswith("error: az://")
    dead = object_servers.free_port()
    conn = (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={'a' * 88};"
        f"BlobEndpoint=http://127.0.0.1:{dead}/devstoreaccount1;"
    )
    line = _one_line_exit_2(["runs", "az://container/runs"], {"AZURE_STORAGE_CONNECTION_STRING": conn}, monkeypatch)
    assert line.startswith("error: az://container/runs")


def test_trainer_writes_to_s3_and_resumes_from_it(servers):
    from fakes import FakeAgent

    from dreamerv3 import main

    url = "s3://train-bkt/dummy_fake/seed0"
    _fs("s3").mkdir("train-bkt")

    def train(steps):
        return main.main(
            [
                "--logdir",
                url,
                "--configs",
                "debug",
                "--task",
                "dummy_disc",
                "--run.steps",
                str(steps),
                "--env.dummy.length",
                "40",
                "--run.sync_every",
                "0.5",
            ],
            agent_cls=FakeAgent,
        )

    assert train(120) == 0
    fs = _fs("s3")
    keys = {k.split("seed0/", 1)[1] for k in fs.find("train-bkt/dummy_fake/seed0")}
    assert {"config.yaml", "metrics.jsonl", "scores.jsonl", "ckpt/latest"} <= keys
    first = fs.cat_file("train-bkt/dummy_fake/seed0/ckpt/latest").decode().strip()
    assert f"ckpt/{first}/done" in keys
    assert train(240) == 0  # a fresh process-local folder: everything comes from the bucket
    second = fs.cat_file("train-bkt/dummy_fake/seed0/ckpt/latest").decode().strip()
    assert int(second.rsplit("-", 1)[1]) > int(first.rsplit("-", 1)[1])
    steps = [json.loads(line)["step"] for line in fs.cat_file("train-bkt/dummy_fake/seed0/scores.jsonl").splitlines()]
    assert steps == sorted(steps) and len(steps) == len(set(steps)) and steps[-1] > 120
    ckpts = {k.split("/")[-2] for k in fs.find("train-bkt/dummy_fake/seed0/ckpt") if k.endswith("/done")}
    assert second in ckpts  # the resumed run's checkpoint, complete, named by the remote latest


def test_population_writes_each_member_to_its_own_prefix_and_resumes_from_them(servers, tmp_path):
    from fakes import FakePopulation

    from dreamerv3 import main

    fs = _fs("s3")
    fs.mkdir("pop-bkt")
    arms = tmp_path / "arms.yaml"
    arms.write_text("baseline: {}\nadapt: {agent.imag_adapt.enabled: True}\n")
    members = [f"pop-bkt/sweep/{arm}/seed{seed}" for arm in ("baseline", "adapt") for seed in (0, 1)]

    def train(steps):
        return main.main(
            [
                "--logdir",
                "s3://pop-bkt/sweep/{arm}/seed{seed}",
                "--configs",
                "debug",
                "--task",
                "dummy_disc",
                "--run.steps",
                str(steps),
                "--env.dummy.length",
                "40",
                "--run.sync_every",
                "0.5",
                "--population.seeds",
                "0,1",
                "--population.arms",
                str(arms),
            ],
            agent_cls=FakePopulation,
        )

    assert train(120) == 0
    first = []
    for prefix in members:
        keys = {k.split(prefix + "/", 1)[1] for k in fs.find(prefix)}
        assert {"config.yaml", "metrics.jsonl", "scores.jsonl", "ckpt/latest"} <= keys, prefix
        first.append(fs.cat_file(f"{prefix}/ckpt/latest").decode().strip())
        assert f"ckpt/{first[-1]}/done" in keys
    assert "seed: 1" in fs.cat_file(f"{members[3]}/config.yaml").decode()
    assert train(240) == 0  # fresh local folders: every member resumes from its own prefix
    for prefix, before in zip(members, first):
        latest = fs.cat_file(f"{prefix}/ckpt/latest").decode().strip()
        assert int(latest.rsplit("-", 1)[1]) == 240 > int(before.rsplit("-", 1)[1])
        steps = [json.loads(line)["step"] for line in fs.cat_file(f"{prefix}/scores.jsonl").splitlines()]
        assert steps == sorted(steps) and len(steps) == len(set(steps)) and steps[-1] > 120
        done = {k.split("/")[-2] for k in fs.find(f"{prefix}/ckpt") if k.endswith("/done")}
        assert latest in done and len(done) <= 2  # a population keeps two checkpoints per member


def test_a_failed_final_push_keeps_that_members_local_copy(tmp_path):
    from dreamerv3 import storage

    class _Mirror:
        def __init__(self, name, fails):
            self.local, self.fails = tmp_path / name, fails
            self.local.mkdir()

        def push(self):
            if self.fails:
                raise storage.StorageError(f"s3://b/{self.local.name}: AccessDenied")

    good, bad = _Mirror("good", False), _Mirror("bad", True)
    with pytest.raises(storage.StorageError) as error:
        with storage.syncing([good, bad], 0):
            pass
    assert str(error.value) == f"s3://b/bad: AccessDenied; the local copy is in {bad.local}"
    assert bad.local.is_dir() and not good.local.exists()  # the pushed member's copy is remote


def test_gzipped_runs_in_a_bucket_compare_as_the_local_copy(study, local_compare, tmp_path):
    packed = tmp_path / "packed"
    shutil.copytree(study, packed)
    for path in packed.rglob("*.jsonl"):
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    _fs("s3").put(str(packed) + "/", "runs-bkt/packed", recursive=True)
    (tmp_path / "a").symlink_to(local_compare[0])
    far = _compare(
        ["s3://runs-bkt/packed/atari100k_alien_baseline", "s3://runs-bkt/packed/atari100k_alien_adapt"], tmp_path / "b"
    )
    assert far == local_compare[1].replace(str(local_compare[0]), "OUT")
    _fs("s3").pipe_file("runs-bkt/packed/atari100k_alien_adapt/seed0_20261123T101010/metrics.jsonl", b"{}\n")
    line = _one_line_exit_2(["runs", "s3://runs-bkt/packed/atari100k_alien_adapt"], {}, None)
    assert "seed0_20261123T101010: holds both metrics.jsonl and metrics.jsonl.gz" in line


def _moto_auth(server, value: str) -> None:
    """Switch moto's signature and IAM checks on ("0": from the next request) or off ("inf")."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/moto-api/reset-auth",
        data=value.encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 200


@pytest.fixture
def iam_key(servers):
    """An access key of an IAM user allowed everything on S3, with moto's checks on during the test."""
    import boto3

    iam = boto3.client("iam", endpoint_url=servers["s3"].env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    iam.create_user(UserName="reader")
    iam.put_user_policy(
        UserName="reader",
        PolicyName="s3",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    _moto_auth(servers["s3"], "0")
    yield key["AccessKeyId"], key["SecretAccessKey"]
    _moto_auth(servers["s3"], "inf")
    remote._FS.clear()


def test_wrong_secret_key_is_one_line(study, iam_key, monkeypatch, tmp_path):
    key_id, secret = iam_key
    urls = ["s3://runs-bkt/study/atari100k_alien_baseline", "s3://runs-bkt/study/atari100k_alien_adapt"]
    wrong = {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": "x" * len(secret)}
    line = _one_line_exit_2(["compare", *urls, "--no-report", "--out", str(tmp_path / "o")], wrong, monkeypatch)
    assert line.startswith("error: s3://runs-bkt/study/atari100k_alien_baseline") and "signature" in line.lower()
    line = _one_line_exit_2(["runs", urls[0]], {"AWS_ACCESS_KEY_ID": "AKIANOSUCHKEY0000000"}, monkeypatch)
    assert line.startswith("error: s3://runs-bkt/study/atari100k_alien_baseline")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)  # the right pair passes the same checks
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    remote._FS.clear()
    result = runner.invoke(app, ["runs", urls[0], "--no-cache"])
    assert result.exit_code == 0 and "baseline/alien/s2" in result.output, result.output


def test_compare_on_a_missing_bucket_or_a_closed_port_is_one_line(servers, monkeypatch, tmp_path):
    out = ["--no-report", "--out", str(tmp_path / "o")]
    line = _one_line_exit_2(["compare", "s3://no-such-bkt/a", "s3://no-such-bkt/b", *out], {}, monkeypatch)
    assert line.startswith("error: s3://no-such-bkt/a") and "not found" in line
    closed = f"http://127.0.0.1:{object_servers.free_port()}"  # nothing listens: the connection is refused
    line = _one_line_exit_2(
        ["compare", "s3://runs-bkt/study/a", "s3://runs-bkt/study/b", *out],
        {"AWS_ENDPOINT_URL": closed},
        monkeypatch,
        seconds=20.0,
    )  # the default deadline
    assert line.startswith("error: s3://runs-bkt/study/a")


def test_an_endpoint_that_never_answers_ends_at_the_deadline(servers, monkeypatch, tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # connections are accepted by the kernel, no byte ever comes back
    held = []
    stop = threading.Event()

    def accept():
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setattr(remote, "DEADLINE", 3.0)
    try:
        line = _one_line_exit_2(
            ["compare", "s3://runs-bkt/study/a", "s3://runs-bkt/study/b", "--no-report", "--out", str(tmp_path / "o")],
            {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{silent.getsockname()[1]}"},
            monkeypatch,
            seconds=10.0,
        )
        assert line.startswith("error: s3://runs-bkt/study/a: no answer within 3 s")
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        silent.close()


def test_watch_reads_a_remote_gz_log_whole_once_per_change(servers):
    fs = _fs("gs")
    fs.mkdir("watch-gz-bkt")
    lines = "".join(json.dumps({"step": 10 * i, "episode/score": float(i)}) + "\n" for i in range(5)).encode()
    fs.pipe_file("watch-gz-bkt/done/task_m/seed0/scores.jsonl.gz", gzip.compress(lines))
    watcher = watch.Watcher(["gs://watch-gz-bkt/done"], rediscover=1e9)
    (state,) = watcher.refresh(now=0.0)
    assert state.scores == [0.0, 1.0, 2.0, 3.0, 4.0] and not state.problems
    read = watcher.bytes_read()
    assert read == len(gzip.compress(lines))
    watcher.refresh(now=1.0)
    assert watcher.bytes_read() == read  # the size did not change: nothing read again
