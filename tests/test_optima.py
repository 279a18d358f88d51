"""Known optima outside their notebook: the action rules and the ΔV/V reward as wrappers (the same orders in
training and in backtests), the closed-form optima against backward induction and brute-force rollouts,
KnownMarket against ToyMarket, and determinism of training and scoring under a seed."""
import math

import numpy as np
import pytest
import torch

from ilmarket.core import get_config
from ilmarket.ddpg import Actor, ActorPolicy, ToyMarket, train_ddpg
from ilmarket.optima import (OPTIONS, TASKS, ActionRule, ConstantPolicy, KnownMarket, OptimalPolicy, RelativeReward,
                             RuleEnv, RulePolicy, Task, compute_optimum, evaluate_policy, gamma_for_holding,
                             make_known_market, make_train_env, regime_growth, run_known_optimum)
from ilmarket.testing import Interrupt, stop_at

torch.set_num_threads(1)


def actions(n: int, seed: int) -> torch.Tensor:
    "n actions spread over [-1, 1], with exact zeros, the band edges and the ends among them."
    g = torch.Generator().manual_seed(seed)
    edges = torch.tensor([-1.0, -0.5, -1 / 3, 0.0, 1 / 3, 0.5, 1.0, 0.4999, -0.3333])
    return torch.cat([edges, torch.rand(n, generator=g) * 2 - 1])


@pytest.mark.parametrize("tau", [0.1, 1 / 3, 0.5, 0.9])
def test_band_zeroes_small_actions_and_passes_large_ones(tau):
    a = actions(500, seed=1)
    out = ActionRule("band", tau)(a)
    small = a.abs() < tau
    assert torch.equal(out[small], torch.zeros(int(small.sum())))
    assert torch.equal(out[~small], a[~small])
    assert small.any() and (~small).any()


@pytest.mark.parametrize("tau", [0.1, 1 / 3, 0.5])
def test_discrete_maps_to_sell_all_hold_buy_all(tau):
    a = actions(500, seed=2)
    out = ActionRule("discrete", tau)(a)
    assert set(out.tolist()) == {-1.0, 0.0, 1.0}
    assert torch.equal(out, torch.where(a.abs() < tau, 0.0, torch.sign(a)))


def test_paper_rule_is_the_identity_and_bad_rules_are_refused():
    a = actions(50, seed=3)
    assert torch.equal(ActionRule()(a), a)
    for kind, tau in [("band", 0.0), ("discrete", 1.0), ("paper", 0.5), ("round", 0.5)]:
        with pytest.raises(ValueError):
            ActionRule(kind, tau)


@pytest.mark.parametrize("option", list(OPTIONS))
def test_rule_applied_identically_in_env_and_policy(option):
    "A random actor through the wrapped env and the same actor wrapped as a policy on the bare env: the same orders."
    opt, task = OPTIONS[option], TASKS["regime"]
    torch.manual_seed(4)
    policy = ActorPolicy(Actor(12))
    wrapped, bare, raw = make_train_env(task, opt, 32), make_known_market(task, 32), make_known_market(task, 32)
    ow, ob, orw = wrapped.reset(5), bare.reset(5), raw.reset(5)
    differs = False
    for _ in range(task.horizon + 3):  # across an auto-reset
        ow, _, dw, iw = wrapped.step(policy.act(ow))
        ob, _, db, ib = bare.step(RulePolicy(policy, opt.rule).act(ob))
        orw, _, _, ir = raw.step(policy.act(orw))
        for k in ("cash", "shares", "value", "traded"): assert torch.equal(iw[k], ib[k]), k
        assert torch.equal(ow, ob) and torch.equal(dw, db)
        differs |= not torch.equal(ib["traded"], ir["traded"])
    assert differs == (opt.rule.kind != "paper")  # a rule changes what the raw actor would have traded


