"""The loader and notebook 01 on bars outside the paper's span (2018-12-20..2024-07-31): a user's file of other
dates must load and pass every invariant, with nothing tied to the shipped data's span."""
import json
import logging
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ilmarket.data import (OHLCV, TZ, bars_fingerprint, coverage, default_bars, load_bars, resample_bars,
                           session_table, synthetic_bars, volume_level_changes)

ROOT = Path(__file__).resolve().parent.parent
REAL_1MIN = ROOT.parent / "shared" / "data" / "qqq_1min.parquet"
WEEKS = 100  # 2024-01..07 + 100 weeks = 2025-12..2026-07: weekdays and times of day kept, other holidays


def _shifted_real(folder: Path) -> tuple[Path, pd.DataFrame]:
    "The real 1-minute bars of 2024-01..07 moved forward by whole weeks of wall-clock time, as a parquet file."
    raw = pd.read_parquet(REAL_1MIN)
    t = raw["timestamp"]
    raw = raw[(t >= pd.Timestamp("2024-01-01", tz=TZ)) & (t < pd.Timestamp("2024-08-01", tz=TZ))]
    wall = raw["timestamp"].dt.tz_localize(None) + pd.Timedelta(weeks=WEEKS)
    raw = raw.assign(timestamp=wall.dt.tz_localize(TZ))
    p = folder / "qqq_1min_shifted.parquet"
    raw.to_parquet(p)
    return p, raw


def _synthetic_late(folder: Path) -> Path:
    "Seven months of 5-minute synthetic bars in 2025-2026, after the last Table-6 extremum."
    p = folder / "synthetic_2025.parquet"
    synthetic_bars("2025-09-02", "2026-03-31", freq="5min", seed=3).to_parquet(p)
    return p


def _check_invariants(bars: pd.DataFrame, path: Path, monkeypatch) -> None:
    "What holds for any valid bars file, whatever its span."
    assert list(bars.columns) == OHLCV and str(bars.index.tz) == TZ
    assert bars.index.is_monotonic_increasing and bars.index.is_unique and bars.attrs["source"] == path.name
    days = bars.index.normalize().tz_localize(None)
    cov = coverage(bars)
    assert (cov.days.index[0], cov.days.index[-1]) == (days[0], days[-1])
    assert int(cov.summary.loc["total", "sessions"]) == len(session_table(days[0], days[-1]))
    assert int(cov.summary.loc["total", "bars"]) == len(bars)
    assert int(cov.summary.loc["total", "days"]) == days.nunique()
    assert (cov.days["present"] <= cov.days["expected"]).all()
    paper = coverage(bars, "2018-12-20", "2024-07-31").summary
    assert int(paper.loc["total", "sessions"]) == 1411 and int(paper.loc["total", "bars"]) == 0
    assert resample_bars(bars, "15min")["volume"].sum() == bars["volume"].sum()
    assert volume_level_changes(bars).empty
    assert bars_fingerprint(load_bars(bars)) == bars_fingerprint(bars)  # the canonical frame loads unchanged
    assert bars_fingerprint(default_bars(path)) == bars_fingerprint(bars)
    monkeypatch.setenv("ILMARKET_DATA", str(path))
    assert bars_fingerprint(default_bars()) == bars_fingerprint(bars)


@pytest.mark.skipif(not REAL_1MIN.exists(), reason="real QQQ files not present")
def test_shifted_real_bars_load_with_every_invariant(tmp_path, monkeypatch, caplog):
    path, raw = _shifted_real(tmp_path)
    with caplog.at_level(logging.WARNING, logger="ilmarket"):
        bars = load_bars(path)
    assert caplog.text == ""  # complete days, one feed: nothing to warn about
    assert bars.attrs["freq"] == "1min" and bars.index[0].year == 2025 and bars.index[-1].year == 2026
    raw_days = pd.DatetimeIndex(raw["timestamp"].dt.normalize().dt.tz_localize(None).unique())
    sessions = session_table(raw_days[0], raw_days[-1]).index
    assert bars.index.normalize().tz_localize(None).unique().equals(raw_days[raw_days.isin(sessions)])
    by_time = raw.set_index(raw["timestamp"].dt.as_unit("ns"))[OHLCV].astype("float64")
    pd.testing.assert_frame_equal(bars, by_time.loc[bars.index], check_freq=False, check_names=False)
    _check_invariants(bars, path, monkeypatch)


def test_synthetic_bars_after_the_paper_span(tmp_path, monkeypatch):
    path = _synthetic_late(tmp_path)
    bars = load_bars(path)
    assert bars.attrs["freq"] == "5min" and len(bars) == len(pd.read_parquet(path))
    _check_invariants(bars, path, monkeypatch)


def test_data_notebook_runs_on_a_span_outside_the_paper(tmp_path):
    "Notebook 01 under papermill on 2025-2026 bars: every cell passes, and its tables cover the data's own span."
    path = _synthetic_late(tmp_path)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "papermill", "01_data.ipynb", str(tmp_path / "01_out.ipynb"), "-p", "data_path",
           str(path), "-p", "out_dir", str(out), "--cwd", ".", "--no-progress-bar"]
    r = subprocess.run(cmd, cwd=ROOT / "nbs", capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    cov = pd.read_csv(out / "tables" / "data_coverage.csv", index_col=0)
    assert cov.index.astype(str).tolist() == ["2025", "2026", "total"]
    assert int(cov.loc["total", "bars"]) == len(pd.read_parquet(path))
    man = json.loads((out / "manifest.json").read_text())
    assert man["data"]["source"] == path.name and man["data"]["first"].startswith("2025-09-02")
