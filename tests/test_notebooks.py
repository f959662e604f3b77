"""The notebooks run top to bottom on a small synthetic run set, two of them also as shipped (their
own parameters, on the runs in artifacts/), and are stored without outputs."""

from pathlib import Path

import nbformat
import pytest
import runfactory
from nbclient import NotebookClient
from openloop_factory import compose, known_sequences, write_video

from analysis import ingest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
ARMS = ("baseline", "adapt", "placebo", "short")  # notebook 04 compares four methods


@pytest.fixture(scope="module")
def run_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("nb_runs")
    runfactory.write_study(root, seeds=3, frames=20_000, episodes=30, log_lines=10, methods=ARMS)
    truth, pred = known_sequences(2, 8)
    for run in root.glob("*/seed*"):
        write_video(run, compose(truth, pred, 4))
    return root


def test_the_three_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == [
        "01_explore_runs.ipynb",
        "02_compare_methods.ipynb",
        "03_mask_and_openloop.ipynb",
        "04_n_methods_and_watch.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path):
    book = nbformat.read(path, as_version=4)
    assert "parameters" in book.cells[0].metadata.get("tags", [])
    for cell in book.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, (path.name, cell.source[:40])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_top_to_bottom(path, run_set, tmp_path):
    book = nbformat.read(path, as_version=4)
    book.cells[0].source = (
        f"RUNS = {str(run_set)!r}\n"
        f"BASELINE = {str(run_set / 'atari100k_alien_baseline')!r}\n"
        f"ADAPT = {str(run_set / 'atari100k_alien_adapt')!r}\n"
        f"ARMS = {[str(run_set / f'atari100k_alien_{m}') for m in ARMS]!r}\n"
        "FRAMES = (0, 20_000)\n"
        "REPS = 200\n"
    )
    client = NotebookClient(book, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for cell in book.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the figures were drawn


@pytest.mark.parametrize("name", ["01_explore_runs", "04_n_methods_and_watch"])
def test_runs_as_shipped_on_the_shipped_runs(name):
    """Unchanged, from notebooks/ as a user opens it: its own paths into artifacts/ resolve, and
    the shift experiment's table is on raw CartPole scores with no optimality gap."""
    path = NOTEBOOKS[0].parent / f"{name}.ipynb"
    book = nbformat.read(path, as_version=4)
    client = NotebookClient(
        book, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    outputs = [o for cell in book.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    if name == "04_n_methods_and_watch":
        assert "baseline vs adapt vs placebo vs fixed on ['gym_CartPole-v1']" in text
        assert "optimality gap: the optimality gap is the shortfall below 1.0" in text
    else:
        found = ingest.discover([str(path.parent.parent / "artifacts")])
        assert f"shape: ({len(found)}, 4)" in text  # one row per shipped run
