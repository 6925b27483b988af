"""The quickstart notebook runs end to end, as a user would run it."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_executes_and_draws_the_graph(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pictures) == 2, "expected a drawing of the graph and an embedding plot"
    text = "".join(o.get("text", "") for o in outputs)
    assert "Marie Curie" in text and "facts" in text and "entities embedded" in text
    assert (tmp_path / "out" / "quickstart" / "run.json").is_file()
