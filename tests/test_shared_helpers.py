"""The helpers shared across chapters against straightforward reference formulas: `data.autocorr`,
`data.stylized_facts` / `bars_stylized_facts` and the training loop `agents.fit_early_stopping` as used by
`fit_il_agent` and `fit_synthesis` (same seed: the same weights, bit for bit, as a loop written out by hand)."""
import copy

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from ilmarket.agents import ILAgent, ILArtifacts, ILEnsemble, fit_early_stopping, fit_il_agent, split_tail
from ilmarket.core import ILConfig, SynthesisConfig, get_config
from ilmarket.data import autocorr, bar_returns, bars_stylized_facts, stylized_facts, synthetic_bars
from ilmarket.features import FEATURES, MinMaxScaler, compute_features
from ilmarket.synthesis import SynthesisNet, fit_synthesis, make_rollout_data, next_bar_target, rollout_loss

torch.set_num_threads(1)  # the machine's cores are shared; results do not depend on it


def ref_autocorr(x, lag):
    "Pooled autocorrelation written out: a loop over paths and bars."
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    num = den = 0.0
    for path in x:
        d = path - path.mean()
        den += sum(v * v for v in d)
        num += sum(d[t] * d[t + lag] for t in range(len(d) - lag))
    return num / den if den > 0 and lag < x.shape[1] else float("nan")


@pytest.mark.parametrize("shape", [(300,), (1, 50), (7, 40), (25, 3)])
def test_autocorr_matches_loop(shape):
    x = np.random.default_rng(sum(shape)).standard_t(3, shape)
    lags = [1, 2, 5, 39, 40]
    got = autocorr(x, lags)
    want = np.array([ref_autocorr(x, l) for l in lags])
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], rtol=1e-10, atol=1e-12)


def test_autocorr_single_series_is_the_textbook_estimator():
    x = np.cumsum(np.random.default_rng(3).standard_normal(500))
    d = x - x.mean()
    full = np.correlate(d, d, "full")[len(d) - 1:]  # Σ_t d_t d_{t+ℓ}, ℓ = 0, 1, …
    np.testing.assert_allclose(autocorr(x, range(1, 20)), full[1:20] / full[0], rtol=1e-10)


def test_autocorr_pools_without_crossing_paths():
    x = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]])
    np.testing.assert_allclose(autocorr(x, [1]), [-1 / 6], rtol=1e-12)  # joined end to end it would be −1/2
    np.testing.assert_allclose(autocorr(x.ravel(), [1]), [-1 / 2], rtol=1e-12)


def test_autocorr_undefined_and_bad_input():
    assert np.isnan(autocorr(np.full((3, 8), 2.5), [1, 2])).all()
    assert np.isnan(autocorr(np.arange(4.0), [4]))[0]
    with pytest.raises(ValueError, match="non-finite values .first at path 1, bar 2"):
        autocorr(np.array([[1.0, 2.0, 3.0], [1.0, 2.0, np.inf]]), [1])
    with pytest.raises(ValueError, match="lags must be >= 1"):
        autocorr(np.arange(5.0), [-1])
    with pytest.raises(ValueError, match="non-empty"):
        autocorr(np.array([]), [1])


def test_stylized_facts_match_reference_formulas():
    rng = np.random.default_rng(11)
    ret = rng.standard_t(4, (30, 200)) * 1e-3
    vol = np.abs(ret) * 1e6 + rng.uniform(1, 2, ret.shape)
    keep = rng.uniform(size=ret.shape) > 0.05
    ret = np.where(keep, ret, 0.0)
    f = stylized_facts(ret, vol, keep, ret_lags=4, abs_lags=12)
    r = ret[keep]
    m = r.mean()
    np.testing.assert_allclose(f["std"], np.sqrt(np.mean((r - m) ** 2)), rtol=1e-12)
    np.testing.assert_allclose(f["kurtosis"], np.mean((r - m) ** 4) / np.mean((r - m) ** 2) ** 2 - 3, rtol=1e-10)
    np.testing.assert_allclose(f["acf_ret"], [ref_autocorr(ret, l) for l in range(1, 5)], rtol=1e-10)
    np.testing.assert_allclose(f["acf_abs"], [ref_autocorr(np.abs(ret), l) for l in range(1, 13)], rtol=1e-10)
    a, v = np.abs(r), vol[keep]
    da, dv = a - a.mean(), v - v.mean()
    pearson = np.sum(da * dv) / np.sqrt(np.sum(da ** 2) * np.sum(dv ** 2))
    np.testing.assert_allclose(f["vol_vol_corr"], pearson, rtol=1e-10)
    np.testing.assert_array_equal(f["returns"], r)


