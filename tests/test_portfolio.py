"""Property tests of the fraction-of-assets accounting (ilmarket.portfolio)."""
import numpy as np
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from ilmarket.portfolio import apply_fractions, compute_metrics, execute_fractions, simulate_fractions

acts = arrays(np.float64, st.integers(1, 60), elements=st.floats(-1.5, 1.5, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(act=acts, seed=st.integers(0, 2**16), fee=st.sampled_from([0.0, 0.005, 0.02]))
def test_scan_equals_stepwise_and_stays_nonnegative(act, seed, fee):
    rng = np.random.default_rng(seed)
    px = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(act))))
    cash, shares, traded = simulate_fractions(px, act, cash0=1e6, fee=fee)
    c, k = torch.tensor([1e6], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)
    for t in range(len(act)):
        c, k, n = apply_fractions(c, k, torch.tensor([act[t]], dtype=torch.float64), torch.tensor(px[t], dtype=torch.float64), fee)
        np.testing.assert_allclose([cash[t], shares[t], traded[t]], [c.item(), k.item(), n.item()], rtol=1e-9, atol=1e-6)
    assert (cash >= 0).all() and (shares >= 0).all() and (traded >= 0).all()


@settings(max_examples=60, deadline=None)
@given(act=acts, fee=st.sampled_from([0.0, 0.005]))
def test_fees_are_the_only_leak_at_a_constant_price(act, fee):
    px = np.full(len(act), 50.0)
    path = execute_fractions(px, act, cash0=1e6, fee=fee)
    # at a constant price, value falls by exactly the fees paid: buys fee*n, sells fee*n
    np.testing.assert_allclose(path["value"], 1e6 - fee * path["traded"].cumsum(), rtol=1e-9, atol=1e-6)


def test_metrics_of_a_known_path():
    m = compute_metrics(np.array([110.0, 99.0, 121.0]), np.array([1.0, 2.0, 3.0]), initial=100.0, bar_minutes=1)
    r = np.array([0.1, -0.1, 121 / 99 - 1])
    assert np.isclose(m["total_return"], 0.21)
    assert np.isclose(m["max_drawdown"], -0.1)
    assert np.isclose(m["volatility"], r.std(ddof=1))
    assert np.isclose(m["sharpe"], r.mean() / r.std(ddof=1))
    assert np.isclose(m["sharpe_annualised"], m["sharpe"] * np.sqrt(252 * 390))
    assert np.isclose(m["turnover"], 6 / np.mean([110.0, 99.0, 121.0]))
