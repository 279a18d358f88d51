"""Simulator env-steps/s at N = 1, 64, 1024: the batched `MarketSim` against a per-env, per-agent Python loop over the
same networks, and against the matmul roofline (the network FLOPs of one step over the measured rate of dense torch
GEMMs of comparable size on this machine)."""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import load_real_bars, profile_top, round_ratio, time_interleaved, time_runs, unavailable, write_result

NS = (1, 64, 1024)
GOAL_SPEEDUP, GOAL_ROOF = 20.0, 0.4
KEYS = ("sim_n1024_vs_loop_speedup", "sim_n1024_roofline_fraction")


# ---- building a simulator cheaply: the project's classes at their paper sizes, freshly initialised
def build(n_envs: int, seed: int = 0):
    "A `MarketSim` in paper mode on the real bars (synthetic when absent) with freshly initialised networks of the paper's sizes."
    import torch
    from ilmarket.agents import ILAgent, ILEnsemble
    from ilmarket.core import get_config
    from ilmarket.features import FeatureStream, MinMaxScaler, compute_features
    from ilmarket.market import MarketSim, make_market_data
    from ilmarket.synthesis import SynthesisNet
    cfg = get_config("full", seed=seed)
    bars = load_real_bars()
    if bars is None:
        from ilmarket.data import synthetic_bars
        bars = synthetic_bars(start="2023-01-01", end="2023-06-30", freq="5min", seed=seed)
    bars = bars.iloc[-20_000:]
    feats = compute_features(bars, cfg.features)
    scaler = MinMaxScaler().fit(feats.to_numpy(np.float64))
    n_feat, m = feats.shape[1], cfg.segments.n_il
    torch.manual_seed(seed)
    ens = ILEnsemble.from_agents([ILAgent(n_feat, cfg.il.hidden) for _ in range(m)])
    synth = SynthesisNet(m, cfg.synthesis)
    with torch.no_grad():  # small weights keep simulated prices in a sane range (speed does not depend on values)
        for p in synth.parameters(): p.mul_(0.01)
    res = np.random.default_rng(seed).normal(0.0, 1e-3, 5_000)
    data = make_market_data(bars, None, cfg.sim.warmup, cfg.sim.horizon, cfg.sim.vol_window)
    sim = MarketSim(cfg, data, scaler, lambda n: FeatureStream(n, cfg.features), ens, synth, res, n_envs=n_envs,
                    impact="synthesis")
    return sim, cfg


# ---- the straightforward baseline: one env at a time, one agent at a time, Python scalars for the pool
class LoopMarket:
    "The same step as `MarketSim.step` (paper mode, log-return target), written env by env and agent by agent."

    def __init__(self, sim, envs: list[int]):
        import torch
        self.sim, self.envs = sim, envs
        self.m = sim.n_agents
        self.members = [sim.ensemble.member(i) for i in range(self.m)]  # the same weights, one ILAgent each
        self.synth, self.scaler = sim.former.net, sim.scaler
        self.fee, self.il_capital = sim.fee, sim.il_capital
        self.streams = [sim.stream.select(torch.tensor([e])) for e in envs]
        self.px = [float(sim.px[e]) for e in envs]
        self.cash = [sim.cash[e].tolist() for e in envs]
        self.shares = [sim.shares[e].tolist() for e in envs]
        self.il_act = [sim.il_act[e].tolist() for e in envs]
        self.noise = [sim.ep.noise[e].tolist() for e in envs]
        self.hvol = [sim.ep.volume[e].tolist() for e in envs]
        self.hsess = [sim.ep.new_session[e].tolist() for e in envs]
        self.c0 = [float(sim.c0[e]) for e in envs]
        self.values = [sim.values[:, e].tolist() for e in envs]
        self.k = sim.k

    def step(self, act: list[float]) -> list:
        "One bar for every env in turn; returns each env's (obs, reward)."
        import torch
        out = []
        fee, m = self.fee, self.m
        for j in range(len(self.envs)):
            a_agent = min(1.0, max(-1.0, act[j]))
            acts = self.il_act[j] + [a_agent]
            cash, shares, px = self.cash[j], self.shares[j], self.px[j]
            want_b = [max(a, 0.0) * c / ((1 + fee) * px) for a, c in zip(acts, cash)]
            want_s = [max(-a, 0.0) * s for a, s in zip(acts, shares)]
            b_tot, s_tot = sum(want_b), sum(want_s)
            deal = min(b_tot, s_tot)
            fb = deal / b_tot if b_tot > 0 else 0.0
            fs = deal / s_tot if s_tot > 0 else 0.0
            new_cash, new_shares, filled = [], [], 0.0
            for p, a in enumerate(acts):
                spent, sold = max(a, 0.0) * fb, max(-a, 0.0) * fs
                bought = spent * cash[p] / ((1 + fee) * px)
                new_cash.append(cash[p] * (1 - spent) + sold * shares[p] * px * (1 - fee))
                new_shares.append(shares[p] * (1 - sold) + bought)
                if p == m: filled = bought - sold * shares[p]
            self.cash[j], self.shares[j] = new_cash, new_shares
            rho = self.c0[j] / self.il_capital
            pooled = torch.tensor([[x + rho / m * a_agent for x in self.il_act[j]]], dtype=torch.float32)
            with torch.no_grad(): r = float(self.synth(pooled)[0].reshape(-1)[0]) + self.noise[j][self.k]
            c = px * math.exp(r)
            t = lambda x: torch.tensor([x], dtype=torch.float64)
            feats = self.streams[j].update(t(px), t(max(px, c)), t(min(px, c)), t(c), t(self.hvol[j][self.k] + abs(filled)),
                                           torch.tensor([bool(self.hsess[j][self.k])]))
            scaled = torch.as_tensor(self.scaler.transform(feats.to(torch.float64))).to(torch.float32)
            with torch.no_grad(): self.il_act[j] = [float(agent(scaled).reshape(-1)[0]) for agent in self.members]
            self.px[j] = c
            value = new_cash[m] + new_shares[m] * c
            ring = self.values[j]
            slot = (self.k + 1) % len(ring)
            reward = (value - ring[slot]) / self.c0[j]
            ring[slot] = value
            obs = scaled[0].tolist() + [new_cash[m] / self.c0[j], new_shares[m] * c / self.c0[j]]
            out.append((obs, reward))
        self.k += 1
        return out


