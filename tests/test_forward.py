"""`ilmarket backtest`: a run's exported models (ilmarket.forward) on bars they never saw, from the command line."""
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ilmarket.data import load_bars
from ilmarket.forward import load_models, save_models
from ilmarket.pipeline import Pipeline

from test_reproduce import CLI, _later_bars

ROOT = Path(__file__).resolve().parent.parent


def _backtest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), "backtest", *args], cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": "0"},
                          capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    "The quick run's models of seed 0 (trained once if not cached), exported to a folder."
    pipe = Pipeline.from_profile("quick", seed=0)
    folder = tmp_path_factory.mktemp("models")
    save_models(pipe, folder, seeds=[0])
    return pipe, folder


def test_exported_models_are_the_runs_own(exported):
    pipe, folder = exported
    m = load_models(folder)
    assert sorted(m.actors) == [("sqrt", 0), ("static", 0), ("synthesis", 0)]
    for imp in ("synthesis", "static"):
        a = pipe.rl(imp, 0, progress=False)[0]
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), m.actors[(imp, 0)].state_dict().values()))
    assert m.il.digest == pipe.il.digest and m.synthesis.digest == pipe.synthesis.digest
    assert m.cfg.digest("sim", "features", "il", "synthesis", "ddpg") == pipe.cfg.digest("sim", "features", "il", "synthesis", "ddpg")


def test_backtest_command_on_later_bars(exported, tmp_path):
    _, folder = exported
    data, out = _later_bars(tmp_path), tmp_path / "fwd"
    r = _backtest("--models", str(folder), "--data", str(data), "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    bars = load_bars(data)
    report = (out / "FORWARD.md").read_text()
    assert f"{bars.index[0]:%Y-%m-%d}..{bars.index[-1]:%Y-%m-%d}" in report and "Segments: the whole span" in report
    runs = pd.read_csv(out / "tables" / "forward_runs.csv")
    assert set(runs["strategy"]) == {"Final RL", "RL Baseline", "IL Baseline", "Long-Only", "Do-Nothing"}
    assert set(runs["mode"]) == {"static", "impact"}
    segs = pd.read_csv(out / "tables" / "forward_segments.csv")
    assert segs["seg_id"].iloc[0] == -1 and len(segs) >= 2  # the whole span, then the segments found in it
    dn = runs[runs["strategy"] == "Do-Nothing"]
    assert np.allclose(dn["total_return"], 0.0, atol=1e-12)
    lo = runs.query("strategy == 'Long-Only' and mode == 'static' and seg_id == -1")["total_return"].iloc[0]
    c = bars["close"].to_numpy()
    assert lo == pytest.approx(c[-2] / c[0] / 1.005 - 1, rel=1e-5)  # all in at the first close, fee 0.5% (CSV: 6 digits)
    assert (out / "figures" / "forward_returns.png").stat().st_size > 0


def test_backtest_command_refuses_bad_models(exported, tmp_path):
    _, folder = exported
    data = _later_bars(tmp_path)
    r = _backtest("--models", str(tmp_path / "nowhere"), "--data", str(data))
    assert r.returncode == 2 and "no models.json" in r.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in folder.iterdir(): (bad / f.name).write_bytes(f.read_bytes())
    actor = bad / "actor-static-seed0.pt"
    actor.write_bytes(actor.read_bytes()[:-4] + b"\0\0\0\0")
    r = _backtest("--models", str(bad), "--data", str(data), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "actor-static-seed0.pt" in r.stderr and "sha256" in r.stderr
    assert not (tmp_path / "o" / "FORWARD.md").exists()