def test_bars_stylized_facts_match_reference():
    bars = synthetic_bars("2024-03-01", "2024-03-28", freq="5min", seed=4)
    day = bars.index.normalize()
    r = np.log(bars["close"]).groupby(day).diff()
    ok = r.notna().to_numpy()  # the first bar of a session has no within-session return
    rr, vv = r.to_numpy()[ok], bars["volume"].to_numpy()[ok]
    got_r, got_v = bar_returns(bars)
    np.testing.assert_allclose(got_r, rr, rtol=1e-12)
    np.testing.assert_array_equal(got_v, vv)
    f = bars_stylized_facts(bars, max_lag=7)
    acf_abs = np.array([ref_autocorr(np.abs(rr), l) for l in range(1, 8)])
    z = (rr - rr.mean()) / rr.std()
    daily = np.diff(np.log(bars["close"].groupby(day).last().to_numpy()))  # March 2024: no holes in the sessions
    want = pd.Series({"bars": len(bars), "bar_minutes": 5, "ret_std": rr.std(), "excess_kurtosis": np.mean(z ** 4) - 3,
                      "acf_ret_lag1": ref_autocorr(rr, 1), "acf_abs_lag1": acf_abs[0],
                      "acf_abs_mean_1_7": acf_abs.mean(),
                      "acf_abs_lag7": acf_abs[-1], "corr_volume_absret": np.corrcoef(np.abs(rr), vv)[0, 1],
                      "daily_vol": daily.std(), "daily_excess_kurtosis": pd.Series(daily).kurt()}, dtype=float)
    assert list(f.index) == list(want.index)
    np.testing.assert_allclose(f.to_numpy(), want.to_numpy(), rtol=1e-9)


def ref_early_stopping(model, Xt, yt, Xv, yv, cfg, gen, loss_of, draw=None):
    "The early-stopping loop written out: Adam, a fresh permutation per epoch, optional per-batch draw."
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    best, best_loss, since, hist = copy.deepcopy(model.state_dict()), float("inf"), 0, []
    for _ in range(cfg.max_epochs):
        model.train()
        tot = 0.0
        for idx in torch.randperm(len(Xt), generator=gen).split(cfg.batch_size):
            loss = loss_of(model(Xt[idx]), yt[idx])
            if draw is not None: loss = loss + draw(gen)
            opt.zero_grad(); loss.backward(); opt.step()
            tot += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            vloss = loss_of(model(Xv), yv).item() if len(Xv) else tot / len(Xt)
        hist.append(vloss)
        if vloss < best_loss - 1e-7: best, best_loss, since = copy.deepcopy(model.state_dict()), vloss, 0
        else: since += 1
        if since >= cfg.patience: break
    model.load_state_dict(best)
    return hist


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("val_frac", [0.25, 0.0])
def test_fit_il_agent_is_the_reference_loop(val_frac):
    rng = np.random.default_rng(5)
    X = rng.uniform(0, 1, (500, 6)).astype(np.float32)
    y = np.sign(X[:, 0] - 0.5).astype(np.float32)
    cfg = ILConfig(hidden=(12,), lr=1e-2, batch_size=40, max_epochs=25, patience=3, val_frac=val_frac)
    agent, hist = fit_il_agent(X, y, cfg, seed=9)
    val = split_tail(len(X), val_frac)
    with torch.random.fork_rng():
        torch.manual_seed(9)
        ref = ILAgent(6, cfg.hidden)
    t = torch.from_numpy
    ref_hist = ref_early_stopping(ref, t(X[~val]), t(y[~val]), t(X[val]), t(y[val]), cfg,
                                  torch.Generator().manual_seed(9), lambda p, q: ((p - q) ** 2).mean())
    assert same_weights(agent, ref)
    assert hist["val_loss"] == ref_hist


