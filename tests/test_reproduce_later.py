"""The main job on a user's bars: the whole quick reproduction on seven months after Table 6's last extremum runs end
to end and says which segments it used (its own file, so that `make test`'s workers can run it beside the rest)."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_reproduce import _later_bars, _run  # noqa: E402


def test_quick_reproduction_on_bars_outside_table6(tmp_path):
    """The whole quick reproduction on a user's file that Table 6 does not cover: it runs end to end, and the
    report says which segments it used and why."""
    data, out = _later_bars(tmp_path), tmp_path / "out"
    r = _run("--profile", "quick", "--data", str(data), "--out", str(out))
    assert r.returncode == 0, r.stderr[-4000:]
    report = (out / "REPORT.md").read_text()
    seg_line = next(l for l in report.splitlines() if l.startswith("- segments:"))
    assert "zig-zag" in seg_line and "Table 6" in seg_line, seg_line  # the finder used, and why Table 6 was not
    man = json.loads((out / "manifest.json").read_text())
    assert man["data"]["name"] == data.name and man["data"]["path"] == data.name  # outside the project: named only
    assert set(man["stages"].values()) == {"ran"}
    assert str(tmp_path) not in (out / "executed" / "01_data.ipynb").read_text()  # no machine paths in the outputs
