"""The example notebooks run end to end (small sizes: the ``parameters`` cell is replaced by ``SMALL = True``;
matplotlib uses Agg in the kernel only)."""

import os
import pathlib

import pytest

nbclient = pytest.importorskip("nbclient", reason="the notebook runner (nbclient, in the [test] extra) is missing")
nbformat = pytest.importorskip("nbformat")

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def test_two_notebooks_are_shipped():
    assert {p.name for p in NOTEBOOKS} >= {"codesign_sweep.ipynb", "gradient_search.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert cells, f"{path.name} has no cell tagged 'parameters'"
    cells[0].source = "SMALL = True\nSEED = 0"
    nb.cells.insert(0, nbformat.v4.new_code_cell("import matplotlib\nmatplotlib.use('Agg')"))
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
