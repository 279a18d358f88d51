"""Each notebook in nbs/ runs top to bottom as one pytest case (slow cells skipped)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nbrun import run_notebook  # noqa: E402

NBS = Path(__file__).resolve().parent.parent / "nbs"
NOTEBOOKS = sorted(p for p in NBS.glob("*.ipynb") if not p.name.startswith("_"))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook(nb: Path):
    run = run_notebook(nb)
    if run.failed is not None:
        sys.stderr.write(run.traceback)
        pytest.fail(run.message(), pytrace=False)
