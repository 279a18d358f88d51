"""The hand-written performance metrics against empyrical-reloaded on the same return series.

`ilmarket.portfolio.compute_metrics` — and through `evaluation.run_metrics` and `pipeline.backtest` the numbers of
the tables — follows the paper: one-bar returns r_t = V_t / V_{t-1} − 1 from the start capital V_{-1} (so the first
trade's fee counts), volatility and Sharpe ratio of those one-bar returns (sample std, risk-free rate 0, not
annualised: the scale of the paper's Tables 1 and 4), an annualised Sharpe over 252 sessions of 390 regular-session
minutes, and a max drawdown whose running peak starts at the start capital. empyrical is handed the same returns;
its `annualization` argument states the convention each time: 1 for the per-bar figures, `bars_per_year` for the
annualised Sharpe.

Where the two differ on purpose, the paper's definition wins and the test says so: with zero volatility (a passive
agent) the paper reports a Sharpe ratio of 0 (Table 4, IL3: max drawdown, volatility and Sharpe all 0), empyrical
NaN; with a single return, whose sample std is undefined, ours is 0 by the same rule, empyrical's NaN.
"""
import math
from pathlib import Path

import empyrical as ep
import numpy as np
import pandas as pd
import pytest

from ilmarket.data import bar_minutes, load_bars, resolve_data_path
from ilmarket.pipeline import backtest
from ilmarket.portfolio import bars_per_year, compute_metrics, execute_fractions

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "qqq_5min.parquet"  # beside the repository
RTOL = 1e-9  # both sides compute in float64 from the same returns; only summation order differs
COMPARED = ("total_return", "volatility", "sharpe", "sharpe_annualised", "max_drawdown")


def returns_of(value: np.ndarray, initial: float) -> np.ndarray:
    "The one-bar returns compute_metrics measures: V_{-1} = initial, then the values after each bar's trade."
    full = np.concatenate([[initial], np.asarray(value, dtype=np.float64)])
    return full[1:] / full[:-1] - 1.0


def empyrical_metrics(r: np.ndarray, minutes: float) -> dict[str, float]:
    "empyrical's figures under our conventions, stated explicitly."
    return {"total_return": ep.cum_returns_final(r),
            "volatility": ep.annual_volatility(r, annualization=1),  # per bar: the annualisation factor is 1
            "sharpe": ep.sharpe_ratio(r, risk_free=0.0, annualization=1),  # per bar, risk-free rate 0
            "sharpe_annualised": ep.sharpe_ratio(r, risk_free=0.0, annualization=bars_per_year(minutes)),
            "max_drawdown": ep.max_drawdown(r)}  # empyrical anchors the running peak at the start value, as we do


def assert_agree(ours: dict | pd.Series, r: np.ndarray, minutes: float) -> None:
    theirs = empyrical_metrics(r, minutes)
    for k in COMPARED:
        assert math.isclose(float(ours[k]), float(theirs[k]), rel_tol=RTOL, abs_tol=1e-15), \
            f"{k}: ours {ours[k]!r}, empyrical {theirs[k]!r}"


def random_paths(seed: int = 0, n: int = 24):
    "Seeded (value, traded, initial, bar minutes): random walks of several lengths, drifts and volatilities."
    rng = np.random.default_rng(seed)
    for i in range(n):
        T = int(rng.integers(2, 3000))
        r = rng.normal(rng.uniform(-5e-4, 5e-4), rng.uniform(1e-4, 2e-2), T)
        initial = float(rng.uniform(1e3, 1e7))
        yield initial * np.cumprod(1.0 + r), rng.uniform(0, 1e5, T), initial, [1, 5, 15, 390][i % 4]


@pytest.mark.parametrize("i", range(24))
def test_random_walks_agree(i):
    value, traded, initial, minutes = list(random_paths())[i]
    ours = compute_metrics(value, traded, initial=initial, bar_minutes=minutes)
    assert_agree(ours, returns_of(value, initial), minutes)


