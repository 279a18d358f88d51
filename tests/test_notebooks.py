"""Each notebook in nbs/ runs top to bottom as one pytest case (slow cells skipped)."""
from pathlib import Path

import pytest
import nbdev.test as nbt

NBS = Path(__file__).resolve().parent.parent / "nbs"
NOTEBOOKS = sorted(p for p in NBS.glob("*.ipynb") if not p.name.startswith("_"))

@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook(nb: Path):
    ok, secs = nbt.test_nb(nb, skip_flags=["slow"], showerr=True)
    assert ok, f"{nb.name} failed; the cell and traceback are printed above"
