"""DDPG speed: ilmarket.ddpg against stable-baselines3's DDPG, a population of agents against as many solo trainings,
and the hand-written update against the textbook autograd one, each pair side by side in one run.

Same env (ilmarket.ddpg.ToyMarket: N=8 batched for ilmarket, 8 Gymnasium copies in a DummyVecEnv for SB3),
same networks (actor [128, 128], critic [128, 128, 128]), batch 128, Adam, gamma, tau and exploration
noise from the config, one gradient update per environment step. Every figure is the median of several
rounds after a warm-up round; the two sides alternate round by round so that load on the machine
hits both alike, and each ratio is the median of the per-round ratios. One torch thread for all (the networks are too
small for one agent to gain from more; the machine is shared). The population rows: `train_population` of K agents
(K ToyMarkets, seeds 0..K-1) against K `train_ddpg` runs of the same seeds and steps, in agent-updates per second, and
the population's matmul FLOP rate (FLOPs of the update's matmuls, counted from the network shapes) as a fraction of
the measured matmul roofline (a 1024×1024 float32 GEMM timed in the same rounds). Writes reports/bench/ddpg.json.

    python bench/bench_ddpg.py [--rounds 5] [--updates 400] [--steps 2400] [--population 10] [--pop-steps 600]
                               [--pop-rounds 3] [--no-memory]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from ilmarket.core import atomic_write, get_config, package_versions, project_root
from ilmarket.ddpg import (DDPG, PopulationDDPG, ReplayBuffer, ReplayStack, ToyMarket, textbook_update, train_ddpg,
                           train_population)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import round_ratio, time_interleaved, torch_op_table  # noqa: E402

GOAL_POPULATION = 3.0  # population of 10 vs 10 solo trainings, agent-updates/s


class ToyGymEnv(gym.Env):
    "One ToyMarket episode stream as a Gymnasium env (for SB3)."
    def __init__(self, horizon: int = 128):
        self.sim = ToyMarket(n_envs=1, horizon=horizon)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.sim.obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return self.sim.reset(seed if seed is not None else 0)[0].numpy(), {}

    def step(self, action):
        obs, rew, done, info = self.sim.step(torch.as_tensor(action, dtype=torch.float32).reshape(1))
        if bool(done[0]):  # time limit: report the final state; the next reset restarts the episode
            return info["final_obs"][0].numpy(), float(rew[0]), False, True, {}
        return obs[0].numpy(), float(rew[0]), False, False, {}


def make_sb3(cfg, n_envs: int, learning_starts: int, seed: int):
    from stable_baselines3 import DDPG as SB3DDPG
    from stable_baselines3.common.noise import NormalActionNoise
    from stable_baselines3.common.vec_env import DummyVecEnv
    dc = cfg.ddpg
    venv = DummyVecEnv([lambda: ToyGymEnv() for _ in range(n_envs)])
    return SB3DDPG("MlpPolicy", venv, learning_rate=dc.actor_lr, buffer_size=dc.buffer_size, learning_starts=learning_starts,
                   batch_size=dc.batch_size, tau=dc.tau, gamma=dc.gamma, train_freq=1, gradient_steps=-1,
                   action_noise=NormalActionNoise(np.zeros(1), dc.expl_noise * np.ones(1)),
                   policy_kwargs=dict(net_arch=dict(pi=list(dc.actor_hidden), qf=list(dc.critic_hidden))),
                   device="cpu", seed=seed, verbose=0)


def fill_ours(obs_dim: int, cfg, n: int) -> tuple[DDPG, ReplayBuffer]:
    torch.manual_seed(0)
    agent, buf = DDPG(obs_dim, cfg.ddpg), ReplayBuffer(cfg.ddpg.buffer_size, obs_dim, cfg.ddpg.batch_size, seed=0)
    env = ToyMarket(8)
    obs = env.reset(0)
    for _ in range(n // 8):
        act = torch.rand(8) * 2 - 1
        nxt, rew, done, info = env.step(act)
        buf.add(obs, act, rew, torch.where(done[:, None], info["final_obs"], nxt), torch.zeros(8))
        obs = nxt
    return agent, buf


def rss_bytes() -> int:
    "Resident set size of this process (Linux)."
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"): return int(line.split()[1]) * 1024
    return -1


def bench_updates(cfg, rounds: int, k: int) -> dict:
    "Gradient updates/s on full buffers: ours (sample + update) vs SB3's `train(gradient_steps=k)`."
    agent, buf = fill_ours(ToyMarket.n_features + 2, cfg, 4000)
    sb3 = make_sb3(cfg, 8, learning_starts=4000, seed=0)
    sb3.learn(4000)  # fills its buffer with random actions, no updates yet
    ours, theirs = [], []
    for r in range(rounds + 1):
        t = time.perf_counter()
        for _ in range(k): agent.update(*buf.sample())
        a = k / (time.perf_counter() - t)
        t = time.perf_counter()
        sb3.train(gradient_steps=k, batch_size=cfg.ddpg.batch_size)
        b = k / (time.perf_counter() - t)
        if r: ours.append(a); theirs.append(b)  # round 0 is the warm-up
    return dict(ours=ours, sb3=theirs)


def bench_training(cfg, rounds: int, steps: int, learning_starts: int) -> dict:
    "Whole training loops (acting, env, replay, updates): env-steps/s and updates/s."
    c = get_config("quick", ddpg=dict(total_steps=steps, learning_starts=learning_starts, buffer_size=max(steps, 10_000)))
    ours, theirs = [], []
    for r in range(rounds + 1):
        t = time.perf_counter()
        train_ddpg(ToyMarket(8), c, seed=r, progress=False)
        a = time.perf_counter() - t
        model = make_sb3(c, 8, learning_starts=learning_starts, seed=r)
        t = time.perf_counter()
        model.learn(steps)
        b = time.perf_counter() - t
        if r: ours.append(a); theirs.append(b)
    n_upd = steps - learning_starts
    return dict(ours_env_steps=[steps / s for s in ours], sb3_env_steps=[steps / s for s in theirs],
                ours_updates=[n_upd / s for s in ours], sb3_updates=[n_upd / s for s in theirs])


def bench_memory(obs_dim: int, capacity: int = 9_000_000) -> dict:
    "Replay memory: bytes per transition, the 9e6 buffer's RSS when allocated and when full, vs its theoretical size."
    from stable_baselines3.common.buffers import ReplayBuffer as SB3Buffer
    base = rss_bytes()
    buf = ReplayBuffer(capacity, obs_dim)
    allocated = rss_bytes() - base
    chunk = 100_000
    rows = torch.randn(chunk, obs_dim)
    for _ in range(capacity // chunk):
        buf.add(rows, rows[:, 0], rows[:, 1], rows, torch.zeros(chunk))
    full = rss_bytes() - base
    sb = SB3Buffer(10, gym.spaces.Box(-1, 1, (obs_dim,), np.float32), gym.spaces.Box(-1, 1, (1,), np.float32), n_envs=1)
    sb3_per = sum(getattr(sb, k).nbytes for k in ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")) // 10
    minimum = (obs_dim + 2) * 4  # obs, act, rew as float32 with next_obs shared and done as a bit: the floor for this data
    out = dict(capacity=capacity, bytes_per_transition=buf.bytes_per_transition, theoretical_bytes=buf.nbytes,
               rss_after_allocation=allocated, rss_when_full=full, rss_vs_theoretical=full / buf.nbytes,
               layout_vs_minimum=buf.bytes_per_transition / minimum, minimum_bytes_per_transition=minimum,
               sb3_bytes_per_transition=sb3_per)
    del buf
    return out


def update_flops(obs_dim: int, cfg) -> int:
    "Matmul FLOPs of one hand-written update of one agent (2 per multiply-add; biases, activations and Adam left out)."
    def layers(sizes): return [i * o for i, o in zip(sizes[:-1], sizes[1:])]
    wa, wc = layers([obs_dim, *cfg.actor_hidden, 1]), layers([obs_dim + 1, *cfg.critic_hidden, 1])
    a, c = sum(wa), sum(wc)
    forward = 2 * a + 3 * c  # actor target, critic target, critic, actor, updated critic
    backward = (c + c - wc[0]) + c + (a + a - wa[0])  # critic (weights, inputs), critic to its input, actor
    return 2 * cfg.batch_size * (forward + backward)


def gemm(size: int = 1024):
    "A square float32 GEMM and its FLOPs: the machine's matmul roofline on this thread."
    a, b, out = torch.randn(size, size), torch.randn(size, size), torch.empty(size, size)
    return (lambda: torch.mm(a, b, out=out)), 2 * size ** 3


def filled_buffers(k: int, obs_dim: int, cfg, n: int = 4000) -> list[ReplayBuffer]:
    "k replay memories holding n random transitions each."
    g = torch.Generator().manual_seed(0)
    bufs = [ReplayBuffer(n, obs_dim, cfg.batch_size, seed=i + 1) for i in range(k)]
    for b in bufs:
        b.add(torch.rand(n, obs_dim, generator=g), torch.rand(n, generator=g) * 2 - 1,
              torch.randn(n, generator=g) * 1e-3, torch.rand(n, obs_dim, generator=g), torch.zeros(n))
    return bufs


def bench_update_paths(cfg, k: int, rounds: int, n: int) -> dict:
    "Updates/s of the hand-written update, the textbook autograd update, and a population of k (k·n agent-updates)."
    d = ToyMarket.n_features + 2
    torch.manual_seed(0)
    hand, book = DDPG(d, cfg), DDPG(d, cfg)
    book.load_state_dict(hand.state_dict())
    pop = PopulationDDPG([DDPG(d, cfg) for _ in range(k)])
    bufs = filled_buffers(k, d, cfg)
    stack = ReplayStack(bufs)
    mm, mm_flops = gemm()

    def run_hand(): [hand.update(*bufs[0].sample()) for _ in range(k * n)]
    def run_book(): [textbook_update(book, *bufs[0].sample()) for _ in range(n)]
    def run_pop(): [pop.update(*stack.sample()) for _ in range(n)]
    def run_gemm(): [mm() for _ in range(20)]
    runs = time_interleaved({"hand": run_hand, "book": run_book, "population": run_pop, "gemm": run_gemm},
                            repeats=rounds, warmup=1)
    hand_s = [t / (k * n) for t in runs["hand"]]  # seconds per agent-update
    book_s = [t / n for t in runs["book"]]
    pop_s = [t / (k * n) for t in runs["population"]]
    peak = [20 * mm_flops / t for t in runs["gemm"]]
    f = update_flops(d, cfg)
    return dict(hand_updates_per_s=statistics.median(1 / t for t in hand_s),
                textbook_updates_per_s=statistics.median(1 / t for t in book_s),
                population_agent_updates_per_s=statistics.median(1 / t for t in pop_s),
                handwritten_vs_textbook=round_ratio(book_s, hand_s),
                population_vs_solo_update=round_ratio(hand_s, pop_s),
                hand_roofline=round_ratio([f / t for t in hand_s], peak),
                population_roofline=round_ratio([f / t for t in pop_s], peak),
                gemm_flops_per_s=statistics.median(peak), update_flops=f, raw={k_: v for k_, v in runs.items()})


def bench_population(k: int, rounds: int, steps: int, learning_starts: int) -> dict:
    "Whole trainings: `train_population` of k agents against k `train_ddpg` runs of the same seeds and steps."
    c = get_config("quick", ddpg=dict(total_steps=steps, learning_starts=learning_starts,
                                      buffer_size=max(steps, 10_000)))
    seeds = list(range(k))
    mm, mm_flops = gemm()

    def population(): train_population([ToyMarket(8) for _ in seeds], c, seeds, progress=False)
    def solo(): [train_ddpg(ToyMarket(8), c, seed=s, progress=False) for s in seeds]
    def run_gemm(): [mm() for _ in range(20)]
    runs = time_interleaved({"population": population, "solo": solo, "gemm": run_gemm}, repeats=rounds, warmup=1)
    n_upd = k * (steps - learning_starts)  # agent-updates per round, either way
    flops = n_upd * update_flops(ToyMarket.n_features + 2, c.ddpg)
    peak = [20 * mm_flops / t for t in runs["gemm"]]
    return dict(population_agent_updates_per_s=statistics.median(n_upd / t for t in runs["population"]),
                solo_agent_updates_per_s=statistics.median(n_upd / t for t in runs["solo"]),
                ratio=round_ratio(runs["solo"], runs["population"]),
                population_roofline=round_ratio([flops / t for t in runs["population"]], peak),
                solo_roofline=round_ratio([flops / t for t in runs["solo"]], peak),
                gemm_flops_per_s=statistics.median(peak), agent_updates_per_round=n_upd,
                raw={k_: v for k_, v in runs.items()})


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--updates", type=int, default=400)
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--population", type=int, default=10, help="K, the members of the population")
    ap.add_argument("--pop-steps", type=int, default=600, help="env steps of each training in the population rows")
    ap.add_argument("--pop-rounds", type=int, default=3, help="rounds of the population-vs-solo trainings")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = get_config("quick", ddpg=dict(buffer_size=100_000))
    med = statistics.median
    upd = bench_updates(cfg, args.rounds, args.updates)
    trn = bench_training(cfg, max(args.rounds - 2, 1), args.steps, learning_starts=400)
    k = args.population
    paths = bench_update_paths(cfg.ddpg, k, args.rounds, max(args.updates // k, 10))
    pop = bench_population(k, args.pop_rounds, args.pop_steps, learning_starts=args.pop_steps // 3)
    paired = lambda a, b: med([x / y for x, y in zip(a, b)])  # rounds alternate, so each pair saw the same load
    res = dict(
        ddpg_vs_sb3_update_ratio=paired(upd["ours"], upd["sb3"]),
        updates_per_s=med(upd["ours"]), sb3_updates_per_s=med(upd["sb3"]),
        train_env_steps_per_s=med(trn["ours_env_steps"]), sb3_train_env_steps_per_s=med(trn["sb3_env_steps"]),
        train_env_steps_ratio=paired(trn["ours_env_steps"], trn["sb3_env_steps"]),
        train_updates_per_s=med(trn["ours_updates"]), sb3_train_updates_per_s=med(trn["sb3_updates"]),
        **{f"ddpg_population{k}_vs_solo_ratio": {**pop["ratio"], "unit": "x", "goal": [">=", GOAL_POPULATION]},
           f"ddpg_population{k}_roofline_fraction": {**pop["population_roofline"], "unit": "of the GEMM roofline"},
           "ddpg_handwritten_vs_textbook_ratio": {**paths["handwritten_vs_textbook"], "unit": "x"}},
        population=dict({key: v for key, v in pop.items() if key != "raw"}, members=k, steps=args.pop_steps,
                        learning_starts=args.pop_steps // 3, rounds=args.pop_rounds),
        update_paths={key: v for key, v in paths.items() if key != "raw"},
        raw=dict(updates=upd, training=trn, population=pop["raw"], update_paths=paths["raw"]),
        setup=dict(env="ToyMarket N=8 (SB3: DummyVecEnv of 8)", obs_dim=ToyMarket.n_features + 2, batch=cfg.ddpg.batch_size,
                   actor=list(cfg.ddpg.actor_hidden), critic=list(cfg.ddpg.critic_hidden), updates_per_round=args.updates,
                   train_steps=args.steps, rounds=args.rounds, torch_threads=torch.get_num_threads(),
                   cores=os.cpu_count(), machine=platform.processor() or platform.machine(),
                   load_average=os.getloadavg()),
        versions={**package_versions(), "stable_baselines3": __import__("stable_baselines3").__version__},
    )
    hand_roof, pop_roof = paths["hand_roofline"]["value"], pop["population_roofline"]["value"]
    res["notes"] = [
        f"a solo agent's update runs its matmuls at {hand_roof:.2f} of the GEMM roofline, so batching K agents can "
        f"make an agent-update at most {1 / hand_roof:.1f}x faster (at the full roofline); the population reaches "
        f"{pop_roof:.2f} of it in training ({paths['population_roofline']['value']:.2f} in its updates alone)",
        f"FLOPs counted per agent-update: {paths['update_flops']:,} (the update's matmuls from the network shapes, "
        "batch 128; biases, activations and Adam left out)"]
    if pop["ratio"]["value"] < GOAL_POPULATION:  # where the time of the population's update goes
        torch.manual_seed(0)
        members = PopulationDDPG([DDPG(ToyMarket.n_features + 2, cfg.ddpg) for _ in range(k)])
        stack = ReplayStack(filled_buffers(k, ToyMarket.n_features + 2, cfg.ddpg))
        work = lambda: [members.update(*stack.sample()) for _ in range(20)]
        work()
        title = f"torch ops of 20 population updates, K = {k} (torch.profiler, by self CPU time)"
        res["profiles"] = {title: torch_op_table(work)}
    if not args.no_memory:
        mem = bench_memory(ToyMarket.n_features + 2)
        res.update(replay_bytes_per_transition=mem["bytes_per_transition"], replay_9e6_bytes=mem["theoretical_bytes"],
                   replay_bytes_vs_theoretical=mem["rss_vs_theoretical"], memory=mem)
    out = Path(args.out) if args.out else project_root() / "reports" / "bench" / "ddpg.json"
    atomic_write(out, json.dumps(res, indent=1, sort_keys=True) + "\n")
    print(f"updates/s: ilmarket {res['updates_per_s']:.0f}, SB3 {res['sb3_updates_per_s']:.0f}, ratio {res['ddpg_vs_sb3_update_ratio']:.2f}× (goal ≥ 2×)")
    print(f"training env-steps/s: ilmarket {res['train_env_steps_per_s']:.0f}, SB3 {res['sb3_train_env_steps_per_s']:.0f}, ratio {res['train_env_steps_ratio']:.2f}×")
    if not args.no_memory:
        m = res["memory"]
        print(f"replay: {m['bytes_per_transition']} B/transition, 9e6 → {m['theoretical_bytes'] / 1e9:.3f} GB theoretical, "
              f"RSS {m['rss_after_allocation'] / 1e6:.1f} MB allocated, {m['rss_when_full'] / 1e9:.3f} GB full "
              f"({m['rss_vs_theoretical']:.3f}× theoretical); SB3 {m['sb3_bytes_per_transition']} B/transition")
    print(f"population of {k} vs {k} solo trainings ({args.pop_steps} steps each): "
          f"{pop['population_agent_updates_per_s']:.0f} vs {pop['solo_agent_updates_per_s']:.0f} agent-updates/s, "
          f"ratio {pop['ratio']['value']:.2f}× (goal ≥ {GOAL_POPULATION:g}×); roofline fraction "
          f"{pop['population_roofline']['value']:.2f} (solo {pop['solo_roofline']['value']:.2f}, GEMM "
          f"{pop['gemm_flops_per_s'] / 1e9:.1f} GFLOP/s)")
    print(f"updates only: population {paths['population_vs_solo_update']['value']:.2f}× the hand-written solo update "
          f"(roofline {paths['population_roofline']['value']:.2f} vs {paths['hand_roofline']['value']:.2f}); "
          f"hand-written {paths['handwritten_vs_textbook']['value']:.2f}× the textbook autograd update")
    print(f"wrote {out}")
    return res


if __name__ == "__main__":
    main()
