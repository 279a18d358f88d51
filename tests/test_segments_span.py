"""Notebooks 02, 03 and 04 under papermill on bars outside Table 6's span (2018-12-24..2024-07-10): the run falls
back to zig-zag segments, every cell passes, and the segments it writes rise in bull and fall in bear regimes."""
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ilmarket.data import TZ, synthetic_bars

ROOT = Path(__file__).resolve().parent.parent
REAL_1MIN = ROOT.parent / "shared" / "data" / "qqq_1min.parquet"


def _shifted_real(folder: Path) -> Path:
    "The real 1-minute bars of 2024-01..07 moved forward by 100 weeks (2025-12..2026-07), weekdays and times kept."
    raw = pd.read_parquet(REAL_1MIN)
    t = raw["timestamp"]
    raw = raw[(t >= pd.Timestamp("2024-01-01", tz=TZ)) & (t < pd.Timestamp("2024-08-01", tz=TZ))]
    raw = raw.assign(timestamp=(raw["timestamp"].dt.tz_localize(None) + pd.Timedelta(weeks=100)).dt.tz_localize(TZ))
    p = folder / "qqq_1min_shifted.parquet"
    raw.to_parquet(p)
    return p


def _synthetic_late(folder: Path) -> Path:
    "Seven months of 5-minute synthetic bars in 2025-2026."
    p = folder / "synthetic_2025.parquet"
    synthetic_bars("2025-09-02", "2026-03-31", freq="5min", seed=3).to_parquet(p)
    return p


def _run(nb: str, data: Path, out: Path, tmp: Path, *extra: str) -> None:
    cmd = [sys.executable, "-m", "papermill", f"{nb}.ipynb", str(tmp / f"{nb}_{data.stem}.ipynb"), "-p", "data_path",
           str(data), "-p", "out_dir", str(out), "--cwd", ".", "--no-progress-bar", *extra]
    r = subprocess.run(cmd, cwd=ROOT / "nbs", capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]


def _check_segments(out: Path) -> pd.DataFrame:
    tab = pd.read_csv(out / "tables" / "table6_segments.csv")
    title = (out / "tables" / "table6_segments.md").read_text().splitlines()[0]
    kept = tab[tab["role"] != "dropped"]
    assert "zig-zag" in title and "cover 0 of its 36 segments" in title
    assert {"il", "holdout", "backtest"} <= set(kept["role"])
    assert (kept.loc[kept["regime"] == "bull", "ret"] > 0).all() and (kept.loc[kept["regime"] == "bear", "ret"] < 0).all()
    assert (pd.to_datetime(kept["start_ts"]).dt.year >= 2025).all()
    return kept


@pytest.mark.parametrize("make", [_shifted_real, _synthetic_late], ids=["real_1min_shifted", "synthetic_2025"])
def test_segment_and_label_notebooks_run_after_table6(make, tmp_path):
    if make is _shifted_real and not REAL_1MIN.exists(): pytest.skip("real QQQ files not present")
    data, out = make(tmp_path), tmp_path / "run"
    for nb in ("02_features", "03_segmentation", "04_labeling"):
        _run(nb, data, out, tmp_path)
    _check_segments(out)
    dist = pd.read_csv(out / "tables" / "labels_distribution.csv")
    assert ((dist["sell"] + dist["hold"] + dist["buy"] - 1).abs() < 1e-9).all()


def test_segments_notebook_with_a_zigzag_source(tmp_path):
    data, out = _synthetic_late(tmp_path), tmp_path / "run"
    _run("03_segmentation", data, out, tmp_path, "-y", '{"settings": {"segments.source": "zigzag:0.05"}}')
    title = (out / "tables" / "table6_segments.md").read_text().splitlines()[0]
    assert "zig-zag 5% on the bars (segments.source 'zigzag:0.05')" in title
