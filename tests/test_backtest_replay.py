"""The backtests' replay (`ilmarket.evaluation.simulate_many`) against closed forms and a plain loop: the static
replay is the portfolio accounting, and the impact-aware replay fills at p_t and moves the later prices."""
import numpy as np
import pandas as pd
import pytest
import torch

from ilmarket.evaluation import make_backtest_set, simulate_backtests, simulate_many
from ilmarket.portfolio import simulate_fractions


def toy_set(seed=0):
    "Two backtest segments of random-walk 5-minute bars with varying σ and V, and two constant features."
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2022-01-03", periods=20)
    idx = pd.DatetimeIndex([d + pd.Timedelta(hours=9, minutes=30 + 5 * i) for d in days for i in range(78)],
                           name="timestamp").tz_localize("America/New_York")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, len(idx))))
    bars = pd.DataFrame({"open": close, "high": close, "low": close, "close": close,
                         "volume": rng.uniform(1e5, 2e5, len(idx))}, index=idx)
    bars.attrs.update(source="test", freq="5min")
    segs = pd.DataFrame({"seg_id": [1, 2], "start": pd.to_datetime(["2022-01-05", "2022-01-17"]),
                         "end": pd.to_datetime(["2022-01-12", "2022-01-21"]), "regime": ["bull", "bear"]})
    sigma, vol = rng.uniform(5e-4, 2e-3, len(bars)), rng.uniform(5e4, 3e5, len(bars))
    return make_backtest_set(bars, segs, np.zeros((len(bars), 2)), sigma, vol)


class Scripted:
    "The same action path on every row, one bar per call."
    def __init__(self, acts): self.acts, self.t = acts, 0

    def act(self, obs):
        a = torch.full((len(obs),), float(self.acts[self.t]), dtype=torch.float64)
        self.t += 1
        return a


def reference_impact_path(px, sigma, volume, mask, acts, cash0, fee, y, halflife):
    """A plain loop over bars: the order of Q shares is sized at p_t = p^hist_t·e^J_t and pays its own impact
    Δ = sign(Q)·Y·σ_t·sqrt(|Q|/V_t) (a buy gets Q·e^−Δ shares, a sell (1−f)|Q|p_t·e^Δ cash); J_{t+1} = δ·J_t + Δ."""
    d = 1.0 if halflife is None else 0.5 ** (1 / halflife)
    cash, shares, level, out = cash0, 0.0, 0.0, []
    for t in range(len(px)):
        p, a = px[t] * np.exp(level), (acts[t] if mask[t] else 0.0)
        a = min(1.0, max(-1.0, a))
        q = a * cash / ((1 + fee) * p) if a > 0 else a * shares
        jump = np.sign(q) * y * sigma[t] * np.sqrt(abs(q) / volume[t])
        if a > 0: cash, shares = cash * (1 - a), shares + q * np.exp(-jump)
        else: cash, shares = cash - (1 - fee) * q * p * np.exp(jump), shares + q
        out.append((p, cash, shares, cash + shares * p))
        level = d * level + jump
    return np.array(out)


@pytest.fixture(scope="module")
def bt():
    return toy_set()


def test_static_replay_is_the_closed_form_accounting(bt):
    T = bt.px.shape[1]
    acts = np.random.default_rng(1).uniform(-1.2, 1.2, T)
    out = simulate_backtests(Scripted(acts), bt, cash0=1e6, fee=0.005)
    for i, L in enumerate(bt.lengths):
        px = bt.px[i, :L].numpy()
        cash, shares, traded = simulate_fractions(px, acts[:L], cash0=1e6, fee=0.005)
        np.testing.assert_allclose(out["value"][i, :L], cash + shares * px, rtol=1e-10)
        np.testing.assert_allclose(out["traded"][i, :L], traded, rtol=1e-10, atol=1e-6)
        assert np.array_equal(out["px"][i, :L], px)  # the historical closes themselves


