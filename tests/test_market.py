"""The simulator outside its notebook: matching-engine properties, static replay vs the portfolio
accounting, Gymnasium conformance and a short stable-baselines3 run."""
import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from ilmarket.core import get_config
from ilmarket.market import (MarketEnv, MarketSim, MarketVecEnv, Orders, Replay, SqrtImpact, make_market_data,
                             match_orders)
from ilmarket.portfolio import execute_fractions

from market_reference import reference_rollout
from ilmarket.testing import IdScaler, ToyEnsemble, ToyStream, ToySynth, toy_bars, toy_config, toy_residuals, toy_sim

F64 = dict(dtype=torch.float64)


def sim(impact="synthesis", n_envs=4, horizon=32, **sim_kw):
    "The toy simulator at these tests' sizes: 10 warm-up bars, `horizon`-bar episodes over 8 days of toy bars."
    return toy_sim(impact, n_envs, toy_config(warmup=10, horizon=horizon, n_envs=n_envs, **sim_kw), n_days=8)


pos = st.floats(0, 1e6, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(pos, st.floats(0, 1e4), st.floats(-1.5, 1.5)), min_size=1, max_size=12), st.floats(1, 1e3))
def test_pool_invariants(parts, px):
    cash = torch.tensor([[p[0] for p in parts]], **F64)
    shares = torch.tensor([[p[1] for p in parts]], **F64)
    act = torch.tensor([[p[2] for p in parts]], **F64)
    c, k, q, deal = match_orders(cash, shares, act, torch.tensor([px], **F64), 0.005)
    assert (c >= 0).all() and (k >= 0).all()
    assert torch.allclose(k.sum(), shares.sum(), rtol=1e-9, atol=1e-6)
    assert torch.allclose(c.sum(), cash.sum() - 0.01 * deal.sum() * px, rtol=1e-9, atol=1e-4)
    buyers, sellers = (act > 0) & (cash > 0), (act < 0) & (shares > 0)
    if not buyers.any() or not sellers.any():
        assert (q == 0).all() and deal.sum() == 0  # one side of the pool empty: nobody is filled
    assert (q[act <= 0] <= 0).all() and (q[act >= 0] >= 0).all()  # nobody trades against its own order


MODES = {"synthesis": ("synthesis", {}), "sqrt": ("sqrt", {}), "sqrt, half-life 3": ("sqrt", {"sqrt_halflife": 3.0}),
         "static": ("static", {}), "synthesis, no noise": ("synthesis", {"noise": False})}


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_steps_like_the_reference_loop(mode):
    "Fixed-seed rollouts through an auto-reset equal the plain loop bit for bit: obs, rewards and every info value."
    impact, kw = MODES[mode]
    s = sim(impact, **kw)
    acts = torch.rand(50, s.n_envs, generator=torch.Generator().manual_seed(11), dtype=torch.float64) * 2.4 - 1.2
    obs, rews, infos = [s.reset(seed=7)], [], []
    for a in acts:
        o, r, _, info = s.step(a)
        obs.append(o); rews.append(r); infos.append(info)
    ref_obs, ref_rews, ref_info = reference_rollout(s.cfg, s.data, IdScaler(), ToyStream, ToyEnsemble(), ToySynth(), toy_residuals(),
                                                    s.n_envs, impact, acts, seed=7)
    assert torch.equal(torch.stack(obs), ref_obs) and torch.equal(torch.stack(rews), ref_rews)
    for k, v in ref_info.items():
        assert torch.equal(torch.stack([i[k] for i in infos]), v), k


class Drift:
    "A price former the simulator was not written for: a constant drift, the agent alone and always filled."
    name, matched, endogenous = "drift", False, True

    def __init__(self, mu):
        self.mu, self.residuals = mu, torch.zeros(1, **F64)

    def reset(self, ep): self.ep = ep
    def move(self, o: Orders): return o.px, torch.full_like(o.px, self.mu)
    def bar(self, o, close): return o.px, torch.maximum(o.px, close), torch.minimum(o.px, close), self.ep.volume[:, o.k]
    def get_state(self): return {}
    def set_state(self, state): pass


def test_a_new_price_former_plugs_in_without_touching_the_simulator():
    s = sim(Drift(1e-3), n_envs=3)
    s.reset(seed=1)
    p0 = s.px.clone()
    infos = [s.step(torch.tensor([1.0, 0.0, 0.0]))[3] for _ in range(5)]
    px = torch.stack([i["price"] for i in infos])
    torch.testing.assert_close(px / p0, torch.exp(1e-3 * torch.arange(1, 6, **F64)).unsqueeze(1).expand(5, 3), rtol=1e-12, atol=0)
    assert infos[0]["cash"][0] == 0 and infos[0]["filled"][0] > 0  # no pool: the full buy is filled at once
    assert s.fingerprint.startswith("MarketSim(impact=drift,")
    s2 = sim(Drift(1e-3), n_envs=3)
    s2.set_state(s.get_state())
    assert torch.equal(s2.step(torch.zeros(3))[0], s.step(torch.zeros(3))[0])


