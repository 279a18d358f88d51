"""Replay memory (SPEC §8, Table 5): bytes per transition and for 9×10⁶ transitions against the theoretical minimum."""
from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import rss_bytes, time_runs, unavailable, write_result

OBS_DIM = 12  # F + 2: ten features, cash and position (eq. 3)
CAPACITY = 9_000_000
N_ENVS = 1024  # transitions per `add`, as a vector env of this size fills the buffer


def theoretical_bytes(obs_dim: int) -> int:
    "obs and next obs as float32, action and reward float32, done one byte."
    return 2 * obs_dim * 4 + 4 + 4 + 1


def tensor_bytes(obj) -> int:
    "Bytes of every torch tensor / NumPy array held as an attribute of `obj` (views of one storage counted once)."
    import torch
    seen, total = set(), 0
    for v in vars(obj).values():
        if isinstance(v, torch.Tensor):
            key = v.untyped_storage().data_ptr()
            if key in seen: continue
            seen.add(key)
            total += v.untyped_storage().nbytes()
        elif isinstance(v, np.ndarray):
            base = v if v.base is None else v.base
            if id(base) in seen: continue
            seen.add(id(base))
            total += base.nbytes
    return total


def sb3_bytes_per_transition(obs_dim: int, optimize_memory_usage: bool) -> float | None:
    "stable-baselines3's ReplayBuffer on the same spaces: array bytes per transition (measured on a small capacity)."
    try:
        import gymnasium as gym
        from stable_baselines3.common.buffers import ReplayBuffer as SB3Replay
    except ImportError:
        return None
    cap = 10_000
    obs_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
    act_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    buf = SB3Replay(cap, obs_space, act_space, device="cpu", n_envs=1, optimize_memory_usage=optimize_memory_usage,
                    handle_timeout_termination=not optimize_memory_usage)
    return tensor_bytes(buf) / cap


def run(capacity: int) -> dict:
    "Allocate the full buffer, fill every slot through `add`, and compare tensor bytes and RSS growth with the minimum."
    t0 = time.perf_counter()
    rows, notes, metrics = [], [], {}
    try:
        import torch
        from ilmarket.ddpg import ReplayBuffer
    except ImportError as e:
        metrics["replay_bytes_vs_theoretical"] = unavailable(f"ilmarket.ddpg.ReplayBuffer not available ({e})")
        return {"metrics": metrics, "rows": rows, "notes": notes, "profiles": {}, "elapsed_s": time.perf_counter() - t0}
    torch.manual_seed(0)
    theo = theoretical_bytes(OBS_DIM)
    gc.collect()
    rss0 = rss_bytes()
    buf = ReplayBuffer(capacity, OBS_DIM, batch_size=128, seed=0)
    rss_alloc = rss_bytes() - rss0
    nb = tensor_bytes(buf)
    obs = torch.randn(N_ENVS, OBS_DIM)
    nxt = torch.randn(N_ENVS, OBS_DIM)
    act, rew, done = torch.rand(N_ENVS) * 2 - 1, torch.randn(N_ENVS), torch.zeros(N_ENVS)
    n_adds = -(-capacity // N_ENVS)
    t_fill = time.perf_counter()
    for _ in range(n_adds): buf.add(obs, act, rew, nxt, done)
    t_fill = time.perf_counter() - t_fill
    rss_full = rss_bytes() - rss0
    samp = time_runs(lambda: [buf.sample() for _ in range(1000)], repeats=3)
    per_tr = nb / capacity
    ratio = per_tr / theo
    metrics["replay_bytes_vs_theoretical"] = {"value": ratio, "unit": f"{per_tr:.1f} B / {theo} B per transition"}
    metrics["replay_bytes_per_transition"] = {"value": per_tr, "unit": "bytes (tensor storage / capacity)"}
    metrics["replay_rss_bytes_per_transition"] = {"value": rss_full / capacity, "unit": "bytes (RSS growth once every slot is written / capacity)"}
    rows.append({"what": f"ilmarket ReplayBuffer, capacity {capacity:,}", "bytes/transition": per_tr,
                 "total MiB": nb / 2**20, "RSS after allocation MiB": rss_alloc / 2**20,
                 "RSS when full MiB": rss_full / 2**20, "vs theoretical": ratio})
    rows.append({"what": "theoretical minimum (obs+next obs 2×12 float32, act, rew float32, done 1 byte)",
                 "bytes/transition": float(theo), "total MiB": theo * capacity / 2**20, "vs theoretical": 1.0})
    rows.append({"what": "sequential layout (each obs stored once, next obs = the following row)",
                 "bytes/transition": float(OBS_DIM * 4 + 9), "total MiB": (OBS_DIM * 4 + 9) * capacity / 2**20,
                 "vs theoretical": (OBS_DIM * 4 + 9) / theo})
    for opt in (False, True):
        b = sb3_bytes_per_transition(OBS_DIM, opt)
        if b is not None:
            rows.append({"what": f"stable-baselines3 ReplayBuffer (optimize_memory_usage={opt})", "bytes/transition": b,
                         "total MiB": b * capacity / 2**20, "vs theoretical": b / theo})
    metrics["replay_fill_transitions_per_s"] = {"value": capacity / t_fill, "unit": f"add() of {N_ENVS} transitions at a time (one fill of the whole buffer)"}
    metrics["replay_sample_batches_per_s"] = {"value": 1000 / samp["median_s"], "unit": "sample() of 128 rows"}
    notes.append(f"{n_adds:,} add() calls of {N_ENVS} transitions fill all {capacity:,} slots in {t_fill:.2f} s; the buffer "
                 "is one preallocated float32 tensor of width 2D+3 (done stored as float32: 3 bytes above the minimum)")
    notes.append("RSS after allocation stays small because pages are touched only on write; RSS when full is the real "
                 "memory cost and should equal the tensor bytes")
    notes.append("the 'sequential layout' row is a lower bound for a layout this project does not use: it is what storing "
                 "each state once would need (plus the final obs of finished episodes)")
    return {"metrics": metrics, "rows": rows, "notes": notes, "profiles": {}, "elapsed_s": time.perf_counter() - t0}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--capacity", type=int, default=CAPACITY)
    ap.add_argument("--smoke", action="store_true", help="a 10⁶ buffer instead of 9×10⁶")
    a = ap.parse_args()
    write_result("replay", {**run(1_000_000 if a.smoke else a.capacity), "doc": " ".join(__doc__.split())})
