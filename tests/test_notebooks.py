"""The notebooks run top to bottom (nbclient), on a small synthetic sample."""
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NB = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["01_launch_cluster.ipynb", "02_dy_study.ipynb", "03_failures_and_resubmit.ipynb"])
def test_notebook_runs(name, tmp_path_factory, monkeypatch):
    work = tmp_path_factory.getbasetemp() / "notebook-work"
    monkeypatch.setenv("JETDASK_NB_WORK", str(work))
    monkeypatch.setenv("JETDASK_NB_EVENTS", os.environ.get("JETDASK_NB_EVENTS", "8000"))
    if os.environ.get("JETDASK_REQUIRE_SLURM"):  # CI: the SLURM cell of notebook 1 runs for real
        monkeypatch.setenv("JETDASK_NB_SLURM", "1")
    nb = nbformat.read(NB / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NB)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    if name.startswith("01") and os.environ.get("JETDASK_REQUIRE_SLURM"):
        text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
        assert "SLURM run complete: True" in text
