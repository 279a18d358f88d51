"""The notebook runner behind `test_notebooks.py`: a failure names the cell and the line that failed."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nbrun import run_notebook  # noqa: E402


def _nb(path: Path, *cells: str) -> Path:
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [],
                     "source": src} for i, src in enumerate(cells)],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))
    return path


def test_failure_names_the_failing_line(tmp_path):
    nb = _nb(tmp_path / "x.ipynb", "a = 1", "b = 2\nassert a == 1\nassert b == 3, 'b is not 3'\nc = 4")
    run = run_notebook(nb)
    assert run.failed is not None and run.failed.index == 1
    assert run.message() == "x.ipynb cell 1, line 3: assert b == 3, 'b is not 3': AssertionError: b is not 3"


def test_slow_cells_are_skipped_and_outcomes_recorded(tmp_path):
    nb = _nb(tmp_path / "y.ipynb", "x = 2\nx * 3", "#| slow\nraise RuntimeError('not run')", "print('took 3.2 s')")
    run = run_notebook(nb)
    assert run.failed is None
    assert [c.index for c in run.cells] == [0, 2]
    assert run_notebook(nb).cells[1].digest == run.cells[1].digest  # wall times are masked
