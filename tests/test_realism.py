"""The flow market's tuning protocol and the capital curve on a toy market: no tuning bar at or after the held-out
start, a deterministic search whose choice is a grid point, and impact that grows with the agent's capital."""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from ilmarket.features import FeatureStream
from ilmarket.realism import capital_impact, flow_point, holdout_sim, tune_flow, tuning_windows
from ilmarket.testing import IdScaler, ToyEnsemble, toy_bars, toy_config, toy_residuals


@pytest.fixture(scope="module")
def toy():
    torch.set_num_threads(1)
    cfg = toy_config(horizon=40, n_envs=8)
    bars = toy_bars(n_days=30, start="2023-01-02", seed=1)
    days = bars.index.normalize().unique()
    ts = lambda i: days[i]
    segs = pd.DataFrame({"role": ["il", "backtest", "backtest"], "start_ts": [ts(0), ts(6), ts(16)],
                         "end_ts": [ts(6), ts(16), days[-1] + pd.Timedelta(days=1)]})
    stream = FeatureStream(1, cfg.features)
    b0 = torch.tensor(bars.iloc[:1][["open", "high", "low", "close", "volume"]].to_numpy().T, dtype=torch.float64)
    n_feat = stream.update(*b0, torch.tensor([True])).shape[-1]
    il = SimpleNamespace(scaler=IdScaler(), ensemble=ToyEnsemble(n_feat))
    syn = SimpleNamespace(net=None, residuals=toy_residuals(600))
    return cfg, bars, segs, days, il, syn


def test_tuning_windows_end_before_the_held_out_start(toy):
    cfg, bars, segs, days, il, syn = toy
    before = days[24]
    wins = tuning_windows(bars, segs, before, n=2)
    assert len(wins) == 2
    assert all(w.index[-1] < before for w in wins)  # the backtest segment runs past `before`: cut there
    assert wins[0].index[0] >= days[6]  # the IL segment is not a tuning window
    assert wins[0].index[-1] < wins[1].index[0]
    assert sum(len(w) for w in wins) == int(((bars.index >= days[6]) & (bars.index < before)).sum())
    with pytest.raises(ValueError, match="no backtest bars before"):
        tuning_windows(bars, segs, days[6], n=2)


def test_tune_flow_is_deterministic_and_chooses_a_grid_point(toy):
    cfg, bars, segs, days, il, syn = toy
    wins = tuning_windows(bars, segs, days[24], n=2)
    grid = {"noise_window": (0, 78), "garch": ((0.0, 0.0), (0.1, 0.5))}
    tab, chosen = tune_flow(cfg, wins, il, syn, grid, n_envs=8)
    tab2, chosen2 = tune_flow(cfg, wins, il, syn, grid, n_envs=8)
    pd.testing.assert_frame_equal(tab, tab2)
    assert chosen == chosen2
    assert len(tab) == 4 * 2
    assert chosen in [flow_point({"noise_window": n, "garch": g}) for n in grid["noise_window"] for g in grid["garch"]]
    score = tab.groupby("point")["passes"].sum()
    at = (tab["noise_window"] == chosen["noise_window"]) & (tab["garch_alpha"] == chosen["garch_alpha"])
    best = tab.loc[at, "point"]
    assert score[best.iloc[0]] == score.max()
    assert isinstance(chosen["noise_window"], int) and isinstance(chosen["garch_alpha"], float)


def test_capital_impact_grows_with_the_capital(toy):
    cfg, bars, segs, days, il, syn = toy
    flow = capital_impact(holdout_sim(cfg, bars, il, syn, "flow", n_envs=8), seed=0, multiples=(1, 10, 100))
    static = capital_impact(holdout_sim(cfg, bars, il, syn, "static", n_envs=8), seed=0, multiples=(1, 10, 100))
    assert (static["impact_bp"] == 0).all()
    assert flow["impact_bp"].iloc[0] > 0 and (np.diff(flow["impact_bp"]) > 0).all()
    frac = flow["order_fraction_of_bar_volume"].to_numpy()
    np.testing.assert_allclose(frac / frac[0], flow["multiple"].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(flow["impact_over_fee"], flow["impact_bp"] / (1e4 * cfg.sim.fee), rtol=1e-12)
