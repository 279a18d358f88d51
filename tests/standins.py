"""Small stand-ins for the learned parts of the simulator (feature stream, scaler, IL ensemble, synthesis
net) and a tiny simulator built from them, so simulator and DDPG tests run without training anything."""
import numpy as np
import pandas as pd
import torch
from torch import nn

from ilmarket.core import get_config
from ilmarket.market import MarketSim, PriceFormer, make_market_data

F64 = dict(dtype=torch.float64)


class Stream:
    "Streaming (ret %, EMA_5 / close − 1, log volume) of n series."
    def __init__(self, n):
        self.prev = torch.full((n,), float("nan"), **F64)
        self.ema = torch.zeros(n, **F64)

    def update(self, open, high, low, close, volume, new_session):
        first = torch.isnan(self.prev)
        ret = torch.where(first, torch.zeros_like(close), close / self.prev - 1)
        self.ema = torch.where(first, close, self.ema + (close - self.ema) / 3)
        self.prev = close.clone()
        return torch.stack([100 * ret, self.ema / close - 1, torch.log1p(volume) / 20], 1)

    def state_dict(self):
        return {"prev": self.prev.clone(), "ema": self.ema.clone()}

    def load_state_dict(self, d):
        self.prev, self.ema = d["prev"].clone(), d["ema"].clone()


class Scaler:
    def transform(self, x):
        return x


class Ensemble(nn.Module):
    "M linear-tanh agents over the stand-in features."
    def __init__(self, f=3, m=10):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.randn(f, m, generator=g) * 20)

    def forward(self, x):
        return torch.tanh(x @ self.w)


class Synth(nn.Module):
    "Softmax influence weights over the actions and a small return, like the synthesis net's interface."
    def __init__(self, m=10):
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(0)
            self.lin = nn.Linear(m, 10)

    def forward(self, a):
        w = torch.softmax(self.lin(a), -1)
        return 1e-3 * torch.tanh((w * a[:, :10]).sum(1)), w


def make_test_bars(n_days=8, per_day=78, seed=0):
    "Random-walk 5-minute bars on business days."
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2024-01-02", periods=n_days)
    idx = pd.DatetimeIndex([d + pd.Timedelta(hours=9, minutes=30 + 5 * i) for d in days for i in range(per_day)])
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, len(idx))))
    open_ = np.r_[100.0, close[:-1]]
    b = pd.DataFrame({"open": open_, "high": np.maximum(open_, close), "low": np.minimum(open_, close), "close": close,
                      "volume": rng.uniform(2e5, 8e5, len(idx))}, index=idx.tz_localize("America/New_York").rename("timestamp"))
    b.attrs["source"] = "test"
    return b


def make_test_residuals():
    "The stand-in synthesis net's residuals, (300,)."
    return np.random.default_rng(1).normal(0, 1e-3, 300)


def make_test_sim(impact: str | PriceFormer = "synthesis", n_envs=4, horizon=32, n_days=8, **sim_kw):
    "A MarketSim over `make_test_bars` with the stand-ins above; `impact` a mode name or a price former."
    cfg = get_config("quick", sim={"warmup": 10, "horizon": horizon, "n_envs": n_envs, **sim_kw})
    data = make_market_data(make_test_bars(n_days), None, 10, horizon, 50)
    if not isinstance(impact, str): return MarketSim(cfg, data, Scaler(), Stream, Ensemble(), n_envs=n_envs, impact=impact)
    return MarketSim(cfg, data, Scaler(), Stream, Ensemble(), Synth(), make_test_residuals(), n_envs=n_envs, impact=impact)


class Interrupt(Exception):
    "Raised by `stop_at` to interrupt a training (resume tests)."


def stop_at(k):
    "A train_ddpg callback that interrupts the run once `k` environment steps are done."
    def cb(step):
        if step >= k: raise Interrupt(step)
    return cb