@pytest.mark.parametrize("y, halflife, cash0", [(0.7, None, 1e6), (2.0, 3.0, 1e8)])
def test_impact_replay_equals_the_plain_loop(bt, y, halflife, cash0):
    T = bt.px.shape[1]
    acts = np.random.default_rng(2).uniform(-1, 1, T) * (np.arange(T) % 3 == 0)
    out = simulate_backtests(Scripted(acts), bt, cash0=cash0, impact_y=y, halflife=halflife)
    for i in range(2):
        ref = reference_impact_path(bt.px[i].numpy(), bt.sigma[i].numpy(), bt.volume[i].numpy(), bt.mask[i].numpy(),
                                    acts, cash0, 0.005, y, halflife)
        for j, k in enumerate(("px", "cash", "shares", "value")):
            np.testing.assert_allclose(out[k][i], ref[:, j], rtol=1e-9, atol=1e-6 * cash0 / 1e6, err_msg=k)


def test_a_fill_pays_its_own_impact_and_moves_the_later_prices(bt):
    buy_once = np.r_[1.0, np.zeros(bt.px.shape[1] - 1)]
    static = simulate_backtests(Scripted(buy_once), bt)
    imp = simulate_backtests(Scripted(buy_once), bt, impact_y=0.7)
    assert np.array_equal(imp["px"][:, 0], bt.px[:, 0].numpy())  # sized at p_0 …
    q = static["shares"][:, 0]  # … the order's shares
    jump = 0.7 * bt.sigma[:, 0].numpy() * np.sqrt(q / bt.volume[:, 0].numpy())
    np.testing.assert_allclose(imp["shares"][:, 0], q * np.exp(-jump), rtol=1e-12)  # … bought at p_0·e^Δ
    np.testing.assert_allclose(np.log(imp["px"][:, 1:] / bt.px[:, 1:].numpy()), jump[:, None] * np.ones((1, bt.px.shape[1] - 1)),
                               rtol=1e-9)  # permanent: every later close carries it
    flat = simulate_backtests(Scripted(np.zeros(bt.px.shape[1])), bt, impact_y=0.7)
    assert np.array_equal(flat["px"], bt.px.numpy())  # no order, no move


def test_no_round_trip_earns_its_own_impact(bt):
    """Buy everything, sell everything at the next bar: with impact the round trip ends with less than without,
    and less the larger the trader (a fill that escaped its own impact would be paid for moving the price)."""
    rt = np.r_[1.0, -1.0, np.zeros(bt.px.shape[1] - 2)]
    end = lambda **kw: simulate_backtests(Scripted(rt), bt, **kw)["value"][:, 2] / kw.get("cash0", 1e6)
    static, small, big = end(), end(impact_y=0.7), end(impact_y=0.7, cash0=1e9)
    assert (small < static).all() and (big < small).all()


def test_settings_in_one_batch_equal_separate_runs(bt):
    T = bt.px.shape[1]
    acts = np.random.default_rng(3).uniform(-1, 1, T)
    many = simulate_many([Scripted(acts)], bt, [None, 0.7, 0.7], cash0=[1e6, 1e6, 1e8])
    for k, (y, c) in enumerate(((None, 1e6), (0.7, 1e6), (0.7, 1e8))):
        one = simulate_backtests(Scripted(acts), bt, cash0=c, impact_y=y)
        assert all(np.array_equal(many[key][0, k], one[key]) for key in one), (y, c)


def test_bad_settings_are_refused(bt):
    with pytest.raises(ValueError, match="cash0 needs one value or one per impact setting"):
        simulate_many([Scripted(np.zeros(999))], bt, [None, 0.7], cash0=[1e6, 1e6, 1e6])
    with pytest.raises(ValueError, match="halflife must be positive"):
        simulate_backtests(Scripted(np.zeros(999)), bt, impact_y=0.7, halflife=0.0)
