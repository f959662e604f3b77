"""Local object-storage servers for tests and the ingest benchmark: moto (S3) and gcp-storage-emulator (GCS).

Each is a real HTTP server in a subprocess on 127.0.0.1 at a free port; `start_s3` / `start_gcs`
return it with the environment variables a client reads to reach it (the same variables a user
sets for a real endpoint). Nothing here is a mock of the client side.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent


@dataclass
class Server:
    process: subprocess.Popen
    env: dict[str, str]  # what a client of this server needs in its environment
    port: int

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(process: subprocess.Popen, port: int, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f} s")


def start_s3() -> Server:
    """moto in server mode; any key pair is accepted, the region is fixed."""
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait(process, port, "moto_server")
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return Server(process, env, port)


def start_gcs() -> Server:
    """gcp-storage-emulator, in memory; clients find it through STORAGE_EMULATOR_HOST."""
    port = free_port()
    process = subprocess.Popen(
        [
            str(BIN / "gcp-storage-emulator"),
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--in-memory",
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait(process, port, "gcp-storage-emulator")
    return Server(process, {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}"}, port)


def set_env(env: dict[str, str]) -> None:
    """Point this process's clients at a server (fsspec filesystems read the variables when made)."""
    os.environ.update(env)