def test_traded_paths_with_fees_and_a_crash_agree():
    "The accounting's own paths (fees, the first trade from all cash) on prices with a 30% crash."
    rng = np.random.default_rng(1)
    px = 100 * np.exp(np.cumsum(rng.normal(0, 2e-3, 2000)))
    px[1200:] *= 0.7
    act = rng.uniform(-1, 1, (2000, 5)) * rng.uniform(0, 1, 5)  # five traders, from timid to hyperactive
    for k in range(act.shape[1]):
        path = execute_fractions(px, act[:, k], cash0=1e6, fee=0.005)
        ours = compute_metrics(path["value"], path["traded"], initial=1e6, bar_minutes=5)
        assert ours["max_drawdown"] < 0
        assert_agree(ours, returns_of(path["value"], 1e6), 5)


def test_daily_bars_annualise_as_empyricals_default():
    "With one bar a session (390 minutes) our annualised Sharpe is empyrical's default `period='daily'` (252)."
    value, traded, initial, _ = next(random_paths(seed=2))
    ours = compute_metrics(value, traded, initial=initial, bar_minutes=390)
    r = returns_of(value, initial)
    assert math.isclose(ours["sharpe_annualised"], ep.sharpe_ratio(r), rel_tol=RTOL)
    assert math.isclose(ours["sharpe_annualised"], ours["sharpe"] * math.sqrt(252), rel_tol=RTOL)


def test_zero_volatility_is_a_sharpe_of_zero_on_purpose():
    "The paper's passive agent (Table 4, IL3) has Sharpe 0; empyrical leaves the ratio undefined (NaN)."
    flat = np.full(50, 1e6)
    ours = compute_metrics(flat, np.zeros(50), initial=1e6)
    r = returns_of(flat, 1e6)
    assert [ours[k] for k in ("volatility", "sharpe", "sharpe_annualised", "max_drawdown")] == [0.0] * 4
    assert ep.annual_volatility(r, annualization=1) == 0.0 and ep.max_drawdown(r) == 0.0  # these agree
    assert math.isnan(ep.sharpe_ratio(r, annualization=1))  # this one differs by definition


def test_a_single_return_on_purpose():
    "One bar: the sample std is undefined; ours reports volatility and Sharpe 0 (the same rule), empyrical NaN."
    ours = compute_metrics(np.array([1.01e6]), np.zeros(1), initial=1e6)
    r = returns_of([1.01e6], 1e6)
    assert (ours["volatility"], ours["sharpe"]) == (0.0, 0.0)
    assert math.isnan(ep.annual_volatility(r, annualization=1)) and math.isnan(ep.sharpe_ratio(r, annualization=1))
    assert math.isclose(ours["total_return"], ep.cum_returns_final(r), rel_tol=RTOL)
    assert ours["max_drawdown"] == ep.max_drawdown(r) == 0.0


@pytest.fixture(scope="module")
def real_bars() -> pd.DataFrame:
    "The real bars (argument-free resolver: $ILMARKET_DATA, data/raw/), else the shared file beside the repository."
    found, _ = resolve_data_path(None)
    path = found if found is not None else (SHARED if SHARED.exists() else None)
    if path is None: pytest.skip("no real bars: set ILMARKET_DATA or put the shared data beside the repository")
    return load_bars(path)


def test_real_bars_buy_and_hold_agrees(real_bars):
    "Buy and hold over every real bar: years of one-bar returns, a deep drawdown and a long annualisation."
    px = real_bars["close"].to_numpy(np.float64)
    act = np.zeros(len(px))
    act[0] = 1.0
    path = execute_fractions(px, act, cash0=1e6)
    minutes = bar_minutes(real_bars)
    ours = compute_metrics(path["value"], path["traded"], initial=1e6, bar_minutes=minutes)
    assert ours["max_drawdown"] < -0.05
    assert_agree(ours, returns_of(path["value"], 1e6), minutes)


def test_real_bars_backtest_metrics_agree(real_bars):
    "The tables' path: `backtest` of a rule on real bars (run_metrics over the replay) against empyrical."
    bars = real_bars.iloc[-3000:]
    rule = lambda bar, account: 1.0 if bar["close"] >= bar["open"] else -1.0  # buy up-bars, sell down-bars
    frame, m = backtest(rule, bars, capital=1e6)
    assert len(frame) == len(bars) and frame["traded"].sum() > 0
    assert_agree(m, returns_of(frame["value"].to_numpy(), 1e6), bar_minutes(bars))
