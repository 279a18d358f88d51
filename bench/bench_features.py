"""Features over ≥ 1,000,000 bars: the EMAs and MACD as `ilmarket.features` computes them against TA-Lib on the same
work, and the whole `compute_features` against a plain pandas implementation."""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (load_real_bars, profile_top, round_ratio, tile_bars, time_interleaved, unavailable,
                      write_result)

EMA_SPANS = (3, 6, 9, 18, 27)
MACD = (12, 26, 9)
WARM = 500  # bars after which TA-Lib's SMA-seeded EMAs have converged to the recursive ones


def bench_bars(n_min: int) -> pd.DataFrame:
    "The real bars tiled to ≥ `n_min` rows; synthetic bars (tiled) when no real file is found."
    bars = load_real_bars()
    if bars is None:
        from ilmarket.data import synthetic_bars
        bars = synthetic_bars(freq="1min")
    return tile_bars(bars, n_min)


def talib_emas_macd(close: np.ndarray) -> list[np.ndarray]:
    "TA-Lib: EMA for each span, and MACD with its signal line."
    import talib
    out = [talib.EMA(close, timeperiod=n) for n in EMA_SPANS]
    macd, signal, _ = talib.MACD(close, fastperiod=MACD[0], slowperiod=MACD[1], signalperiod=MACD[2])
    return out + [macd, signal]


def pandas_emas_macd(close: pd.Series) -> list[pd.Series]:
    "Plain pandas: `ewm(span, adjust=False)` EMAs, MACD and its signal."
    out = [close.ewm(span=n, adjust=False).mean() for n in EMA_SPANS]
    macd = close.ewm(span=MACD[0], adjust=False).mean() - close.ewm(span=MACD[1], adjust=False).mean()
    return out + [macd, macd.ewm(span=MACD[2], adjust=False).mean()]


def pandas_features(bars: pd.DataFrame, relvol_window: int = 30) -> pd.DataFrame:
    "All ten features in plain pandas, as SPEC §2 defines them (the straightforward implementation)."
    c, v = bars["close"], bars["volume"]
    emas = pandas_emas_macd(c)
    tp = (bars["high"] + bars["low"] + c) / 3.0
    day = bars.index.normalize()
    vwap = (tp * v).groupby(day).cumsum() / v.groupby(day).cumsum()
    rel = v / v.rolling(relvol_window).mean().shift(1)
    cols = {"ret_pct": c.pct_change() * 100.0}
    cols.update({f"ema_{n}": e for n, e in zip(EMA_SPANS, emas)})
    cols.update(macd=emas[-2], macd_signal=emas[-1], vwap=vwap, rel_vol=rel)
    return pd.DataFrame(cols)


def max_rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    "Largest |a−b|/|b| after the warm-up rows (NaNs ignored)."
    a, b = np.asarray(a, float)[WARM:], np.asarray(b, float)[WARM:]
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), 1e-12))) if ok.any() else float("nan")


