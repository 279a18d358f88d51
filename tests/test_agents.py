"""Determinism and consistency of the IL ensemble (ilmarket.agents) and the synthesis net (ilmarket.synthesis)."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from ilmarket.core import ILConfig, SynthesisConfig, get_config, load_torch
from ilmarket.agents import ILAgent, ILArtifacts, ILData, ILEnsemble, fit_il_agent, fit_il_ensemble, load_il, save_il
from ilmarket.features import MinMaxScaler
from ilmarket.synthesis import SynthesisNet, fit_synthesis

CFG = ILConfig(max_epochs=3, patience=2, batch_size=64)


def _toy(n, seed, F=10):
    r = np.random.default_rng(seed)
    X = r.random((n, F)).astype(np.float32)
    y = np.where(X[:, 0] > 0.6, 1, np.where(X[:, 0] < 0.4, -1, 0)).astype(np.float32)
    return X, y


def _same(m1, m2):
    return all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))


def test_same_seed_same_weights_other_seed_other_weights():
    X, y = _toy(600, 0)
    a1, h1 = fit_il_agent(X, y, CFG, seed=5)
    a2, h2 = fit_il_agent(X, y, CFG, seed=5)
    a3, _ = fit_il_agent(X, y, CFG, seed=6)
    assert _same(a1, a2) and h1["val_loss"] == h2["val_loss"]
    assert not _same(a1, a3)


def test_training_does_not_depend_on_global_rng_state():
    X, y = _toy(400, 1)
    torch.manual_seed(123); np.random.seed(1)
    a1, _ = fit_il_agent(X, y, CFG, seed=2)
    torch.manual_seed(999); np.random.seed(7); torch.rand(10)
    a2, _ = fit_il_agent(X, y, CFG, seed=2)
    assert _same(a1, a2)


def test_member_i_uses_seed_plus_i_and_ensemble_equals_members():
    data = [_toy(300, s) for s in range(3)]
    segs = pd.DataFrame({"seg_id": [4, 7, 9], "regime": ["bull", "bear", "sideways"]})
    ild = ILData([d[0] for d in data], [d[1] for d in data], [], segs, segs, pd.DataFrame(), MinMaxScaler())
    cfg = get_config("quick", seed=10, il=dataclasses.asdict(CFG))
    ens, base, hists = fit_il_ensemble(ild, cfg)
    assert len(hists) == 4 and ens.n_agents == 3
    obs = torch.rand(64, 10)
    for i, (X, y) in enumerate(data):
        alone, _ = fit_il_agent(X, y, cfg.il, seed=10 + i)
        with torch.no_grad():
            np.testing.assert_allclose(ens(obs)[:, i].numpy(), alone(obs).numpy(), atol=1e-6)
        assert _same(ens.member(i), alone)
    assert hists[-1]["n_train"] + hists[-1]["n_val"] == 900


def test_ensemble_save_load_weights_only(tmp_path):
    agents = [ILAgent(10) for _ in range(4)]
    ens = ILEnsemble.from_agents(agents)
    scaler = MinMaxScaler().fit(np.random.default_rng(0).random((20, 10)))
    art = ILArtifacts(ens, agents[0], scaler, [{"val_loss": [0.5, 0.4]}], pd.DataFrame({"seg_id": [1, 2, 3, 4]}), "d1", {"seed": 0})
    p = save_il(art, tmp_path / "il.pt")
    assert isinstance(torch.load(p, weights_only=True), dict)
    back = load_il(p)
    feats = np.random.default_rng(2).random((30, 10))
    a, b = art.act(feats), back.act(feats)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert back.digest == "d1" and back.histories[0]["val_loss"] == [0.5, 0.4]


def test_synthesis_same_seed_same_weights():
    rng = np.random.default_rng(0)
    A = rng.uniform(-1, 1, (800, 10)).astype(np.float32)
    y = 1e-3 * A[:, 2] + rng.normal(0, 1e-4, 800)
    cfg = SynthesisConfig(max_epochs=3, patience=2)
    n1, _ = fit_synthesis(A, y, cfg, seed=1)
    n2, _ = fit_synthesis(A, y, cfg, seed=1)
    n3, _ = fit_synthesis(A, y, cfg, seed=2)
    assert _same(n1, n2) and not _same(n1, n3)
    r, w = n1(torch.from_numpy(A[:5]))
    assert r.shape == (5,) and torch.allclose(w.sum(-1), torch.ones(5))


def test_pipeline_caches_by_digest(tmp_path, caplog):
    """Another pipeline on the same inputs loads the files; another IL setting writes its own files and keeps the
    first ones; the synthesis net follows its IL ensemble."""
    import logging
    from ilmarket.pipeline import Pipeline
    cfg = get_config("quick", il={"max_epochs": 1}, synthesis={"max_epochs": 1})
    p1 = Pipeline(cfg, cache=tmp_path)
    a1, s1 = p1.il, p1.synthesis
    with caplog.at_level(logging.INFO, logger="ilmarket"):
        a2 = Pipeline(cfg, p1.bars, cache=tmp_path).il
    assert "IL ensemble loaded" in caplog.text and a2.digest == a1.digest
    assert all(torch.equal(x, y) for x, y in zip(a1.ensemble.state_dict().values(), a2.ensemble.state_dict().values()))
    cfg2 = get_config("quick", il={"max_epochs": 1, "lr": 5e-4}, synthesis={"max_epochs": 1})
    p2 = Pipeline(cfg2, p1.bars, cache=tmp_path)
    b, s2 = p2.il, p2.synthesis
    assert b.digest != a1.digest and s2.digest != s1.digest and s2.digest.startswith(b.digest)
    assert len(list(tmp_path.glob("il-*.pt"))) == 2 and len(list(tmp_path.glob("synthesis-*.pt"))) == 2
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ilmarket"):
        again = Pipeline(cfg, p1.bars, cache=tmp_path)
        assert again.il.digest == a1.digest and again.synthesis.digest == s1.digest  # the first run's files were kept
    assert "trained again" not in caplog.text and "IL1/" not in caplog.text
