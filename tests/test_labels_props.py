"""Property tests of the expert labels (ilmarket.labels): the fast first-passage search equals the definition."""
import numpy as np
import pandas as pd
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from ilmarket.labels import brute_labels, expert_labels, first_reach, label_segments

prices = arrays(np.float64, st.integers(0, 300), elements=st.floats(1.0, 200.0, allow_nan=False, allow_infinity=False))
thetas = st.sampled_from([1e-3, 0.01, 0.05, 0.1, 0.3, 0.9, 1.5])


@settings(max_examples=300, deadline=None)
@given(close=prices, theta=thetas)
def test_labels_equal_brute_force_on_any_prices(close, theta):
    got = expert_labels(close, theta)
    assert got.dtype == np.int8 and got.shape == close.shape
    np.testing.assert_array_equal(got, brute_labels(close, theta))


@settings(max_examples=150, deadline=None)
@given(n=st.integers(1, 2000), seed=st.integers(0, 2**32 - 1), vol=st.sampled_from([0.001, 0.01, 0.03]),
       theta=st.sampled_from([0.005, 0.02, 0.1]), tick=st.sampled_from([0.0, 0.01, 1.0]))
def test_labels_equal_brute_force_on_random_walks(n, seed, vol, theta, tick):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, vol, n)))
    if tick: close = np.maximum(np.round(close / tick) * tick, tick)  # price grid: many exact barrier touches
    np.testing.assert_array_equal(expert_labels(close, theta), brute_labels(close, theta))


@settings(max_examples=200, deadline=None)
@given(x=arrays(np.float64, st.integers(0, 200), elements=st.floats(-1e6, 1e6, allow_nan=False)),
       seed=st.integers(0, 2**16))
def test_first_reach_is_the_first_index_at_or_above(x, seed):
    thr = x + np.random.default_rng(seed).normal(0, 1 + np.abs(x).max(initial=0) / 10, len(x))
    n = len(x)
    want = np.array([next((j for j in range(t + 1, n) if x[j] >= thr[t]), n) for t in range(n)], dtype=np.int64)
    np.testing.assert_array_equal(first_reach(x, thr), want)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), cuts=st.lists(st.integers(1, 9), min_size=1, max_size=4, unique=True))
def test_segments_are_labelled_independently(seed, cuts):
    days = pd.bdate_range("2021-03-01", periods=10)
    idx = pd.DatetimeIndex([d + pd.Timedelta(hours=9, minutes=30 + 5 * k) for d in days for k in range(6)]).tz_localize("America/New_York")
    close = 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.02, len(idx))))
    bars = pd.DataFrame({"open": close, "high": close, "low": close, "close": close, "volume": 1.0}, index=idx.rename("timestamp"))
    edges = [days[0]] + [days[c] for c in sorted(cuts)] + [days[-1] + pd.Timedelta(days=1)]
    segs = pd.DataFrame({"seg_id": range(len(edges) - 1), "start": edges[:-1], "end": edges[1:]})
    lab = label_segments(bars, segs, 0.05)
    assert lab.index.equals(bars.index)
    for s, e in zip(edges[:-1], edges[1:]):
        part = bars[(bars.index.tz_localize(None).normalize() >= s) & (bars.index.tz_localize(None).normalize() < e)]
        np.testing.assert_array_equal(lab.loc[part.index].to_numpy(), brute_labels(part["close"].to_numpy(), 0.05))
