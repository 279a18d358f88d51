"""stable-baselines3 on the simulator: env-steps/s of `ilmarket.sb3.SB3VecEnv` over the batched simulator with N
markets against SB3's `DummyVecEnv` over N one-market `MarketEnv`s (same N, same networks, same random actions,
interleaved), at N = 4, 16 (the full profile's n_envs, the headline) and 64; and PPO's steps/s through each at N = 16.

Both sides run the paper-mode simulator of `bench_sim.py` (the project's classes at the paper's sizes, freshly
initialised, on the real bars): one `MarketSim` of N markets behind the adapter, N `MarketSim`s of one market each,
sharing the same bars, scaler and networks, behind `DummyVecEnv`. Timed blocks include the episode resets they
cross (both sides cross them at the same steps). Writes reports/bench/sb3.json.

    python bench/bench_sb3.py [--repeats 5] [--smoke]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sim import build
from benchlib import profile_top, round_ratio, time_interleaved, unavailable, write_result

NS = (4, 16, 64)
HEADLINE_N = 16
GOAL = 5.0
KEY = "sb3_adapter_vs_dummyvecenv_ratio"
ENV_STEPS_PER_BLOCK = 800  # env-steps per timed block and side: N markets × 800 / N steps
PPO_N_STEPS = 64  # PPO rollout length per env; the rest of PPO's settings are SB3's defaults


def one_market(sim):
    "A one-market `MarketSim` on the same bars, scaler and networks as `sim` (what `MarketEnv` needs)."
    from ilmarket.market import MarketSim
    return MarketSim(sim.cfg, sim.data, sim.scaler, sim.stream_factory, sim.ensemble, sim.former.net,
                     sim.former.residuals, n_envs=1, impact=sim.impact)


def make_pair(n: int, seed: int = 0):
    "(adapter over one simulator of n markets, DummyVecEnv over n one-market MarketEnvs), both seeded and reset."
    from stable_baselines3.common.vec_env import DummyVecEnv
    from ilmarket.market import MarketEnv
    from ilmarket.sb3 import SB3VecEnv
    sim, _ = build(n, seed=seed)
    adapter = SB3VecEnv(sim)
    dummy = DummyVecEnv([lambda: MarketEnv(one_market(sim)) for _ in range(n)])
    for env in (adapter, dummy):
        env.seed(seed)
        env.reset()
    return adapter, dummy


def measure_env_steps(n: int, repeats: int, per_block: int) -> dict:
    "Env-steps/s of both sides on the same pre-drawn actions, blocks run round-robin; per-round ratio."
    adapter, dummy = make_pair(n)
    steps = max(1, per_block // n)
    acts = np.random.default_rng(0).uniform(-1, 1, (steps, n, 1)).astype(np.float32)

    def block(env):
        for a in acts: env.step(a)
    runs = time_interleaved({"adapter": lambda: block(adapter), "dummy": lambda: block(dummy)}, repeats=repeats,
                            warmup=1)
    ratio = round_ratio(runs["dummy"], runs["adapter"])  # same env-steps on both sides: time ratio = throughput ratio
    med = lambda xs: sorted(xs)[len(xs) // 2]
    return {"adapter": adapter, "steps": steps, "adapter_sps": n * steps / med(runs["adapter"]),
            "dummy_sps": n * steps / med(runs["dummy"]), "ratio": ratio}


def measure_ppo(n: int, repeats: int, rollouts: int) -> dict:
    "PPO's steps/s (rollouts and updates) through each side, `learn` calls run round-robin."
    from stable_baselines3 import PPO
    adapter, dummy = make_pair(n)
    total = rollouts * PPO_N_STEPS * n
    models = {k: PPO("MlpPolicy", env, n_steps=PPO_N_STEPS, seed=0, device="cpu")
              for k, env in (("adapter", adapter), ("dummy", dummy))}
    runs = time_interleaved({k: (lambda m=m: m.learn(total_timesteps=total)) for k, m in models.items()},
                            repeats=repeats, warmup=1)
    med = lambda xs: sorted(xs)[len(xs) // 2]
    return {"total": total, "adapter_sps": total / med(runs["adapter"]), "dummy_sps": total / med(runs["dummy"]),
            "ratio": round_ratio(runs["dummy"], runs["adapter"]), "batch_size": models["adapter"].batch_size,
            "n_epochs": models["adapter"].n_epochs}


def run(ns: tuple[int, ...], repeats: int, per_block: int, ppo_rollouts: int) -> dict:
    "Env-steps/s of both sides at each N, PPO's steps/s through each at the headline N."
    import importlib
    import torch
    from ilmarket.core import get_config
    t0 = time.perf_counter()
    rows, notes, metrics, profiles = [], [], {}, {}
    try:
        importlib.import_module("ilmarket.sb3")  # needs stable-baselines3, the optional extra
    except ImportError as e:
        why = f"ilmarket.sb3 not available ({e})"
        return {"metrics": {KEY: unavailable(why)}, "rows": rows, "notes": [why],
                "elapsed_s": time.perf_counter() - t0}
    for n in ns:
        try:
            r = measure_env_steps(n, repeats, per_block)
        except Exception as e:  # say what failed, never guess a number
            notes.append(f"N = {n} could not be measured ({type(e).__name__}: {e})")
            continue
        rows.append({"N": n, "adapter env-steps/s": r["adapter_sps"], "DummyVecEnv env-steps/s": r["dummy_sps"],
                     "adapter / DummyVecEnv": r["ratio"]["value"], "min": r["ratio"]["min"],
                     "max": r["ratio"]["max"], "steps per block": r["steps"]})
        metrics[f"sb3_n{n}_adapter_env_steps_per_s"] = {"value": r["adapter_sps"], "unit": "env-steps/s"}
        metrics[f"sb3_n{n}_dummyvecenv_env_steps_per_s"] = {"value": r["dummy_sps"], "unit": "env-steps/s"}
        if n == HEADLINE_N:
            metrics[KEY] = {**r["ratio"], "goal": [">=", GOAL],
                            "unit": f"adapter / DummyVecEnv env-steps per second at N = {n}"}
            if r["ratio"]["value"] < GOAL:
                env, acts = r["adapter"], np.zeros((n, 1), np.float32)
                profiles[f"SB3VecEnv.step at N = {n}, 50 steps"] = profile_top(
                    lambda: [env.step(acts) for _ in range(50)])
    metrics.setdefault(KEY, unavailable(f"N = {HEADLINE_N} not measured in this run"))
    ppo_rows = []
    try:
        p = measure_ppo(HEADLINE_N, max(2, repeats - 2), ppo_rollouts)
        ppo_rows.append({"N": HEADLINE_N, "timesteps per learn()": p["total"],
                         "adapter PPO steps/s": p["adapter_sps"], "DummyVecEnv PPO steps/s": p["dummy_sps"],
                         "adapter / DummyVecEnv": p["ratio"]["value"], "min": p["ratio"]["min"],
                         "max": p["ratio"]["max"]})
        metrics["sb3_ppo_adapter_vs_dummyvecenv_ratio"] = {
            **p["ratio"], "unit": f"adapter / DummyVecEnv PPO timesteps per second at N = {HEADLINE_N}"}
        notes.append(f"PPO: SB3's defaults (MlpPolicy, batch {p['batch_size']}, {p['n_epochs']} epochs per rollout) "
                     f"but n_steps = {PPO_N_STEPS} per env; each learn() call is {ppo_rollouts} rollout(s) and their "
                     "updates, timed round-robin with the other side; the updates cost the same on both sides, so "
                     "this ratio is below the env-steps one")
    except Exception as e:
        notes.append(f"PPO could not be measured ({type(e).__name__}: {e})")
    cfg = get_config("full")
    notes.append(f"paper-mode simulator as in bench_sim.py: M = {cfg.segments.n_il} IL agents "
                 f"(F → {cfg.il.hidden} → 1), SynthesisNet, FeatureStream, horizon {cfg.sim.horizon} bars after "
                 f"{cfg.sim.warmup} warm-up bars; torch threads {torch.get_num_threads()} on both sides")
    notes.append(f"env-steps: each side steps {per_block} env-steps per block (N markets × {per_block} / N steps) "
                 f"on the same pre-drawn random actions, {repeats} rounds round-robin after a warm-up round; the "
                 "ratio is the median of the per-round ratios")
    return {"metrics": metrics, "rows": rows, "tables": {"PPO through each": ppo_rows} if ppo_rows else {},
            "notes": notes, "profiles": profiles, "elapsed_s": time.perf_counter() - t0}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="N = 4 and 16 only, small blocks, one PPO rollout")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of both sides (1: the machine is shared)")
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    if a.smoke:
        res = run((4, 16), repeats=2, per_block=64, ppo_rollouts=1)
    else:
        res = run(NS, repeats=a.repeats, per_block=ENV_STEPS_PER_BLOCK, ppo_rollouts=2)
    write_result("sb3", {**res, "doc": " ".join(__doc__.split("\n\n")[0].split())})
