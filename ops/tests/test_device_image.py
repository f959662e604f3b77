"""The GPU machine's image has jax, numpy, optax, chex, pillow, opencv, psutil and pytest;
the device scripts carry the rest as wheels (ops/gpu_wheels.sh). These tests make the
shift study's device call (its --dry-run) with a Python that has only those packages, so an
import of something the image lacks (fsspec, submitit, polars, ...) fails here and not in a
device call."""

import os
import pathlib
import re
import subprocess
import sysconfig
import tarfile
import venv

import pytest

ROOT = pathlib.Path(__file__).parent.parent.parent
IMAGE = {
    "jax",
    "jaxlib",
    "jax_plugins",
    "numpy",
    "optax",
    "chex",
    "PIL",
    "cv2",
    "psutil",
    "scipy",
    "ml_dtypes",
    "opt_einsum",
    "absl",
    "etils",
    "toolz",
    "typing_extensions",
    "pytest",
    "_pytest",
    "pluggy",
    "packaging",
}
IMPORT_NAMES = {
    "ale-py": "ale_py",
    "ruamel.yaml": "ruamel",
    "farama-notifications": "farama_notifications",
    "markdown-it-py": "markdown_it",
    "pydantic-core": "pydantic_core",
    "annotated-types": "annotated_types",
    "typing-inspection": "typing_inspection",
    "annotated-doc": "annotated_doc",
}
OURS = {"dreamerv3", "sweep", "embodied"}


def carried() -> set[str]:
    """Import names of the wheels ops/gpu_wheels.sh downloads."""
    script = (ROOT / "ops" / "gpu_wheels.sh").read_text()
    return {IMPORT_NAMES.get(name, name.replace("-", "_")) for name in re.findall(r"([A-Za-z0-9_.-]+)==", script)}


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A venv whose site-packages holds only links to the image's, the carried and our own
    top-level packages (and every distribution's metadata): anything else is not there."""
    folder = tmp_path_factory.mktemp("image") / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(folder)
    site = pathlib.Path(sysconfig.get_paths()["purelib"])
    (target,) = folder.glob("lib/python*/site-packages")
    allowed = IMAGE | carried() | OURS
    for entry in site.iterdir():
        top = entry.name.split(".")[0]
        if top in allowed or entry.name.endswith((".dist-info", ".libs")) or top.endswith("_libs"):
            (target / entry.name).symlink_to(entry)
    return folder / "bin" / "python"


def test_the_image_venv_lacks_what_the_image_lacks(image):
    result = subprocess.run([str(image), "-c", "import polars"], capture_output=True, text=True)
    assert result.returncode == 1 and "No module named 'polars'" in result.stderr
    assert subprocess.run([str(image), "-c", "import jax, elements, typer"]).returncode == 0


def test_shift_study_block_call_runs_on_the_image_and_packs_gzipped_logs(image, tmp_path):
    """studies/shift_cartpole/device_shift.sh --dry-run for one block of the pre-registered study (two seeds
    here) with the image's Python: two population processes, every run dir packed under
    shift_powered/ with gzipped logs and no checkpoint, the processes' logs beside them; the toolkit reads the unpacked runs."""
    env = dict(os.environ, OUT=str(tmp_path / "out"), PYTHON=str(image))
    result = subprocess.run(
        ["bash", "studies/shift_cartpole/device_shift.sh", "--dry-run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = (tmp_path / "out" / "device_shift.log").read_text()
    assert result.returncode == 0, log[-3000:]
    assert "8 to make in 2 processes" in log and "8 runs: 8 ok" in log, log[-2000:]
    with tarfile.open(tmp_path / "out" / "shift_runs.tgz") as tar:
        tar.extractall(tmp_path / "runs", filter="data")
    study = tmp_path / "runs" / "shift_powered"
    runs = sorted(study.glob("shift_cartpole_*/seed*"))
    assert len(runs) == 8 and not any((r / "ckpt").exists() for r in runs)
    assert all((r / "metrics.jsonl.gz").is_file() and not (r / "metrics.jsonl").exists() for r in runs)
    logs = sorted((study / "logs").glob("shift_cartpole_population_*.log"))  # the two processes' output
    assert len(logs) == 2 and all("Finished at agent step" in log.read_text() for log in logs)
    from analysis import ingest

    found = ingest.discover([str(study / f"shift_cartpole_{arm}") for arm in ("baseline", "adapt")])
    data = ingest.ingest(found, cache=False)
    assert sorted(r.seed for r in data.runs) == [1000, 1000, 1001, 1001] and data.scores.height > 0