def test_loop_keeps_the_callers_draw_order():
    "A draw from the generator inside the minibatch loss (the rollout starts) follows the epoch's permutation."
    rng = np.random.default_rng(6)
    X, w = torch.from_numpy(rng.standard_normal((200, 3)).astype(np.float32)), torch.tensor([0.5, -1.0, 2.0])
    y = X @ w
    Xt, yt, Xv, yv = X[:150], y[:150], X[150:], y[150:]
    cfg = ILConfig(lr=0.05, batch_size=16, max_epochs=8, patience=2)
    noise = torch.from_numpy(rng.standard_normal(1000).astype(np.float32))
    extra = lambda g: 1e-2 * noise[torch.randint(1000, (4,), generator=g)].pow(2).mean()  # stand-in for a rollout loss

    def fresh():
        with torch.random.fork_rng():
            torch.manual_seed(2)
            return nn.Linear(3, 1)
    mse = lambda p, q: ((p.squeeze(-1) - q) ** 2).mean()
    model, gen = fresh(), torch.Generator().manual_seed(2)

    def batch_loss(idx):
        e = extra(gen)
        return mse(model(Xt[idx]), yt[idx]) + e, {"extra": e.item()}
    hist = fit_early_stopping(model, batch_loss, lambda: mse(model(Xv), yv).item(), len(Xt), cfg, gen, ("extra",))
    ref = fresh()
    ref_hist = ref_early_stopping(ref, Xt, yt, Xv, yv, cfg, torch.Generator().manual_seed(2), mse, draw=extra)
    assert same_weights(model, ref)
    assert hist["val_loss"] == ref_hist
    assert len(hist["extra"]) == hist["epochs"] and all(v > 0 for v in hist["extra"])


def ref_fit_synthesis(act, target, cfg, seed, roll=None):
    "`fit_synthesis` with its loop written out by hand (the rollout starts drawn per minibatch after the permutation)."
    A, y = np.asarray(act, dtype=np.float32), np.asarray(target, dtype=np.float64)
    val = split_tail(len(A), cfg.val_frac)
    scale = float(y[~val].std()) or 1.0
    At, yt = torch.from_numpy(A[~val]), torch.from_numpy((y[~val] / scale).astype(np.float32))
    Av, yv = torch.from_numpy(A[val]), torch.from_numpy((y[val] / scale).astype(np.float32))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = SynthesisNet(A.shape[1], cfg)
    net.scale.fill_(scale)
    gen = torch.Generator().manual_seed(seed)
    draw = None
    if roll is not None:
        starts = torch.from_numpy(np.flatnonzero(~val[roll.row]))
        draw = lambda g: rollout_loss(net, roll, starts[torch.randint(len(starts), (min(cfg.batch_size, len(starts)),),
                                                                         generator=g)], cfg.rollout_steps, scale)
    hist = ref_early_stopping(net, At, yt, Av, yv, cfg, gen, lambda p, q: ((p[0] / scale - q) ** 2).mean(), draw)
    return net, hist


@pytest.fixture(scope="module")
def rollout_case():
    "A small synthetic market, a toy IL ensemble on its features, the synthesis rows and 3-step rollouts."
    bars = synthetic_bars("2024-01-02", "2024-01-12", freq="5min", seed=1)
    cfg = get_config("quick", synthesis={"rollout_steps": 3, "max_epochs": 3, "patience": 2, "batch_size": 128})
    feats = compute_features(bars, cfg.features)[FEATURES]
    feats = feats[np.isfinite(feats.to_numpy()).all(1)]
    scaler = MinMaxScaler().fit(feats)
    Xf = scaler.transform(feats.to_numpy()).astype(np.float32)
    lab = np.sign(np.random.default_rng(1).standard_normal(len(Xf))).astype(np.float32)
    agents = [fit_il_agent(Xf, lab, ILConfig(max_epochs=1, hidden=(8,)), s)[0] for s in range(2)]
    il = ILArtifacts(ILEnsemble.from_agents(agents).eval(), agents[0], scaler, [])
    target = next_bar_target(bars["close"]).reindex(feats.index)
    ok = np.isfinite(target.to_numpy())
    act, _ = il.act(feats[ok])
    return act, target.to_numpy()[ok], cfg.synthesis, make_rollout_data(bars, cfg, il, feats.index[ok])


def test_fit_synthesis_is_the_reference_loop(rollout_case):
    act, target, cfg, roll = rollout_case
    for c, r in [(SynthesisConfig(max_epochs=6, patience=2, batch_size=64, hidden=(16, 8)), None), (cfg, roll)]:
        net, hist = fit_synthesis(act, target, c, 4, r)
        ref, ref_hist = ref_fit_synthesis(act, target, c, 4, r)
        assert same_weights(net, ref)
        assert hist["val_loss"] == ref_hist
        assert len(hist["rollout_loss"]) == hist["epochs"]
        assert (all(v > 0 for v in hist["rollout_loss"]) if r is not None else set(hist["rollout_loss"]) == {0.0})