def check_loop_equal(n: int = 4, steps: int = 3) -> float:
    "Largest relative price difference between `MarketSim` and the loop after `steps` identical steps from one state."
    import torch
    sim, _ = build(n, seed=1)
    sim.reset(seed=1)
    loop = LoopMarket(sim, list(range(n)))
    g = torch.Generator().manual_seed(5)
    worst = 0.0
    for _ in range(steps):
        a = torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1
        sim.step(a)
        loop.step(a.tolist())
        worst = max(worst, float(((sim.px - torch.tensor(loop.px, dtype=torch.float64)).abs() / sim.px).max()))
    return worst


# ---- roofline
def step_flops(sim) -> int:
    "FLOPs of one env-step in the networks: 2 per weight element of the IL ensemble and the synthesis net (biases, activations ignored)."
    return 2 * sum(int(p.numel()) for mod in (sim.ensemble, sim.former.net) for p in mod.parameters() if p.dim() >= 2)


def matmul_chain(sim, n: int):
    "A function running, as bare matmuls into preallocated outputs, every weight product of one step for `n` envs."
    import torch
    ops = []
    for p in list(sim.ensemble.parameters()) + list(sim.former.net.parameters()):
        if p.dim() == 3:  # (M, in, out) stacked ensemble layer
            m_, i_, o_ = p.shape
            x, out = torch.randn(m_, n, i_), torch.empty(m_, n, o_)
            ops.append((torch.bmm, x, p.detach().clone(), out))
        elif p.dim() == 2:  # nn.Linear weight (out, in)
            o_, i_ = p.shape
            x, out = torch.randn(n, i_), torch.empty(n, o_)
            ops.append((torch.mm, x, p.detach().t().contiguous(), out))

    def run():
        for f, x, w, out in ops: f(x, w, out=out)
    return run


