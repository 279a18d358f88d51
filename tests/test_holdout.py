"""The realism checks' held-out bars: the last months of the run's bars by default, or a file of their own
(`ilmarket reproduce --holdout FILE`)."""
import subprocess
import sys
from pathlib import Path

import pandas as pd

from ilmarket.core import get_config
from ilmarket.data import synthetic_bars
from ilmarket.realism import holdout_bars

CLI = Path(sys.executable).parent / "ilmarket"


def test_default_is_the_last_months_and_a_file_replaces_them(tmp_path):
    bars = synthetic_bars("2023-01-03", "2024-07-31", freq="30min", seed=1)
    hold, why = holdout_bars(bars, get_config("quick"))
    assert hold.index[-1] == bars.index[-1] and hold.index[0] > bars.index[-1] - pd.DateOffset(months=6)
    assert "last 6 months" in why
    hold3, _ = holdout_bars(bars, get_config("quick", settings={"eval.holdout_months": 3}))
    assert len(hold3) < len(hold) and hold3.index[-1] == bars.index[-1]
    later = synthetic_bars("2025-01-02", "2025-03-31", freq="30min", seed=2)
    f = tmp_path / "later.parquet"
    later.to_parquet(f)
    own, why_own = holdout_bars(bars, get_config("quick", settings={"eval.holdout_path": str(f)}))
    assert own.index[0] == later.index[0] and len(own) == len(later) and why_own.startswith("later.parquet")


def test_reproduce_refuses_a_missing_holdout_file(tmp_path):
    r = subprocess.run([str(CLI), "reproduce", "--holdout", str(tmp_path / "none.parquet"), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "--holdout: bars file not found" in r.stderr and "none.parquet" in r.stderr