def run(n_bars: int, repeats: int) -> dict:
    "Time ours, TA-Lib and pandas on the same tiled bars, round-robin; each ratio is the median of per-round ratios."
    t0 = time.perf_counter()
    bars = bench_bars(n_bars)
    close = bars["close"].to_numpy(np.float64)
    close_s = bars["close"]
    rows, notes, metrics, profiles = [], [], {}, {}
    notes.append(f"{len(bars):,} bars: {bars.attrs.get('source')} (bar size {bars.attrs.get('freq', '?')}); all variants "
                 f"run round-robin, {repeats} rounds after one warm-up round; each time is the median over rounds and each "
                 "ratio the median of the per-round ratios, so load from other processes hits both sides alike")
    fns = {"pandas ewm: 5 EMAs + MACD + signal": lambda: pandas_emas_macd(close_s)}
    try:
        import talib  # noqa: F401
        fns["TA-Lib: 5 EMAs + MACD + signal"] = lambda: talib_emas_macd(close)
        diffs = [max_rel_diff(a, b.to_numpy()) for a, b in zip(talib_emas_macd(close), pandas_emas_macd(close_s))]
        notes.append(f"TA-Lib vs pandas after {WARM} warm-up bars: max relative difference {max(diffs):.2e} "
                     "(TA-Lib seeds each EMA with an SMA; the recursion is the same)")
    except ImportError:
        notes.append("TA-Lib (`ta-lib` wheel) not installed: `pip install ta-lib==0.8.2` (a dev requirement)")
    try:
        from ilmarket.core import get_config
        from ilmarket.features import compute_features
        fcfg = get_config("quick").features
    except ImportError as e:
        compute_features, fcfg = None, None
        reason = f"ilmarket.features not available ({e})"
        for k in ("features_vs_talib_time_ratio", "features_all_vs_talib_time_ratio", "features_vs_pandas_time_ratio"):
            metrics[k] = unavailable(reason)
    relvol_window = 30 if fcfg is None else fcfg.relvol_window
    fns["pandas: all 10 features"] = lambda: pandas_features(bars, relvol_window)
    ours_key = sub_key = None
    if compute_features is not None:
        ours_key = "ilmarket compute_features: all 10 features"
        fns = {ours_key: lambda: compute_features(bars, fcfg), **fns}
        feats = compute_features(bars, fcfg)
        want = pandas_features(bars, fcfg.relvol_window)
        common = [c for c in want.columns if c in feats.columns]
        notes.append("compute_features vs the plain pandas features (max relative difference after warm-up): "
                     + ", ".join(f"{c} {max_rel_diff(feats[c].to_numpy(), want[c].to_numpy()):.1e}" for c in common))
        ema_fn = _our_ema_fn()
        if ema_fn is not None:
            sub_key = f"ilmarket {ema_fn[0]}: 5 EMAs + MACD + signal"
            fns = {ours_key: fns[ours_key], sub_key: lambda: _ours_emas_macd(ema_fn[1], close),
                   **{k: v for k, v in fns.items() if k != ours_key}}
    runs = time_interleaved(fns, repeats=repeats)
    for k, r in runs.items():
        med = statistics.median(r)
        rows.append({"what": k, "median_s": med, "bars_per_s": len(bars) / med, "min_s": min(r), "max_s": max(r)})
    tl = "TA-Lib: 5 EMAs + MACD + signal"
    if ours_key is not None:
        metrics["features_vs_pandas_time_ratio"] = {**round_ratio(runs[ours_key], runs["pandas: all 10 features"]),
                                                    "unit": "ours / plain pandas, all 10 features"}
        if tl not in runs:
            for k in ("features_vs_talib_time_ratio", "features_all_vs_talib_time_ratio"):
                metrics[k] = unavailable("TA-Lib not installed")
        else:
            metrics["features_vs_talib_time_ratio"] = (
                {**round_ratio(runs[sub_key], runs[tl]), "goal": ["<=", 2.0],
                 "unit": "ours / TA-Lib, the same 5 EMAs + MACD + signal (what compute_features computes them with)"}
                if sub_key else unavailable("ilmarket.features exposes no EMA function to time the same work alone"))
            metrics["features_all_vs_talib_time_ratio"] = {
                **round_ratio(runs[ours_key], runs[tl]),
                "unit": "ours, all 10 features (also VWAP, relative volume, returns, the frame) / TA-Lib, EMAs + MACD only"}
            if sub_key and metrics["features_vs_talib_time_ratio"]["value"] > 2.0:
                profiles[f"{sub_key} (goal ≤ 2× TA-Lib missed)"] = profile_top(fns[sub_key])
        if metrics["features_vs_pandas_time_ratio"]["value"] > 1.0:
            profiles["compute_features, all 10 features (slower than plain pandas)"] = profile_top(fns[ours_key])
    return {"metrics": metrics, "rows": rows, "notes": notes, "profiles": profiles, "n_bars": len(bars),
            "elapsed_s": time.perf_counter() - t0}


def _our_ema_fn():
    "The features module's own EMA function, when it exposes one: (name, fn(x, span) -> array)."
    import ilmarket.features as F
    for name in ("ema", "compute_ema", "ema_np", "ewm_recursive"):
        fn = getattr(F, name, None)
        if callable(fn): return name, fn
    return None


def _ours_emas_macd(fn, close: np.ndarray) -> list:
    "Our EMAs and MACD+signal through the module's EMA function."
    out = [fn(close, n) for n in EMA_SPANS]
    macd = np.asarray(fn(close, MACD[0])) - np.asarray(fn(close, MACD[1]))
    return out + [macd, fn(macd, MACD[2])]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    write_result("features", {**run(a.bars, a.repeats), "doc": " ".join(__doc__.split())})
