"""The IL options (ilmarket.agents): orders on {-1, 0, +1} (rounded tanh or a 3-class head), the labelled validation
split, their model keys, determinism, the file format, and the simulator taking the ensemble's own output."""
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ilmarket.agents import (ACTIONS, ILAgent, ILArtifacts, ILEnsemble, class_action, fit_il_agent, load_il,
                             round_action, save_il, split_labelled, split_tail, split_validation)
from ilmarket.core import Config, ILConfig, _keyed, get_config, load_torch, save_torch
from ilmarket.features import MinMaxScaler
from ilmarket.market import MarketSim, make_market_data, stacked_mlp
from ilmarket.testing import IdScaler, ToyStream, ToySynth, toy_bars, toy_config, toy_residuals

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_agents import _same, _toy  # noqa: E402  the IL tests' toy labels and weight comparison

MODEL_SECTIONS = ("features", "segments", "labels", "il")  # what the IL model key (`il_digest`) is made from
OPTION = {"il.action": "round", "il.val_split": "labelled", "features.relative": True}


@pytest.fixture(autouse=True)
def one_thread():
    "Small models: one thread is faster than many on a shared machine; restored afterwards."
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _spread(agent: ILAgent, scale: float = 40.0) -> ILAgent:
    "An untrained agent whose last layer is scaled up, so that its outputs cover [-1, 1] and not only ≈ 0."
    with torch.no_grad(): agent.net[-1].weight.mul_(scale)
    return agent


# ---- the rules map exactly

def test_round_action_is_the_threshold_rule_elementwise():
    a = torch.linspace(-1, 1, 2001, dtype=torch.float64)
    for thr in (0.5, 0.2, 0.8):
        ref = torch.tensor([1.0 if v > thr else -1.0 if v < -thr else 0.0 for v in a.tolist()], dtype=torch.float64)
        assert torch.equal(round_action(a, thr), ref)
    assert torch.equal(round_action(a, 0.5), torch.from_numpy(np.round(a.numpy())))  # the nearest label
    assert round_action(a.float(), 0.5).dtype == torch.float32


def test_class_action_is_the_confident_argmax():
    logits = torch.randn(500, 3, generator=torch.Generator().manual_seed(0)) * 3
    p = torch.softmax(logits, -1).numpy()
    for thr in (0.4, 0.6, 0.9):
        ref = np.where(p.max(1) > thr, p.argmax(1) - 1, 0).astype(np.float32)
        np.testing.assert_array_equal(class_action(logits, thr).numpy(), ref)


@pytest.mark.parametrize("action", ["round", "classes"])
def test_agent_and_ensemble_orders_are_the_rule_applied_to_their_heads(action):
    agents = [_spread(ILAgent(6, (16,), action, 0.5)) for _ in range(4)]
    ens = ILEnsemble.from_agents(agents)
    obs = torch.rand(300, 6, generator=torch.Generator().manual_seed(1)) * 2 - 0.5
    with torch.no_grad():
        out = ens(obs)
        alone = torch.stack([a(obs) for a in agents], 1)
        heads = torch.stack([a.net(obs) for a in agents], 1)  # (N, M, 1 or 3)
    ref = class_action(heads, 0.5) if action == "classes" else round_action(torch.tanh(heads[..., 0]), 0.5)
    assert torch.equal(out, ref) and torch.equal(alone, ref)
    assert set(out.unique().tolist()) == {-1.0, 0.0, 1.0}  # the spread agents use all three labels


def test_ensemble_rejects_unknown_actions_and_mixed_members():
    with pytest.raises(ValueError, match="action must be one of"): ILAgent(4, action="sign")
    with pytest.raises(ValueError, match="differ in shape or action"):
        ILEnsemble.from_agents([ILAgent(4, (8,), "round", 0.5), ILAgent(4, (8,), "round", 0.6)])
    assert ACTIONS == ("tanh", "round", "classes")


# ---- model keys

