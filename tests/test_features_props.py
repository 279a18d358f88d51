"""Property tests of the features (ilmarket.features): the O(1) streaming update equals the batch computation."""
import numpy as np
import pandas as pd
import torch
from hypothesis import given, settings, strategies as st

from ilmarket.core import FeatureConfig
from ilmarket.features import FEATURES, FeatureStream, MinMaxScaler, compute_features, session_starts

TZ = "America/New_York"


def random_bars(seed: int, n: int, p_new_day: float, p_zero_vol: float) -> pd.DataFrame:
    "n random bars; a new session starts with probability p_new_day (first bar of a later calendar day)."
    rng = np.random.default_rng(seed)
    new_day = rng.random(n) < p_new_day
    new_day[0] = True
    day = np.cumsum(new_day) - 1
    k = np.arange(n) - np.maximum.accumulate(np.where(new_day, np.arange(n), 0))
    ts = pd.Timestamp("2021-01-04 09:30", tz=TZ) + pd.to_timedelta(day * 1, unit="D") + pd.to_timedelta(k * 5, unit="min")
    close = 50 * np.exp(np.cumsum(rng.normal(0, rng.choice([1e-4, 1e-2, 5e-2]), n)))
    open_ = close * np.exp(rng.normal(0, 1e-3, n))
    high = np.maximum(open_, close) * (1 + rng.exponential(1e-3, n))
    low = np.minimum(open_, close) * (1 - rng.exponential(1e-3, n))
    vol = rng.lognormal(10, 2, n) * (rng.random(n) >= p_zero_vol)
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": vol},
                        index=pd.DatetimeIndex(ts, name="timestamp"))


def rel_err(got: np.ndarray, want: np.ndarray) -> float:
    "Max |got − want| / max(|want|, 1e-6 · column scale) (relative columns cross zero)."
    scale = np.abs(want).max(axis=0, keepdims=True)
    return float((np.abs(got - want) / np.maximum(np.maximum(np.abs(want), 1e-6 * scale), 1e-300)).max(initial=0.0))


def stream_all(bars_list, hist, cfg):
    "Stream every series from its history to the end; (T−h, N, F) streamed features."
    stream = FeatureStream.from_history([b.iloc[:h] for b, h in zip(bars_list, hist)], cfg)
    cols = [{c: torch.tensor(b[c].to_numpy()) for c in ["open", "high", "low", "close", "volume"]} for b in bars_list]
    flags = [torch.tensor(session_starts(b.index)) for b in bars_list]
    out = []
    for s in range(len(bars_list[0]) - max(hist)):
        rows = [h + s for h in hist]
        args = [torch.stack([cols[i][c][r] for i, r in enumerate(rows)]) for c in ["open", "high", "low", "close", "volume"]]
        out.append(stream.update(*args, torch.stack([flags[i][r] for i, r in enumerate(rows)])).numpy())
    return np.stack(out) if out else np.zeros((0, len(bars_list), len(FEATURES)))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 120), n_series=st.integers(1, 4),
       p_new_day=st.sampled_from([0.0, 0.05, 0.3, 1.0]), p_zero_vol=st.sampled_from([0.0, 0.2, 0.9]),
       relative=st.booleans(), window=st.sampled_from([1, 3, 30]), data=st.data())
def test_stream_equals_batch(seed, n, n_series, p_new_day, p_zero_vol, relative, window, data):
    cfg = FeatureConfig(relative=relative, relvol_window=window)
    bars_list = [random_bars(seed + i, n, p_new_day, p_zero_vol) for i in range(n_series)]
    hist = [data.draw(st.integers(0, n - 1)) for _ in range(n_series)]
    got = stream_all(bars_list, hist, cfg)
    for i, (b, h) in enumerate(zip(bars_list, hist)):
        want = compute_features(b, cfg).to_numpy()
        steps = n - max(hist)
        assert rel_err(got[:, i], want[h:h + steps]) < 1e-9


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 200), cut=st.integers(1, 199))
def test_no_lookahead(seed, n, cut):
    b = random_bars(seed, n, 0.1, 0.1)
    cut = min(cut, n - 1)
    np.testing.assert_allclose(compute_features(b.iloc[:cut]).to_numpy(), compute_features(b).to_numpy()[:cut], rtol=1e-12, atol=0)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), rows=st.integers(1, 50), cols=st.integers(1, 6), n_const=st.integers(0, 6))
def test_scaler_train_range_and_constant_columns(seed, rows, cols, n_const):
    rng = np.random.default_rng(seed)
    X = rng.normal(0, rng.lognormal(0, 3), (rows, cols))
    X[:, :min(n_const, cols)] = rng.normal()
    sc = MinMaxScaler().fit(X)
    Z = sc.transform(X)
    assert np.isfinite(Z).all() and Z.min() >= 0 and Z.max() <= 1 + 1e-12
    const = X.max(0) == X.min(0)
    assert (Z[:, const] == 0).all()
    np.testing.assert_allclose(sc.transform(torch.tensor(X)).numpy(), Z, rtol=1e-12, atol=0)
    back = MinMaxScaler().load_state_dict(sc.state_dict())
    np.testing.assert_array_equal(back.transform(X), Z)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 100), k=st.integers(1, 4), window=st.sampled_from([1, 5, 30]),
       data=st.data())
def test_streams_started_inside_one_frame(seed, n, k, window, data):
    cfg = FeatureConfig(relvol_window=window)
    b = random_bars(seed, n, 0.2, 0.2)
    pos = np.array([data.draw(st.integers(0, n - 2)) for _ in range(k)])
    stream = FeatureStream.from_positions(b, pos, cfg)
    want = compute_features(b, cfg).to_numpy()
    flags = session_starts(b.index)
    for step in range(1, n - pos.max()):
        r = pos + step
        got = stream.update(*(torch.tensor(b[c].to_numpy()[r]) for c in ["open", "high", "low", "close", "volume"]),
                            torch.tensor(flags[r])).numpy()
        assert rel_err(got, want[r]) < 1e-9
