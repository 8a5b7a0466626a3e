"""notebooks/compare.ipynb runs top to bottom on the tiny fixture sweep and shows its numbers."""

from __future__ import annotations

import os

import nbformat
from nbclient import NotebookClient

from tests.helpers import ROOT
from tests.report_fixtures import JOBS, tiny_sweep_dir


def test_compare_notebook_executes(cache_dir, monkeypatch):
    sweep = tiny_sweep_dir(cache_dir.parent, cache_dir)
    monkeypatch.setenv("IMDB_LM_SWEEPS", str(sweep))
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    notebook = nbformat.read(ROOT / "notebooks" / "compare.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert f"{JOBS} runs from" in text
    assert "transformer" in text and "gru" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 7  # five figures, then one parallel-coordinates figure per family
