"""Shared helpers of the bench/ scripts: timing, machine facts, profiles, bar loading and result files."""
from __future__ import annotations

import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ilmarket.core import atomic_write, project_root

ROOT = project_root()
OUT = ROOT / "reports" / "bench"
DATA_NAME = "qqq_5min.parquet"
PACKAGES = ["ilmarket", "torch", "numpy", "pandas", "ta-lib", "stable_baselines3", "gymnasium", "scipy", "pyarrow"]


def time_runs(fn: Callable[[], Any],  # the work to time, called without arguments
              repeats: int = 5,  # timed runs after the warm-up
              warmup: int = 1,  # untimed runs first (caches, allocator, lazy imports)
             ) -> dict:
    "Median, min and every wall time (seconds) of `repeats` calls after `warmup` calls."
    for _ in range(warmup): fn()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(runs), "min_s": min(runs), "runs_s": runs}


def time_pair(fa: Callable[[], Any], fb: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> tuple[dict, dict, dict]:
    "Time two alternatives interleaved (a, b, a, b, …) so load on the shared machine hits both alike; also the per-round ratio a/b."
    for _ in range(warmup): fa(); fb()
    ta, tb = [], []
    for _ in range(repeats):
        t0 = time.perf_counter(); fa(); t1 = time.perf_counter(); fb(); t2 = time.perf_counter()
        ta.append(t1 - t0); tb.append(t2 - t1)
    ratios = [a / b for a, b in zip(ta, tb)]
    ra = {"median_s": statistics.median(ta), "min_s": min(ta), "runs_s": ta}
    rb = {"median_s": statistics.median(tb), "min_s": min(tb), "runs_s": tb}
    return ra, rb, {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios), "runs": ratios}


def time_interleaved(fns: dict[str, Callable[[], Any]],  # name → the work to time
                     repeats: int = 5,  # rounds after the warm-up
                     warmup: int = 1,
                    ) -> dict[str, list[float]]:
    "Wall times of every function, run round-robin (a, b, c, a, b, c, …) so that load on the machine hits all alike."
    for _ in range(warmup):
        for f in fns.values(): f()
    runs: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            runs[k].append(time.perf_counter() - t0)
    return runs


def round_ratio(num: list[float], den: list[float]) -> dict:
    "Median, min and max of the per-round ratios num/den (each pair measured in the same round)."
    r = [a / b for a, b in zip(num, den)]
    return {"value": statistics.median(r), "min": min(r), "max": max(r), "runs": r}


def cpu_model() -> str:
    "The CPU model name from /proc/cpuinfo (or the platform's word for it)."
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"): return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict[str, str]:
    "Versions of Python and of the libraries whose speed is measured."
    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try: out[pkg] = version(pkg)
        except PackageNotFoundError: out[pkg] = "not installed"
    return out


def blas_info() -> dict:
    "Which BLAS NumPy and torch use, and the OpenBLAS variables of this machine (recorded, never changed)."
    info: dict[str, Any] = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        info["numpy_blas"] = f"{blas.get('name')} {blas.get('version')}".strip()
    except Exception as e:
        info["numpy_blas"] = f"unknown ({type(e).__name__})"
    try:
        import torch
        info["torch_threads_default"] = torch.get_num_threads()
        info["torch_blas"] = "mkl" if torch.backends.mkl.is_available() else "other"
        info["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
    except Exception as e:
        info["torch_threads_default"] = f"unknown ({type(e).__name__})"
    return info


def machine_info() -> dict:
    "Cores, CPU model, memory, load, BLAS and library versions of the machine the figures come from."
    try: affinity = len(os.sched_getaffinity(0))
    except AttributeError: affinity = os.cpu_count()
    try: mem_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError): mem_gib = None
    return {"cores": os.cpu_count(), "cores_usable": affinity, "cpu_model": cpu_model(), "memory_gib": mem_gib,
            "platform": platform.platform(), "loadavg_1m": round(os.getloadavg()[0], 2), "versions": versions(),
            "blas": blas_info()}


def profile_top(fn: Callable[[], Any], n: int = 10) -> str:
    "cProfile of one call of `fn`: the top `n` functions by cumulative time, as text."
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    st.strip_dirs().sort_stats("cumulative").print_stats(n)
    lines = [l.rstrip() for l in buf.getvalue().splitlines() if l.strip()]
    start = next((i for i, l in enumerate(lines) if l.lstrip().startswith("ncalls")), 0)
    return "\n".join(lines[start:start + n + 1])