def dense_gemm(sim, n: int):
    "(function, FLOPs per call) of dense float32 GEMMs of comparable size: (M·N, H) @ (H, H), H the IL hidden width (the step's largest product as one matrix), repeated to ~2·10⁶ rows."
    import torch
    h = max(p.shape[-1] for p in sim.ensemble.parameters() if p.dim() >= 2)
    rows = max(1, sim.n_agents) * n
    a, b, out = torch.randn(rows, h), torch.randn(h, h), torch.empty(rows, h)
    reps = max(1, 2_000_000 // rows)

    def run():
        for _ in range(reps): torch.mm(a, b, out=out)
    return run, 2 * rows * h * h * reps


def peak_gemm_rate(size: int = 1024) -> float:
    "FLOP/s of a large square float32 GEMM on this machine (the machine's matmul ceiling)."
    import torch
    a, b, out = torch.randn(size, size), torch.randn(size, size), torch.empty(size, size)
    t = time_runs(lambda: torch.mm(a, b, out=out), repeats=7, warmup=2)
    return 2 * size ** 3 / t["median_s"]


# ---- measurement
def measure(n: int, block: int, repeats: int, n_loop: int, loop_steps: int) -> dict:
    "Batched steps, the loop, the step's own matmuls and a dense GEMM, round-robin; per-round ratios."
    import torch
    sim, cfg = build(n)
    sim.reset(seed=0)
    if 3 + block * (repeats + 1) >= sim.horizon: raise ValueError("timed steps would cross an episode end; lower block or repeats")
    g = torch.Generator().manual_seed(0)
    acts = [torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1 for _ in range(block)]
    for a in acts[:3]: sim.step(a)  # warm-up
    nl = min(n, n_loop)
    loop_acts = (torch.rand(loop_steps, nl, generator=g, dtype=torch.float64) * 2 - 1).tolist()
    loops = iter([LoopMarket(sim, list(range(nl))) for _ in range(repeats + 1)])  # each round starts from a fresh copy

    def batched():
        for a in acts: sim.step(a)

    def loop():
        lp = next(loops)
        for a in loop_acts: lp.step(a)
    own = matmul_chain(sim, n)
    dense, dense_flops = dense_gemm(sim, n)
    runs = time_interleaved({"batched": batched, "loop": loop, "own": lambda: [own() for _ in range(10)], "dense": dense},
                            repeats=repeats, warmup=1)
    flops = step_flops(sim)
    step_s = [t / block for t in runs["batched"]]
    loop_s = [t / (loop_steps * nl) for t in runs["loop"]]  # per env-step
    own_s = [t / 10 for t in runs["own"]]
    rate = [dense_flops / t for t in runs["dense"]]
    reset_s = time_runs(lambda: sim.reset(seed=0), repeats=3, warmup=1)["median_s"]
    med = statistics.median
    return {"sim": sim, "cfg": cfg, "flops": flops, "step_s": med(step_s), "loop_s": med(loop_s), "own_s": med(own_s),
            "rate": med(rate), "reset_s": reset_s,
            "speedup": round_ratio(loop_s, [t / n for t in step_s]),
            "roofline": round_ratio([flops * n / t for t in step_s], rate),
            "own_fraction": round_ratio(own_s, step_s)}


def torch_op_table(sim, n: int, steps: int = 10, top: int = 10) -> str:
    "torch.profiler's top ops by self CPU time over `steps` batched steps."
    import torch
    from torch.profiler import ProfilerActivity, profile
    sim.reset(seed=0)
    a = torch.zeros(n, dtype=torch.float64)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps): sim.step(a)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top, max_name_column_width=40)