def test_relative_reward_is_the_value_change_ratio():
    base = KnownMarket(n_envs=4, horizon=7, fee=0.005)
    env = RelativeReward(RuleEnv(base, ActionRule("band", 0.3)))
    env.reset(seed=6)
    g = torch.Generator().manual_seed(7)
    prev = torch.full((4,), base.capital, dtype=torch.float64)
    for t in range(20):  # two auto-resets
        _, rew, done, info = env.step(torch.rand(4, generator=g) * 2 - 1)
        torch.testing.assert_close(rew, (info["value"] / prev - 1).float(), rtol=1e-6, atol=1e-9)
        prev = torch.where(done, base.capital, info["value"])
        assert bool(done.all()) == ((t + 1) % 7 == 0)


def test_wrapped_env_state_resumes_exactly():
    make = lambda: RelativeReward(RuleEnv(KnownMarket(n_envs=3, horizon=5), ActionRule("discrete", 1 / 3)))
    a, b = make(), make()
    a.reset(seed=8)
    acts = actions(40, seed=9)[:39].reshape(13, 3)
    for x in acts[:6]: a.step(x)
    b.reset(seed=123)
    b.set_state(a.get_state())
    for x in acts[6:]:
        ra, rb = a.step(x), b.step(x)
        for u, v in zip(ra[:3], rb[:3]): assert torch.equal(u, v)


