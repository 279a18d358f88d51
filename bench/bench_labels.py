"""Expert labels (SPEC §4): every bar of the real 5-minute data, and 1,000,000 synthetic 1-minute bars."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import load_real_bars, profile_top, time_runs, unavailable, write_result

GOAL_S = 1.0
N_CHECK = 3_000  # bars checked against the brute-force definition


def synthetic_closes(n: int, seed: int = 0) -> tuple[np.ndarray, str]:
    "≥ `n` closes of `ilmarket.data.synthetic_bars` at 1-minute bars (first `n` kept), and where they came from."
    from ilmarket.data import synthetic_bars
    bars = synthetic_bars(start="2014-01-02", end="2024-07-31", freq="1min", seed=seed)
    close = bars["close"].to_numpy(np.float64)
    if len(close) < n:  # tile with a level shift so each copy continues from the last close
        k = -(-n // len(close))
        close = np.concatenate([close * (close[-1] / close[0]) ** i for i in range(k)])
    return close[:n], f"synthetic_bars 1min 2014-01-02..2024-07-31 ({len(bars):,} bars), first {n:,}"


def brute_labels(close: np.ndarray, theta: float) -> np.ndarray:
    "The definition, bar by bar: +1 if the up barrier is touched first, −1 if the down one, 0 if neither by the end."
    out = np.zeros(len(close), np.int8)
    for t in range(len(close) - 1):
        fut = close[t + 1:]
        up = np.flatnonzero(fut >= close[t] * (1 + theta))
        dn = np.flatnonzero(fut <= close[t] * (1 - theta))
        iu = up[0] if len(up) else np.inf
        idn = dn[0] if len(dn) else np.inf
        out[t] = 1 if iu < idn else (-1 if idn < iu else 0)
    return out


def run(n_synth: int, repeats: int) -> dict:
    "Time `expert_labels` on the real 5-minute closes and on a million synthetic 1-minute closes."
    t0 = time.perf_counter()
    rows, notes, metrics, profiles = [], [], {}, {}
    try:
        from ilmarket.labels import expert_labels
    except ImportError as e:
        metrics["labels_1m_bars_seconds"] = unavailable(f"ilmarket.labels not available ({e})")
        metrics["labels_real_5min_seconds"] = unavailable(f"ilmarket.labels not available ({e})")
        return {"metrics": metrics, "rows": rows, "notes": notes, "profiles": profiles, "elapsed_s": time.perf_counter() - t0}
    from ilmarket.core import get_config
    theta = get_config("quick").labels.theta
    notes.append(f"θ = {theta} (config default); the whole series is one segment (its end is the vertical barrier); "
                 f"median of {repeats} runs after one warm-up")
    bars = load_real_bars()
    if bars is None:
        metrics["labels_real_5min_seconds"] = unavailable("no real data file (ILMARKET_DATA or shared/data/qqq_5min.parquet)")
    else:
        c = bars["close"].to_numpy(np.float64)
        tr = time_runs(lambda: expert_labels(c, theta), repeats=repeats)
        lab = np.asarray(expert_labels(c, theta))
        rows.append({"what": f"real {bars.attrs.get('freq', '5min')} bars ({bars.attrs.get('source')})", "bars": len(c),
                     "median_s": tr["median_s"], "bars_per_s": len(c) / tr["median_s"],
                     "labels (-1/0/+1)": "/".join(str(int((lab == v).sum())) for v in (-1, 0, 1))})
        metrics["labels_real_5min_seconds"] = {"value": tr["median_s"], "unit": f"s for {len(c):,} bars"}
        ok = np.array_equal(np.asarray(expert_labels(c[:N_CHECK], theta)), brute_labels(c[:N_CHECK], theta))
        notes.append(f"first {N_CHECK:,} real bars as their own segment: expert_labels "
                     f"{'equals' if ok else 'DIFFERS FROM'} the brute-force definition")
    try:
        close, src = synthetic_closes(n_synth)
    except ImportError as e:
        metrics["labels_1m_bars_seconds"] = unavailable(f"ilmarket.data.synthetic_bars not available ({e})")
        return {"metrics": metrics, "rows": rows, "notes": notes, "profiles": profiles, "elapsed_s": time.perf_counter() - t0}
    ts = time_runs(lambda: expert_labels(close, theta), repeats=repeats)
    lab = np.asarray(expert_labels(close, theta))
    rows.append({"what": src, "bars": len(close), "median_s": ts["median_s"], "bars_per_s": len(close) / ts["median_s"],
                 "labels (-1/0/+1)": "/".join(str(int((lab == v).sum())) for v in (-1, 0, 1))})
    metrics["labels_1m_bars_seconds"] = {"value": ts["median_s"], "goal": ["<=", GOAL_S], "runs": ts["runs_s"],
                                         "unit": f"s for {len(close):,} 1-minute bars"}
    if ts["median_s"] > GOAL_S:
        profiles["expert_labels on 1M 1-minute bars (goal ≤ 1 s missed)"] = profile_top(lambda: expert_labels(close, theta))
    return {"metrics": metrics, "rows": rows, "notes": notes, "profiles": profiles, "elapsed_s": time.perf_counter() - t0}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    write_result("labels", {**run(a.bars, a.repeats), "doc": " ".join(__doc__.split())})