def run(ns: tuple[int, ...], block: int, repeats: int, n_loop: int, loop_steps: int) -> dict:
    "Batched steps/s, loop steps/s and roofline for each N."
    import torch
    t0 = time.perf_counter()
    rows, notes, metrics, profiles = [], [], {}, {}
    try:
        sim, cfg = build(1)
        sim.reset(seed=0)
    except (ImportError, AttributeError) as e:
        reason = f"simulator stack not available ({type(e).__name__}: {e})"
        return {"metrics": {k: unavailable(reason) for k in KEYS}, "rows": rows, "notes": notes, "profiles": profiles,
                "elapsed_s": time.perf_counter() - t0}
    flops = step_flops(sim)
    peak = peak_gemm_rate()
    try:
        diff = check_loop_equal()
        notes.append(f"the loop baseline reproduces MarketSim: largest relative price difference after 3 steps on 4 envs {diff:.1e}")
    except Exception as e:  # a mismatch of internals is reported, not hidden
        notes.append(f"the loop baseline could not be checked against MarketSim ({type(e).__name__}: {e})")
    notes.append(f"paper-mode simulator (impact='synthesis'): M = {sim.n_agents} IL agents (F → {cfg.il.hidden} → 1), "
                 f"synthesis net {type(sim.former.net).__name__}, FeatureStream, matching engine; networks freshly initialised "
                 "at the paper's sizes (speed does not depend on the weights' values); torch threads "
                 f"{torch.get_num_threads()} for every variant")
    notes.append(f"one env-step = {flops:,} network FLOPs (2 per weight element of the IL ensemble and the synthesis net; "
                 "biases and activations not counted). Roofline env-steps/s = the FLOP/s of dense float32 GEMMs of "
                 "comparable size, (M·N, 128) @ (128, 128) at each N, divided by those FLOPs; the roofline fraction is "
                 "the achieved network FLOP/s over that rate. 'fraction of own matmuls' is the looser figure: the time of the "
                 "step's own products run bare at exactly its shapes (batched bmm as the ensemble computes them, preallocated "
                 f"outputs) over the step time. Peak float32 GEMM (1024³) on this machine: {peak / 1e9:.1f} GFLOP/s")
    notes.append(f"per N, four variants run round-robin for {repeats} rounds after a warm-up round: a block of {block} batched "
                 f"steps inside an episode, the loop for {loop_steps} steps on min(N, {n_loop}) envs (a fresh copy of the same "
                 "state each round; normalised per env-step, since its cost per env-step does not depend on N), the step's "
                 "own matmuls and the dense GEMM; ratios are medians of per-round ratios. Resets (feature warm-up of "
                 f"{cfg.sim.warmup} bars) are timed apart and amortised over the {cfg.sim.horizon}-bar horizon")
    for n in ns:
        try:
            r = measure(n, block, repeats, n_loop, loop_steps)
        except Exception as e:  # e.g. the simulator's internals changed under the loop baseline: say so, never guess
            why = f"N = {n} could not be measured ({type(e).__name__}: {e})"
            notes.append(why)
            if n == 1024:
                for k in KEYS: metrics[k] = unavailable(why)
            continue
        sps = n / r["step_s"]
        h = r["cfg"].sim.horizon
        rows.append({"N": n, "batched env-steps/s": sps, "incl. resets": n * h / (h * r["step_s"] + r["reset_s"]),
                     "loop env-steps/s": 1.0 / r["loop_s"], "speedup vs loop": r["speedup"]["value"],
                     "roofline env-steps/s": r["rate"] / flops, "roofline fraction": r["roofline"]["value"],
                     "achieved network GFLOP/s": flops * sps / 1e9, "dense GEMM GFLOP/s": r["rate"] / 1e9,
                     "fraction of own matmuls": r["own_fraction"]["value"],
                     "ms/step": r["step_s"] * 1e3, "reset ms": r["reset_s"] * 1e3})
        metrics[f"sim_n{n}_env_steps_per_s"] = {"value": sps, "unit": "env-steps/s (batched, steady state)"}
        if n == 1024:
            metrics["sim_n1024_vs_loop_speedup"] = {**r["speedup"], "goal": [">=", GOAL_SPEEDUP],
                                                    "unit": "batched / loop env-steps per second"}
            metrics["sim_n1024_roofline_fraction"] = {**r["roofline"], "goal": [">=", GOAL_ROOF],
                                                      "unit": "achieved network FLOP/s / dense GEMM FLOP/s of comparable size"}
            metrics["sim_n1024_own_matmul_fraction"] = {**r["own_fraction"],
                                                        "unit": "time of the step's own matmuls (same shapes, bare) / step time"}
            metrics["sim_n1024_peak_gemm_fraction"] = {"value": flops * sps / peak,
                                                       "unit": "achieved network FLOP/s / peak 1024³ GEMM FLOP/s (not interleaved)"}
            if r["speedup"]["value"] < GOAL_SPEEDUP or r["roofline"]["value"] < GOAL_ROOF:
                sim = r["sim"]
                profiles["MarketSim.step at N = 1024, 10 steps"] = profile_top(lambda: [sim.step(torch.zeros(n, dtype=torch.float64)) for _ in range(10)])
                profiles["torch ops of MarketSim.step at N = 1024, 10 steps (torch.profiler, by self CPU time)"] = torch_op_table(sim, n)
    for k in KEYS:
        metrics.setdefault(k, unavailable("N = 1024 not measured in this run"))
    return {"metrics": metrics, "rows": rows, "notes": notes, "profiles": profiles, "elapsed_s": time.perf_counter() - t0}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--smoke", action="store_true", help="N = 1, 64 only, few steps")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for every variant (default 1: the machine is shared)")
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    if a.smoke:
        res = run((1, 64), block=4, repeats=2, n_loop=8, loop_steps=2)
    else:
        res = run(NS, block=10, repeats=a.repeats, n_loop=32, loop_steps=3)
    write_result("sim", {**res, "doc": " ".join(__doc__.split())})
