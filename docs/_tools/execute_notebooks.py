"""Execute ``notebooks/*.ipynb`` and store the executed copies in ``docs/notebooks/``.

The documentation shows the notebooks with these stored outputs; the docs build never executes
them. Run after a notebook changes (``tests/test_docs_reference.py`` fails while a copy's code
differs from its notebook)::

    .venv/bin/python docs/_tools/execute_notebooks.py            # all three, 20000 events per kind
    .venv/bin/python docs/_tools/execute_notebooks.py 02_dy_study.ipynb

A notebook that starts a dask-gateway cluster runs against the tests' local gateway server
(``tests/gateway_server.py``). The notebooks run in a temporary working directory
(``JETDASK_NB_WORK``); its absolute path is replaced by ``notebook-work`` in the outputs, the
name a notebook uses by default.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
SOURCE, TARGET = REPO / "notebooks", REPO / "docs" / "notebooks"


def _scrub(nb, work: str) -> None:
    """Outputs without the temporary directory's path, execution timestamps and progress-bar
    widgets (their stored view is the bar at 0 %; the one-line summaries on stderr stay)."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.outputs = [o for o in cell.get("outputs", []) if "application/vnd.jupyter.widget-view+json"
                        not in o.get("data", {})] if cell.cell_type == "code" else cell.get("outputs")
        if cell.cell_type != "code":
            cell.pop("outputs", None)
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = out["text"].replace(work, "notebook-work")
            for key, value in out.get("data", {}).items():
                if isinstance(value, str) and key.startswith("text/"):
                    out["data"][key] = value.replace(work, "notebook-work")


@contextlib.contextmanager
def _facility(nb, tmp: str):
    """For a notebook that starts a dask-gateway cluster: the tests' local gateway server, found
    through the DASK_GATEWAY__* variables as a facility's JupyterHub sets them."""
    if not any('start_cluster("gateway"' in c.source for c in nb.cells if c.cell_type == "code"):
        yield
        return
    sys.path.insert(0, str(REPO / "tests"))
    import gateway_server
    server = gateway_server.start(os.path.join(tmp, "gateway"))
    env = {"DASK_GATEWAY__ADDRESS": server.address, "DASK_GATEWAY__PROXY_ADDRESS": server.proxy_address,
           "DASK_GATEWAY__AUTH__TYPE": "basic", "DASK_GATEWAY__AUTH__KWARGS__USERNAME": "alice",
           "DASK_GATEWAY__AUTH__KWARGS__PASSWORD": server.password}
    os.environ.update(env)
    try:
        yield
    finally:
        for k in env:
            os.environ.pop(k, None)
        server.stop()


def execute(name: str, events: str) -> float:
    nb = nbformat.read(SOURCE / name, as_version=4)
    with tempfile.TemporaryDirectory(prefix="jetdask-nb-") as tmp:
        work = str(Path(tmp, "work").resolve())
        os.environ.update(JETDASK_NB_WORK=work, JETDASK_NB_EVENTS=events)
        start = time.perf_counter()
        with _facility(nb, tmp):
            NotebookClient(nb, timeout=1200, kernel_name="python3",
                           resources={"metadata": {"path": str(SOURCE)}}).execute()
        took = time.perf_counter() - start
        _scrub(nb, work)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    if errors:
        raise SystemExit(f"{name}: a cell raised {errors[0].get('ename')}: {errors[0].get('evalue')}")
    TARGET.mkdir(exist_ok=True)
    nbformat.write(nb, TARGET / name)
    return took


def main(argv: list[str]) -> int:
    names = argv or sorted(p.name for p in SOURCE.glob("*.ipynb"))
    events = os.environ.get("JETDASK_NB_EVENTS", "20000")
    for name in names:
        print(f"{name}: executed in {execute(name, events):.0f} s ({events} events per kind)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