def rss_bytes() -> int:
    "Resident set size of this process now (bytes)."
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"): return int(line.split()[1]) * 1024
    raise OSError("VmRSS not found in /proc/self/status")


def data_path() -> Path | None:
    "The real bars: what `ilmarket.data.resolve_data_path` finds, else `shared/data/` beside the project; None when absent."
    from ilmarket.data import resolve_data_path
    found, _ = resolve_data_path(None, ROOT)
    if found is not None: return found
    beside = ROOT.parent / "shared" / "data" / DATA_NAME
    return beside if beside.exists() else None


def load_real_bars() -> pd.DataFrame | None:
    "The real bars through `ilmarket.data.load_bars` (plain parquet read when that stage is missing), or None."
    p = data_path()
    if p is None: return None
    try:
        from ilmarket.data import load_bars
        return load_bars(p)
    except ImportError:
        df = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
        if "timestamp" in df.columns: df = df.set_index("timestamp")
        df = df[["open", "high", "low", "close", "volume"]].astype("float64")
        df.attrs.update(source=p.name, freq="5min")
        return df


def tile_bars(bars: pd.DataFrame,  # bars with a tz-aware DatetimeIndex
              n_min: int,  # at least this many rows in the result
             ) -> pd.DataFrame:
    "Repeat `bars` end to end, each copy shifted by whole weeks of wall time (weekday and time of day kept), until ≥ `n_min` rows."
    k = -(-n_min // len(bars))
    idx = bars.index
    tz = idx.tz
    naive = idx.tz_localize(None) if tz is not None else idx
    weeks = pd.Timedelta(weeks=int((naive[-1] - naive[0]) / pd.Timedelta(weeks=1)) + 1)
    parts_idx = [naive + i * weeks for i in range(k)]
    new_idx = parts_idx[0].append(parts_idx[1:])
    if tz is not None: new_idx = new_idx.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    out = pd.DataFrame(np.tile(bars.to_numpy(), (k, 1)), index=new_idx, columns=bars.columns)
    out.index.name = bars.index.name
    out.attrs.update(bars.attrs)
    out.attrs["source"] = f"{bars.attrs.get('source', 'bars')} tiled x{k}"
    return out[out.index.notna()]


def unavailable(reason: str) -> dict:
    "A figure that could not be measured, with the reason (never a made-up number)."
    return {"value": None, "reason": reason}


def write_result(name: str, result: dict) -> Path:
    "Write `reports/bench/<name>.json` atomically, with the machine facts added."
    result = {"name": name, "machine": machine_info(), **result}
    return atomic_write(OUT / f"{name}.json", json.dumps(result, indent=1, default=_jsonable) + "\n")


def _jsonable(o: Any) -> Any:
    if isinstance(o, (np.integer,)): return int(o)
    if isinstance(o, (np.floating,)): return float(o)
    if isinstance(o, np.ndarray): return o.tolist()
    if isinstance(o, Path): return str(o)
    return str(o)


def torch_op_table(fn: Callable[[], Any], top: int = 10) -> str:
    "torch.profiler's top ops by self CPU time over one call of `fn`."
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top, max_name_column_width=40)


def profile_ddpg_update(n_updates: int = 200) -> dict[str, str]:
    "Where a DDPG gradient update spends its time (sample + update at the config's sizes, one torch thread)."
    import torch
    from ilmarket.core import get_config
    from ilmarket.ddpg import DDPG, ReplayBuffer
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = get_config("quick").ddpg
    d, n = 12, 10_000
    agent, buf = DDPG(d, cfg), ReplayBuffer(n, d, cfg.batch_size, seed=0)
    buf.add(torch.randn(n, d), torch.rand(n) * 2 - 1, torch.randn(n), torch.randn(n, d), torch.zeros(n))
    work = lambda: [agent.update(*buf.sample()) for _ in range(n_updates)]
    work()
    return {f"DDPG sample + update, {n_updates} updates (cProfile)": profile_top(work),
            f"torch ops of {n_updates} DDPG updates (torch.profiler, by self CPU time)": torch_op_table(work)}
