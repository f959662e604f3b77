"""One table and one rule for paths in object storage, shared by the trainer, the toolkit and
every command's outputs: an output that names a bucket where only local files are written is
one line (never a local folder named `s3:`), and a key with '..' is never mirrored, whether a
listing or a glob found it."""

import os

import pytest
from runfactory import write_run
from typer.testing import CliRunner

import cli
from analysis import remote
from dreamerv3 import configs as configlib
from dreamerv3 import remotepath, storage
from dreamerv3.errors import BadInput
from sweep import spec
from sweep.cli import app as sweep_app

SWEEP = "tasks: [dummy_disc]\nconfigs: [debug]\narms: {a: {}}\nseeds: [0]\n"


def test_one_table_for_trainer_and_toolkit():
    assert storage.PROTOCOLS is remotepath.PROTOCOLS and remote.PROTOCOLS is remotepath.PROTOCOLS
    for path in ("s3://b/x", "GS://b", "az://c/d", "abfs://c"):
        assert storage.is_remote(path) and remote.is_remote(path)
    for path in ("s3:/b/x", "runs/s3://x", "http://b/x", "b/x"):
        assert not storage.is_remote(path) and not remote.is_remote(path)


@pytest.mark.parametrize(
    "command",
    [
        lambda run, out: ["mask", str(run), "--out", out],
        lambda run, out: ["openloop", str(run), str(run), "--out", out],
        lambda run, out: ["runs", str(run), "--cache-dir", out],
        lambda run, out: ["watch", str(run), "--html", out + "/w.html", "--iterations", "1"],
        lambda run, out: ["results", "--root", str(run.parent.parent), "--out", out + "/results.md"],
    ],
)
def test_a_bucket_where_a_command_writes_local_files_is_one_line(tmp_path, monkeypatch, command):
    run = write_run(tmp_path / "runs", "atari100k_alien", "adapt", 0, frames=20_000, episodes=12, log_lines=4)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli.app, command(run, "s3://bucket/out"))
    output = result.stdout + result.stderr
    assert result.exit_code == 2 and "Traceback" not in output, output
    assert "not to s3://" in output or "object storage" in output, output
    assert not os.path.exists(tmp_path / "s3:")


def test_pack_uploads_to_a_bucket_and_a_sweep_root_refuses_one(tmp_path, monkeypatch):
    import fsspec
    import object_servers

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP)
    logdir = tmp_path / "runs" / "dummy_disc_a" / "seed0"
    logdir.mkdir(parents=True)
    (logdir / "metrics.jsonl").write_text('{"step": 1}\n')
    s3 = object_servers.start_s3()
    try:
        for key, value in s3.env.items():
            monkeypatch.setenv(key, value)
        fs = fsspec.filesystem("s3", skip_instance_cache=True)
        fs.mkdir("packs")
        result = CliRunner().invoke(sweep_app, ["pack", str(path), "--root", "runs", "--out", "s3://packs/runs.tgz"])
        assert result.exit_code == 0, result.output
        (tmp_path / "back.tgz").write_bytes(fs.cat("packs/runs.tgz"))
        result = CliRunner().invoke(sweep_app, ["pack", str(path), "--root", "runs", "--out", "s3://no-bucket/x.tgz"])
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
        assert "s3://no-bucket/x.tgz" in result.output
    finally:
        s3.stop()
    import tarfile

    with tarfile.open(tmp_path / "back.tgz") as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    assert (tmp_path / "unpacked" / "runs" / "dummy_disc_a" / "seed0" / "metrics.jsonl").read_text() == '{"step": 1}\n'
    path.write_text(SWEEP + "root: gs://bucket/runs\n")
    with pytest.raises(spec.SweepError, match="not to gs://"):
        spec.load(path)
    assert not os.path.exists(tmp_path / "s3:") and not os.path.exists(tmp_path / "gs:")


def test_a_logdir_of_an_unknown_scheme_is_refused():
    with pytest.raises(BadInput, match="expected a local folder or object storage"):
        configlib.parse(["--configs", "debug", "--logdir", "http://host/run"])


def test_globbed_keys_with_dots_are_never_mirrored(monkeypatch):
    monkeypatch.setattr(
        remote,
        "call",
        lambda url, method, *a, **k: False if method == "exists" else ["bucket/runs/../../etc", "bucket//x"],
    )
    with pytest.raises(remote.RemoteError, match="no path matches"):
        remote.run_dirs("s3://bucket/runs/*")
    with pytest.raises(remote.RemoteError, match="never mirrored"):
        remote.local_path("s3://bucket/a/../../../x")
