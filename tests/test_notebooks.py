"""The notebooks: each runs top to bottom on small budgets, and is stored without outputs.

Each notebook is executed by a Jupyter kernel of this Python (nbclient), with
``GANLAB_NOTEBOOK_FAST=1`` (the notebooks' small budgets), this checkout's ``src`` first on
the kernel's path, and a temporary working directory, so their runs are written there and
never into the repository. The notebooks check what they show with their own asserts.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
NAMES = ["01_quickstart", "02_compare", "03_latent_space", "04_failure_modes", "05_small_data"]
BUDGET_S = 180  # per cell: a cell that hangs fails the test
# what an editor or a run leaves in a notebook; nbstripout removes these
RUN_METADATA = {"execution", "ExecuteTime", "collapsed", "scrolled", "jupyter"}


def test_the_notebooks_are_there():
    assert [p.stem for p in NOTEBOOKS] == NAMES


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path: Path):
    """No outputs, no execution counts, no run metadata: what nbstripout leaves."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert "widgets" not in nb.metadata
    for i, cell in enumerate(nb.cells):
        where = f"{path.name}, cell {i}"
        assert not RUN_METADATA & set(cell.metadata), f"{where}: metadata {dict(cell.metadata)}"
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{where} has outputs: clear them before committing"
            assert cell.execution_count is None, f"{where} has an execution count"


def _files(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path, monkeypatch):
    """The notebook runs top to bottom with small budgets, within its time budget."""
    monkeypatch.setenv("GANLAB_NOTEBOOK_FAST", "1")
    paths = [str(REPO / "src"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    monkeypatch.setenv("WANDB_MODE", "offline")
    # kernels registered in the user's Jupyter folder (another Python) must not be chosen
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))
    before = _files(REPO / "notebooks")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=BUDGET_S,  # per cell: a hang fails; the time itself is printed, not asserted
        kernel_name="python3",  # this Python's own kernel (ipykernel)
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    print(f"{path.name}: {seconds:.1f} s")
    assert (tmp_path / "outputs" / "notebooks" / path.stem).is_dir()  # its runs went here
    assert _files(REPO / "notebooks") == before  # and nothing into the repository