def test_known_market_is_toymarket_when_the_coin_is_fair():
    "The same regimes and noise draw for draw; the values agree to ToyMarket's float32 rounding of the drift."
    kw = dict(n_envs=6, horizon=9, drift=2e-3, vol=1e-2, fee=0.005)
    known, toy = KnownMarket(p_up=0.5, **kw), ToyMarket(**kw)
    ok, ot = known.reset(seed=10), toy.reset(seed=10)
    assert torch.equal(ok, ot)
    g = torch.Generator().manual_seed(11)
    for x in torch.rand(20, 6, generator=g) * 2 - 1:  # across two auto-resets
        (obs_k, rew_k, done_k, info_k), (obs_t, rew_t, done_t, info_t) = known.step(x), toy.step(x)
        assert torch.equal(done_k, done_t) and torch.equal(obs_k[:, 0], obs_t[:, 0])
        torch.testing.assert_close(obs_k, obs_t, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(rew_k, rew_t, rtol=1e-5, atol=1e-7)
        for k in ("value", "cash", "shares"): torch.testing.assert_close(info_k[k], info_t[k], rtol=1e-9, atol=1e-6)


def induction_optimum(task: Task) -> float:
    "E[V_T / C0] from all cash by backward induction over (cash, shares) dollar values, regime by regime."
    out = 0.0
    growth = [math.exp(s * task.drift + task.vol ** 2 / 2) for s in (1, -1)]  # E[p_{t+1} / p_t]
    for p, m in zip((task.p_up, 1 - task.p_up), growth):
        alpha, beta = 1.0, 1.0  # worth of a dollar of cash, of shares, at the end
        for _ in range(task.horizon):
            beta_hold = m * beta  # a dollar of shares held over the bar
            alpha_stay = alpha
            beta = max(beta_hold, (1 - task.fee) * alpha_stay)
            alpha = max(alpha_stay, beta / (1 + task.fee))
        out += p * alpha
    return out


@pytest.mark.parametrize("name", list(TASKS))
def test_closed_form_optimum_equals_backward_induction(name):
    assert compute_optimum(TASKS[name])["optimum"] == pytest.approx(induction_optimum(TASKS[name]), rel=1e-12)


class BuyAt:
    "Buy the fraction `x` of the cash at bar `k` (where `up_only`, only in the up regime), nothing else."
    def __init__(self, x: float, k: int, up_only: bool):
        self.x, self.k, self.up_only, self.t, self.name = x, k, up_only, 0, f"buy {x} at {k}"

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        a = torch.full((obs.shape[0],), self.x if self.t == self.k else 0.0)
        self.t += 1
        return torch.where(obs[:, 0] > 0.5, a, 0.0) if self.up_only else a


@pytest.mark.parametrize("name", list(TASKS))
def test_optimum_matches_and_beats_a_brute_force_search(name):
    task = TASKS[name]
    n = 1024
    best = evaluate_policy(task, OptimalPolicy(task), n_episodes=n, seed=12)["value"]
    se = best.std() / math.sqrt(len(best))
    assert abs(best.mean() - compute_optimum(task)["optimum"]) <= 4 * se + 1e-10 * best.mean()
    if task.vol == 0: assert best.std() == pytest.approx(0.0, abs=1e-12)
    tries = {(x, k, u): evaluate_policy(task, BuyAt(x, k, u), n_episodes=n, seed=12)["value"].mean()
             for x in (0.5, 1.0) for k in (0, 25) for u in (False, True)}
    hold = evaluate_policy(task, ConstantPolicy(1.0, "hold"), n_episodes=n, seed=12)["value"]
    tries["hold"] = hold.mean()
    for key, v in tries.items():
        assert v <= best.mean() + 1e-12, (key, v, best.mean())
    up, down = regime_growth(task)
    expect_hold = (task.p_up * up + (1 - task.p_up) * down) / (1 + task.fee)
    assert expect_hold == pytest.approx(compute_optimum(task)["buy_and_hold"], rel=1e-12)
    assert abs(hold.mean() - expect_hold) <= 4 * hold.std() / math.sqrt(len(hold)) + 1e-10


def test_gamma_from_the_holding_period():
    assert gamma_for_holding(390) == pytest.approx(1 - 1 / 390, rel=1e-15)
    assert 1 / (1 - gamma_for_holding(100)) == pytest.approx(100, rel=1e-12)
    with pytest.raises(ValueError): gamma_for_holding(0.5)


def small_cfg():
    return get_config("quick", ddpg=dict(total_steps=480, learning_starts=96, buffer_size=2_000, checkpoint_every=160))


@pytest.mark.parametrize("option", ["band", "discrete+dvv"])
def test_training_through_the_wrappers_is_deterministic_and_resumes_exactly(option, tmp_path):
    task, opt, cfg = TASKS["regime"], OPTIONS[option], small_cfg()
    env = lambda: make_train_env(task, opt, 8)
    a1, h1 = train_ddpg(env(), cfg, seed=3, progress=False)
    a2, h2 = train_ddpg(env(), cfg, seed=3, progress=False)
    a3, _ = train_ddpg(env(), cfg, seed=4, progress=False)
    for u, v in zip(a1.state_dict().values(), a2.state_dict().values()): assert torch.equal(u, v)
    assert not all(torch.equal(u, v) for u, v in zip(a1.state_dict().values(), a3.state_dict().values()))
    assert h1.equals(h2)
    ck = tmp_path / "ck.pt"
    with pytest.raises(Interrupt):
        train_ddpg(env(), cfg, seed=3, checkpoint_path=ck, progress=False, callback=stop_at(200))
    a4, _ = train_ddpg(env(), cfg, seed=3, checkpoint_path=ck, progress=False)
    for u, v in zip(a1.state_dict().values(), a4.state_dict().values()): assert torch.equal(u, v)


def test_a_scored_run_is_deterministic_under_its_seed():
    "Training (5,000 warm-up steps of the full profile, then 200) and scoring twice: the same row but the wall time."
    task, opt = TASKS["noisy_trend_50bp"], OPTIONS["dvv"]
    r1, r2 = (run_known_optimum(task, opt, seed=1, total_steps=5_200) for _ in range(2))
    assert r1.keys() == r2.keys()
    for k in r1:
        if k != "seconds": assert r1[k] == r2[k], k
    assert np.isfinite(r1["score"]) and r1["score"] <= 1 + 1e-9