def test_paper_mode_keeps_its_model_key_and_each_option_changes_it():
    for profile in ("quick", "full"):
        paper = get_config(profile)
        spelled = get_config(profile, settings={"il.action": "tanh", "il.threshold": 0.5, "il.val_split": "tail"})
        assert spelled.digest(*MODEL_SECTIONS) == paper.digest(*MODEL_SECTIONS)
        keys = {paper.digest(*MODEL_SECTIONS)}
        for k, v in [("il.action", "round"), ("il.action", "classes"), ("il.threshold", 0.6),
                     ("il.val_split", "labelled"), *OPTION.items()]:
            keys.add(get_config(profile, settings={k: v}).digest(*MODEL_SECTIONS))
        keys.add(get_config(profile, settings=OPTION).digest(*MODEL_SECTIONS))
        assert len(keys) == 7  # paper, five distinct single settings, the option run
    # the keyed IL section is the one of the fields that existed before the options
    assert set(_keyed(ILConfig())) == {"hidden", "lr", "batch_size", "max_epochs", "patience", "val_frac", "capital"}


def test_config_refuses_bad_option_values():
    with pytest.raises(ValueError, match="il.action"): ILConfig(action="sign")
    with pytest.raises(ValueError, match="il.threshold"): ILConfig(threshold=1.0)
    with pytest.raises(ValueError, match="il.val_split"): ILConfig(val_split="random")


# ---- the labelled split