def test_replay_with_impact_pays_its_own_impact_and_moves_the_next():
    s_st, s_imp = sim("static", n_envs=3), sim(SqrtImpact(Replay(), 0.7, halflife=2.0), n_envs=3)
    s_st.reset(seed=2); s_imp.reset(seed=2)
    acts = [torch.tensor([1.0, 0.5, 0.0])] + [torch.zeros(3)] * 4
    out_st, out_imp = [s_st.step(a)[3] for a in acts], [s_imp.step(a)[3] for a in acts]
    q = out_imp[0]["filled"]  # the order's shares, sized at p_t
    torch.testing.assert_close(q, out_st[0]["shares"], rtol=1e-12, atol=0)
    jump = 0.7 * s_imp.data.sigma[s_imp.t0] * torch.sqrt(q / s_imp.data.vbar[s_imp.t0])
    torch.testing.assert_close(out_imp[0]["shares"], q * torch.exp(-jump), rtol=1e-12, atol=0)  # bought at p_t·e^Δ
    for j in range(5):  # the real closes carry the impact J, decaying with the half-life
        lr = torch.log(out_imp[j]["price"] / out_st[j]["price"])
        torch.testing.assert_close(lr, jump * 0.5 ** (j / 2), rtol=1e-9, atol=1e-15)
    assert s_imp.fingerprint.startswith("MarketSim(impact=sqrt(static),")


def test_a_price_former_object_brings_its_own_parts():
    cfg = get_config("quick", sim={"warmup": 10, "horizon": 32})
    data = make_market_data(toy_bars(8), None, 10, 32, 50)
    with pytest.raises(ValueError, match="brings its own net"):
        MarketSim(cfg, data, IdScaler(), ToyStream, ToyEnsemble(), ToySynth(), n_envs=2, impact=Replay())
    with pytest.raises(ValueError, match="sim.impact must be one of"):
        get_config("quick", sim={"impact": None})


def test_static_replay_is_the_portfolio_accounting():
    s = sim("static", n_envs=3)
    s.reset(seed=2)
    t0 = s.t0.clone()
    acts = torch.tensor(np.random.default_rng(0).uniform(-1, 1, (s.horizon - 1, 3)))
    vals = torch.stack([s.step(a)[3]["value"] for a in acts])  # (H-1, 3), before the auto-reset
    for i in range(3):
        px = s.data.close[int(t0[i]) - 1: int(t0[i]) + s.horizon - 1].numpy()  # trade at p_t, value at p_{t+1}
        ref = execute_fractions(px[:-1], acts[:, i].numpy(), cash0=1e6, fee=0.005)
        np.testing.assert_allclose(vals[:, i].numpy(), ref["cash"].to_numpy() + ref["shares"].to_numpy() * px[1:], rtol=1e-10)


def test_noise_and_anchors_do_not_depend_on_actions():
    a, b = sim(), sim()
    a.reset(seed=5); b.reset(seed=5)
    g = torch.Generator().manual_seed(0)
    for _ in range(a.horizon):  # through one auto-reset
        a.step(torch.rand(4, generator=g) * 2 - 1)
        b.step(torch.zeros(4))
    assert torch.equal(a.ep.noise, b.ep.noise) and torch.equal(a.t0, b.t0)
    c = sim(noise=False)
    c.reset(seed=5)
    assert (c.ep.noise == 0).all()


def test_sqrt_mode_alone_in_pool_means_no_impact():
    s = sim("sqrt", n_envs=4)
    s.reset(seed=3)
    s.il_act = torch.ones_like(s.il_act)  # every IL agent buys: nobody sells to the agent's buy
    s.set_agent(torch.full((4,), 1e6), torch.zeros(4))
    _, _, _, info = s.step(torch.ones(4))
    assert (info["filled"] == 0).all()


def test_gymnasium_env_and_vector_env():
    from gymnasium.utils.env_checker import check_env
    env = MarketEnv(sim(n_envs=1))
    check_env(env, skip_render_check=True)
    venv = MarketVecEnv(sim(n_envs=3))
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (3, 4 + 2) and obs.dtype == np.float32
    for _ in range(32):
        obs, rew, term, trunc, info = venv.step(venv.action_space.sample())
    assert trunc.all() and not term.any() and info["final_obs"].shape == (3, 4 + 2)
    assert set(info) >= {"price", "cash", "shares", "value", "filled"}


@pytest.fixture(scope="module")
def project_env():
    "The one-call env of a new user, on the run's data and quick models (trained if not cached)."
    pytest.importorskip("ilmarket.synthesis")
    from ilmarket.pipeline import make_env
    return make_env(profile="quick", seed=0)