@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([-1, 0, 0, 0, 1]), min_size=10, max_size=300), st.sampled_from([0.1, 0.2, 0.25]))
def test_labelled_split_is_one_block_that_holds_labels(labels, val_frac):
    y = np.array(labels, dtype=np.float32)
    v = split_labelled(y, val_frac)
    n_val = int(np.floor(len(y) * val_frac))
    assert v.sum() == n_val == split_tail(len(y), val_frac).sum()
    if n_val:
        idx = np.flatnonzero(v)
        assert (np.diff(idx) == 1).all() and (len(y) - 1 - idx[-1]) % n_val == 0  # a block aligned from the end
    if n_val and (y[-(len(y) // n_val) * n_val:] != 0).any():  # labels inside the blocks: the block holds some
        assert (y[v] != 0).any()
    if not (y != 0).any(): assert (v == split_tail(len(y), val_frac)).all()
    if n_val and (y[-n_val:] != 0).mean() >= (y != 0).mean() / 2: assert (v == split_tail(len(y), val_frac)).all()


def test_labelled_split_per_segment_of_the_baseline():
    rng = np.random.default_rng(3)
    ys = [np.r_[rng.choice([-1, 1], 50), np.zeros(150)], np.zeros(120), np.r_[np.zeros(100), np.ones(100)]]
    g = np.concatenate([np.full(len(y), i) for i, y in enumerate(ys)])
    v = split_labelled(np.concatenate(ys), 0.2, g)
    for i, y in enumerate(ys):
        assert (v[g == i] == split_labelled(y, 0.2)).all()
    assert (np.concatenate(ys)[v & (g == 0)] != 0).any() and not (v[g == 0] == split_tail(200, 0.2)).all()
    assert (v[g == 1] == split_tail(120, 0.2)).all()  # no label: the tail
    assert (v[g == 2] == split_tail(200, 0.2)).all()  # a labelled tail stays


# ---- training under the options

@pytest.mark.parametrize("action", ["round", "classes"])
def test_option_training_is_deterministic_under_a_seed(action):
    X, y = _toy(600, 0)
    y[-200:] = 0  # an all-zero tail: the labelled split moves the validation block
    cfg = ILConfig(hidden=(32, 32), max_epochs=4, patience=2, batch_size=64, action=action, val_split="labelled")
    a1, h1 = fit_il_agent(X, y, cfg, seed=5, progress=False)
    a2, h2 = fit_il_agent(X, y, cfg, seed=5, progress=False)
    a3, _ = fit_il_agent(X, y, cfg, seed=6, progress=False)
    assert _same(a1, a2) and h1["val_loss"] == h2["val_loss"] and not _same(a1, a3)
    assert h1["val_zero_share"] < 1.0 and h1["n_val"] == 120
    _, h_tail = fit_il_agent(X, y, dataclasses.replace(cfg, val_split="tail"), seed=5, progress=False)
    assert h_tail["val_zero_share"] == 1.0
    assert a1.action == action and set(a1(torch.from_numpy(X)).unique().tolist()) <= {-1.0, 0.0, 1.0}


def test_round_is_the_paper_agent_read_as_labels():
    "The same seed, rows and MSE: a `round` agent has the paper agent's weights and rounds its output."
    X, y = _toy(500, 1)
    cfg = ILConfig(hidden=(32, 32), max_epochs=3, patience=2, batch_size=64)
    paper, hp = fit_il_agent(X, y, cfg, seed=2, progress=False)
    rounded, hr = fit_il_agent(X, y, dataclasses.replace(cfg, action="round"), seed=2, progress=False)
    assert _same(paper, rounded) and hp["val_loss"] == hr["val_loss"]
    x = torch.from_numpy(X)
    with torch.no_grad(): assert torch.equal(rounded(x), round_action(paper(x), 0.5))


# ---- the file and the simulator

@pytest.mark.parametrize("action", ["round", "classes"])
def test_saved_file_keeps_the_rule(tmp_path, action):
    agents = [_spread(ILAgent(10, (16,), action, 0.6)) for _ in range(3)]
    scaler = MinMaxScaler().fit(np.random.default_rng(0).random((20, 10)))
    art = ILArtifacts(ILEnsemble.from_agents(agents), agents[0], scaler, [{}], digest="d")
    back = load_il(save_il(art, tmp_path / "il.pt"))
    assert (back.ensemble.action, back.ensemble.threshold, back.baseline.action) == (action, 0.6, action)
    feats = np.random.default_rng(2).random((40, 10))
    for a, b in zip(art.act(feats), back.act(feats)): np.testing.assert_array_equal(a, b)


def test_file_written_before_the_options_acts_as_the_paper(tmp_path):
    agents = [ILAgent(10, (16,)) for _ in range(2)]
    art = ILArtifacts(ILEnsemble.from_agents(agents), agents[0], MinMaxScaler().fit(np.eye(10)), [{}], digest="d")
    p = save_il(art, tmp_path / "il.pt")
    d = load_torch(p)
    del d["action"], d["threshold"]
    back = load_il(save_torch(d, tmp_path / "old.pt"))
    assert back.ensemble.action == "tanh" and back.baseline.action == "tanh"
    feats = np.random.default_rng(3).random((30, 10))
    np.testing.assert_array_equal(art.act(feats)[0], back.act(feats)[0])


def test_simulator_takes_the_ensembles_own_orders():
    "The simulator is unchanged: its IL pool acts on the rounded orders, not its tanh fast path."
    cfg = toy_config(warmup=10, horizon=16, n_envs=3)
    ens = ILEnsemble.from_agents([_spread(ILAgent(4, (16,), "round", 0.5)) for _ in range(10)]).eval()
    assert stacked_mlp(ens) is None
    tanh_twin = ILEnsemble(10, 4, (16,))
    tanh_twin.load_state_dict(ens.state_dict())
    assert stacked_mlp(tanh_twin) is not None
    data = make_market_data(toy_bars(6), None, cfg.sim.warmup, cfg.sim.horizon, 50)
    sim = MarketSim(cfg, data, IdScaler(), ToyStream, ens, ToySynth(), toy_residuals(), n_envs=3, impact="synthesis")
    sim.reset(seed=1)
    seen = set()
    for _ in range(8):
        with torch.no_grad(): ref = ens(sim.scaled).to(torch.float64)
        assert torch.equal(sim.il_act, ref)
        seen |= set(sim.il_act.unique().tolist())
        sim.step(torch.zeros(3))
    assert seen <= {-1.0, 0.0, 1.0} and len(seen) > 1