def test_make_env_passes_check_env(project_env):
    from gymnasium.utils.env_checker import check_env
    check_env(project_env, skip_render_check=True)
    obs, _ = project_env.reset(seed=0)
    obs2, r, term, trunc, info = project_env.step(np.array([0.5], dtype=np.float32))
    assert np.isfinite(obs2).all() and np.isfinite(r)
    assert set(info) >= {"price", "cash", "shares", "value", "filled"}
    assert info["filled"] >= 0 and abs(info["value"] - info["cash"] - info["shares"] * info["price"]) < 1e-6 * info["value"]


def test_stable_baselines3_trains_a_few_hundred_steps(project_env):
    sb3 = pytest.importorskip("stable_baselines3")
    model = sb3.PPO("MlpPolicy", project_env, n_steps=128, batch_size=64, n_epochs=2, seed=0, device="cpu")
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=256)
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, model.policy.parameters()))  # it did learn
    act, _ = model.predict(project_env.reset(seed=1)[0], deterministic=True)
    assert act.shape == (1,) and -1 <= float(act[0]) <= 1


def test_make_vec_env_steps_all_markets():
    pytest.importorskip("ilmarket.synthesis")
    from ilmarket.pipeline import make_vec_env
    venv = make_vec_env(profile="quick", seed=0, impact="sqrt", n_envs=4)
    obs, _ = venv.reset(seed=3)
    obs2, rew, term, trunc, info = venv.step(np.ones((4, 1), dtype=np.float32))
    assert obs.shape == obs2.shape == (4, venv.single_observation_space.shape[0])
    assert rew.shape == (4,) and (info["filled"] >= 0).all() and (info["cash"] >= 0).all()


def test_reward_is_value_change_over_the_window():
    cfg = get_config("quick", sim={"warmup": 10, "horizon": 32}, ddpg={"reward_window": 5})
    s = MarketSim(cfg, make_market_data(toy_bars(8), None, 10, 32, 50), IdScaler(), ToyStream, ToyEnsemble(), ToySynth(),
                  np.random.default_rng(1).normal(0, 1e-3, 300), n_envs=3, impact="sqrt")
    s.reset(seed=4)
    g = torch.Generator().manual_seed(1)
    values, rewards = [s.c0.clone()], []
    for _ in range(20):
        _, r, _, info = s.step(torch.rand(3, generator=g) * 2 - 1)
        values.append(info["value"]); rewards.append(r)
    v = torch.stack(values)  # v[t] = V_t, v[0] = V_0
    for t in range(1, 21):
        ref = (v[t] - v[max(t - 5, 0)]) / s.c0
        assert torch.allclose(rewards[t - 1].double(), ref, atol=1e-6)


@pytest.mark.parametrize("bad, msg", [
    ([0.1, float("nan"), 0.0, 0.2], "finite"),
    (np.zeros((4, 1)), "shape"), (np.zeros((1, 4)), "shape"), (np.zeros((2, 2)), "shape"),
    (np.array([True, False, True, False]), "real numbers"), (np.zeros(4, dtype=complex), "real numbers"),
])
def test_bad_actions_are_refused_not_held(bad, msg):
    s = sim("sqrt", n_envs=4)
    s.reset(seed=0)
    with pytest.raises(ValueError, match=msg):
        s.step(bad)


def test_gymnasium_wrappers_refuse_nan_and_wrong_shapes():
    env, venv = MarketEnv(sim("sqrt", n_envs=1)), MarketVecEnv(sim("sqrt", n_envs=3))
    env.reset(seed=0); venv.reset(seed=0)
    for bad in (np.array([np.nan], dtype=np.float32), np.zeros((1, 2), dtype=np.float32)):
        with pytest.raises(ValueError): env.step(bad)
    for bad in (np.full((3, 1), np.nan), np.zeros((1, 3)), np.zeros((3, 2))):
        with pytest.raises(ValueError): venv.step(bad)
    assert np.isfinite(env.step(np.array([0.3], dtype=np.float32))[0]).all()
    assert venv.step(np.zeros((3, 1), dtype=np.float32))[1].shape == (3,)


def test_flow_market_is_deterministic_and_its_state_round_trips():
    "The dealer market's propagator and GARCH state travel with the simulator's checkpoint."
    acts = torch.rand(20, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 2 - 1
    a, b = sim("flow", n_envs=3), sim("flow", n_envs=3)
    a.reset(seed=4); b.reset(seed=4)
    for x in acts[:10]:
        assert torch.equal(a.step(x)[0], b.step(x)[0])
    c = sim("flow", n_envs=3)
    c.reset(seed=9)
    c.set_state(a.get_state())
    for x in acts[10:]:
        oa, ra, _, ia = a.step(x)
        oc, rc, _, ic = c.step(x)
        assert torch.equal(oa, oc) and torch.equal(ra, rc) and torch.equal(ia["price"], ic["price"])
    assert (ia["volume"] > 0).all() and torch.isfinite(ia["price"]).all()
