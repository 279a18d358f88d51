"""DDPG outside its notebook: bit-exact resume (toy env and the real simulator class), refused checkpoints,
the update against a textbook implementation, the replay ring against a list, truncation handling, damaged
checkpoints rebuilt from the last good one."""
import copy
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings, strategies as st

from ilmarket.core import get_config, save_torch
from ilmarket.ddpg import (DDPG, CheckpointMismatch, ReplayBuffer, ToyMarket, load_actor, load_checkpoint,
                           textbook_update, train_ddpg)

from ilmarket.testing import Interrupt, stop_at, toy_config, toy_sim

torch.set_num_threads(1)


def small_cfg(**ddpg):
    base = dict(total_steps=480, learning_starts=96, buffer_size=2_000, checkpoint_every=160)
    return get_config("quick", ddpg={**base, **ddpg})


def all_weights(ck):
    return {f"{net}.{k}": v for net in ("actor", "critic", "actor_target", "critic_target") for k, v in ck["agent"][net].items()}


def assert_same_run(a, b):
    wa, wb = all_weights(a), all_weights(b)
    assert wa.keys() == wb.keys()
    for k in wa: assert torch.equal(wa[k], wb[k]), k
    for opt in ("actor_opt", "critic_opt"):
        for pid, st_a in a["agent"][opt]["state"].items():
            for k, v in st_a.items(): assert torch.equal(v, b["agent"][opt]["state"][pid][k]), (opt, pid, k)
    assert torch.equal(a["buffer"]["data"], b["buffer"]["data"])
    assert a["history"] == b["history"] or pd.DataFrame(a["history"]).equals(pd.DataFrame(b["history"]))
    assert (a["step"], a["n_updates"]) == (b["step"], b["n_updates"])


@pytest.mark.parametrize("interrupt", [100, 170, 470])
def test_resume_gives_the_uninterrupted_weights(tmp_path, interrupt):
    cfg = small_cfg()
    train_ddpg(ToyMarket(8, horizon=40), cfg, seed=1, checkpoint_path=tmp_path / "ref.pt", progress=False)
    path = tmp_path / "run.pt"
    with pytest.raises(Interrupt):
        train_ddpg(ToyMarket(8, horizon=40), cfg, seed=1, checkpoint_path=path, progress=False, callback=stop_at(interrupt))
    if interrupt >= 160: assert load_checkpoint(path)["step"] == 160 * (interrupt // 160)  # the last checkpoint before the crash
    else: assert not path.exists()
    actor, hist = train_ddpg(ToyMarket(8, horizon=40), cfg, seed=1, checkpoint_path=path, progress=False)
    assert_same_run(load_checkpoint(tmp_path / "ref.pt"), load_checkpoint(path))
    ref = load_actor(tmp_path / "ref.pt")
    for a, b in zip(ref.parameters(), actor.parameters()): assert torch.equal(a, b)


def test_training_longer_continues_a_finished_run(tmp_path):
    straight = small_cfg(total_steps=640)
    train_ddpg(ToyMarket(8, horizon=40), straight, seed=2, checkpoint_path=tmp_path / "a.pt", progress=False, log_every=80)
    train_ddpg(ToyMarket(8, horizon=40), small_cfg(total_steps=320), seed=2, checkpoint_path=tmp_path / "b.pt", progress=False, log_every=80)
    train_ddpg(ToyMarket(8, horizon=40), straight, seed=2, checkpoint_path=tmp_path / "b.pt", progress=False, log_every=80)
    assert_same_run(load_checkpoint(tmp_path / "a.pt"), load_checkpoint(tmp_path / "b.pt"))


def test_same_seed_same_weights_other_seed_other_weights():
    cfg = small_cfg(total_steps=240)
    a, _ = train_ddpg(ToyMarket(4), cfg, seed=0, progress=False)
    b, _ = train_ddpg(ToyMarket(4), cfg, seed=0, progress=False)
    torch.manual_seed(123)  # the global RNG state must not matter
    c, _ = train_ddpg(ToyMarket(4), cfg, seed=1, progress=False)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters()))


# ---- the real simulator class, with tiny stand-ins for the learned parts

def market_sim(impact="synthesis", n_envs=4, horizon=24):
    return toy_sim(impact, n_envs, toy_config(warmup=10, horizon=horizon, n_envs=n_envs), n_days=6)


@pytest.mark.parametrize("impact", ["synthesis", "static"])
def test_resume_in_the_market_simulator(tmp_path, impact):
    pytest.importorskip("ilmarket.market")
    cfg = small_cfg(total_steps=320, learning_starts=64, checkpoint_every=96)
    train_ddpg(market_sim(impact), cfg, seed=0, checkpoint_path=tmp_path / "ref.pt", progress=False)
    with pytest.raises(Interrupt):
        train_ddpg(market_sim(impact), cfg, seed=0, checkpoint_path=tmp_path / "run.pt", progress=False, callback=stop_at(250))
    assert load_checkpoint(tmp_path / "run.pt")["step"] == 192
    train_ddpg(market_sim(impact), cfg, seed=0, checkpoint_path=tmp_path / "run.pt", progress=False)
    assert_same_run(load_checkpoint(tmp_path / "ref.pt"), load_checkpoint(tmp_path / "run.pt"))
    with pytest.raises(CheckpointMismatch, match="env"):
        train_ddpg(market_sim("sqrt" if impact == "synthesis" else "synthesis"), cfg, seed=0, checkpoint_path=tmp_path / "run.pt", progress=False)


# ---- refused checkpoints

@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "ddpg.pt"
    train_ddpg(ToyMarket(4), small_cfg(total_steps=160), seed=0, checkpoint_path=path, progress=False)
    return path


def test_checkpoint_is_weights_only_loadable(finished):
    ck = torch.load(finished, weights_only=True)
    assert ck["meta"]["format"] == "ilmarket.ddpg/1" and ck["step"] == 160


def flip_middle_bit(b):
    b = bytearray(b)
    b[len(b) // 2] ^= 0x10
    return bytes(b)


DAMAGES = {"half": lambda b: b[: len(b) // 2], "last byte": lambda b: b[:-1], "empty": lambda b: b"",
           "zeros": lambda b: b"\x00" * 64, "bit flip": flip_middle_bit}


@pytest.mark.parametrize("damage, interrupt, first_step",
                         [*[(d, 400, 168) for d in DAMAGES], ("half", 200, 8), ("bit flip", None, 328)])
def test_damaged_latest_checkpoint_resumes_from_the_last_good_one(tmp_path, caplog, damage, interrupt, first_step):
    """Checkpoints at 160, 320, 480: the damaged latest one is set aside, training resumes from the one before it
    (or from scratch when there is none) and ends bit-identical to an uninterrupted run."""
    cfg = small_cfg()
    train_ddpg(ToyMarket(8, horizon=40), cfg, seed=1, checkpoint_path=tmp_path / "ref.pt", progress=False)
    path = tmp_path / "run.pt"
    run = dict(cfg=cfg, seed=1, checkpoint_path=path, progress=False)
    if interrupt is None: train_ddpg(ToyMarket(8, horizon=40), **run)
    else:
        with pytest.raises(Interrupt):
            train_ddpg(ToyMarket(8, horizon=40), **run, callback=stop_at(interrupt))
    path.write_bytes(DAMAGES[damage](path.read_bytes()))
    seen = []
    with caplog.at_level(logging.WARNING, logger="ilmarket"):
        actor, hist = train_ddpg(ToyMarket(8, horizon=40), **run, callback=seen.append)
    assert seen[0] == first_step  # the step after the checkpoint it resumed from (8 = the first step of a fresh run)
    assert "run.pt" in caplog.text and "set aside" in caplog.text
    assert (tmp_path / "run.pt.damaged").exists()
    assert_same_run(load_checkpoint(tmp_path / "ref.pt"), load_checkpoint(path))
    for a, b in zip(load_actor(tmp_path / "ref.pt").parameters(), actor.parameters()): assert torch.equal(a, b)


def test_damaged_checkpoints_with_no_good_one_start_afresh(tmp_path, caplog):
    cfg = small_cfg(total_steps=400)
    path = tmp_path / "run.pt"
    train_ddpg(ToyMarket(4), cfg, seed=0, checkpoint_path=path, progress=False)
    prev = tmp_path / "run.prev.pt"
    assert load_checkpoint(prev)["step"] == 320 and load_checkpoint(path)["step"] == 400
    path.write_bytes(path.read_bytes()[:100]); prev.write_bytes(b"")
    seen = []
    with caplog.at_level(logging.WARNING, logger="ilmarket"):
        train_ddpg(ToyMarket(4), cfg, seed=0, checkpoint_path=path, progress=False, callback=seen.append)
    assert seen[0] == 4 and "run.pt" in caplog.text and "run.prev.pt" in caplog.text
    assert load_checkpoint(path)["step"] == 400


def test_legacy_checkpoint_without_a_recorded_hash_is_rebuilt(finished, tmp_path, caplog):
    path = tmp_path / "legacy.pt"
    torch.save(load_checkpoint(finished), path)  # as written before hashes were recorded
    seen = []
    with caplog.at_level(logging.WARNING, logger="ilmarket"):
        train_ddpg(ToyMarket(4), small_cfg(total_steps=160), seed=0, checkpoint_path=path, progress=False,
                   callback=seen.append)
    assert seen[0] == 4 and "no sha256 recorded" in caplog.text
    assert_same_run(load_checkpoint(finished), load_checkpoint(path))


def test_foreign_or_incomplete_checkpoint_is_refused(finished, tmp_path):
    path = tmp_path / "other.pt"
    save_torch({"weights": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="not a DDPG checkpoint"):
        train_ddpg(ToyMarket(4), small_cfg(total_steps=160), seed=0, checkpoint_path=path, progress=False)
    ck = load_checkpoint(finished)
    del ck["buffer"]
    save_torch(ck, path)
    with pytest.raises(ValueError, match="missing \\['buffer'\\]"):
        train_ddpg(ToyMarket(4), small_cfg(total_steps=160), seed=0, checkpoint_path=path, progress=False)
    ck = load_checkpoint(finished)
    ck["agent"]["critic"]["net.0.weight"] = torch.zeros(5, 5)
    save_torch(ck, path)
    with pytest.raises(ValueError, match="does not fit this run"):
        train_ddpg(ToyMarket(4), small_cfg(total_steps=160), seed=0, checkpoint_path=path, progress=False)


@pytest.mark.parametrize("kwargs, env, message", [
    (dict(cfg=small_cfg(total_steps=160, critic_hidden=(64, 64, 64))), ToyMarket(4), "ddpg.critic_hidden"),
    (dict(cfg=small_cfg(total_steps=160, batch_size=64)), ToyMarket(4), "ddpg.batch_size: 128 in the file, 64 now"),
    (dict(seed=5), ToyMarket(4), "seed: 0 in the file, 5 now"),
    (dict(run_key="other-models"), ToyMarket(4), "run_key"),
    (dict(), ToyMarket(4, horizon=99), "env: "),
    (dict(), ToyMarket(6), "n_envs: 4 in the file, 6 now"),
])
def test_mismatched_checkpoint_is_refused(finished, kwargs, env, message):
    args = {"cfg": small_cfg(total_steps=160), "seed": 0, **kwargs}
    with pytest.raises(CheckpointMismatch, match=message):
        train_ddpg(env, args.pop("cfg"), checkpoint_path=finished, progress=False, **args)


def test_mismatched_checkpoint_can_be_overwritten(finished, tmp_path):
    path = tmp_path / "c.pt"
    path.write_bytes(finished.read_bytes())
    train_ddpg(ToyMarket(4), small_cfg(total_steps=160), seed=7, checkpoint_path=path, resume=False, progress=False)
    assert load_checkpoint(path)["meta"]["seed"] == 7


# ---- the update, the replay memory, truncations

def test_update_equals_the_textbook_update():
    torch.manual_seed(0)
    fast = DDPG(12, get_config("quick").ddpg)
    ref = copy.deepcopy(fast)
    g = torch.Generator().manual_seed(0)
    for _ in range(30):
        b = (torch.randn(128, 12, generator=g), torch.rand(128, generator=g) * 2 - 1, torch.randn(128, generator=g),
             torch.randn(128, 12, generator=g), (torch.rand(128, generator=g) < 0.2).float())
        fast.update(*b); textbook_update(ref, *b)
    for net in ("actor", "critic", "actor_target", "critic_target"):
        for (k, a), b in zip(getattr(fast, net).state_dict().items(), getattr(ref, net).state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=f"{net}.{k}")
    # Adam moments agree as well, so a checkpoint of either resumes the other
    for opt in ("actor_opt", "critic_opt"):
        for sa, sb in zip(getattr(fast, opt).state_dict()["state"].values(), getattr(ref, opt).state_dict()["state"].values()):
            assert float(sa["step"]) == float(sb["step"]) == 30
            torch.testing.assert_close(sa["exp_avg_sq"], sb["exp_avg_sq"], rtol=1e-4, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.lists(st.integers(1, 9), min_size=1, max_size=12), st.integers(0, 3))
def test_replay_ring_keeps_the_last_capacity_transitions(capacity, sizes, seed):
    sizes = [min(n, capacity) for n in sizes]
    buf, kept, k = ReplayBuffer(capacity, 2, batch_size=5, seed=seed), [], 0
    for n in sizes:
        ids = torch.arange(k, k + n, dtype=torch.float32)
        buf.add(torch.stack([ids, -ids], 1), ids, ids + 0.5, torch.stack([ids + 1, -ids], 1), (ids % 2))
        kept = (kept + ids.tolist())[-capacity:]
        k += n
    assert len(buf) == len(kept) and buf.pos == k % capacity
    assert sorted(buf.act[: len(buf)].tolist()) == sorted(kept)
    assert buf.act[(buf.pos - 1) % capacity] == k - 1  # the newest row sits just before the ring position
    o, a, r, no, d = buf.sample()
    assert set(a.tolist()) <= set(kept)
    assert torch.equal(o[:, 0], a) and torch.equal(r, a + 0.5) and torch.equal(no[:, 0], a + 1) and torch.equal(d, a % 2)


def test_replay_sampling_is_seeded_and_lazy():
    a, b = ReplayBuffer(100, 3, 16, seed=4), ReplayBuffer(100, 3, 16, seed=4)
    x = torch.randn(50, 3)
    for buf in (a, b): buf.add(x, x[:, 0], x[:, 1], x, torch.zeros(50))
    assert all(torch.equal(u.clone(), v) for u, v in zip(a.sample(), b.sample()))
    big = ReplayBuffer(9_000_000, 12)
    assert big.nbytes == 9_000_000 * 108 and big.data.shape == (9_000_000, 27)


class TerminatingToy(ToyMarket):
    "ToyMarket whose episode ends are true terminal states (info['terminated'])."
    def step(self, act):
        obs, rew, done, info = super().step(act)
        return obs, rew, done, {**info, "terminated": done.clone()}


@pytest.mark.parametrize("env_cls, done_flag", [(ToyMarket, 0.0), (TerminatingToy, 1.0)])
def test_episode_ends_store_the_final_state(tmp_path, env_cls, done_flag):
    path = tmp_path / "t.pt"
    train_ddpg(env_cls(4, horizon=10), small_cfg(total_steps=80, learning_starts=200), seed=0, checkpoint_path=path, progress=False)
    rows = load_checkpoint(path)["buffer"]["data"]
    d = ToyMarket.n_features + 2
    obs, nxt, done = rows[:, :d], rows[:, d:2 * d], rows[:, -1]
    t = torch.arange(len(rows)) // 4 % 10  # step within the episode of each row (4 envs per vector step)
    end = t == 9
    assert torch.equal(done[end], torch.full((int(end.sum()),), done_flag)) and (done[~end] == 0).all()
    # the stored next state of a finished episode is its last state, not the restarted episode's first
    inner = ~end[:-4]
    assert torch.equal(nxt[:-4][inner], obs[4:][inner])
    assert not (nxt[end][:, -2] == 1).all()  # restarted episodes start with all cash; final states rarely do
    assert torch.equal(nxt[end][:, 0], obs[end][:, 0])  # the drift regime is the finished episode's


# ---- agent options (action rule, reward) and checkpoint snapshots

OPTIONS = [dict(reward="dvv"), dict(action_rule="band", action_tau=0.5), dict(action_rule="discrete", action_tau=0.4),
           dict(reward="dvv", action_rule="discrete", action_tau=1 / 3)]


def _module_at(commit: str, path: str, name: str, tmp_path):
    "The package module `path` as it was at `commit` (its relative imports resolve to today's package), or skip."
    import importlib.util
    import subprocess
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    got = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=repo, capture_output=True, text=True)
    if got.returncode != 0: pytest.skip(f"{commit} is not in this checkout's history")
    file = tmp_path / f"{name}.py"
    file.write_text(got.stdout, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"ilmarket.{name}", file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _before_options(cfg):
    "A config whose `ddpg` section has only the fields DDPGConfig had before the options (as the old code saw it)."
    import dataclasses
    import types
    new = {"reward", "action_rule", "action_tau"}
    kept = [(f.name, f.type, dataclasses.field(default=getattr(cfg.ddpg, f.name)))
            for f in dataclasses.fields(cfg.ddpg) if f.name not in new]
    old = dataclasses.make_dataclass("DDPGConfig", kept, frozen=True)
    return types.SimpleNamespace(ddpg=old())


def test_a_checkpoint_of_the_code_before_the_options_loads_as_a_finished_run(tmp_path):
    from ilmarket.ddpg import _run_meta, load_snapshots
    old = _module_at("cf772a0", "ilmarket/ddpg.py", "_ddpg_cf772a0", tmp_path)
    cfg = small_cfg(total_steps=320)
    path = tmp_path / "old.pt"
    old_actor, _ = old.train_ddpg(old.ToyMarket(4, horizon=40), _before_options(cfg), seed=5, checkpoint_path=path,
                                  progress=False, run_key="upstream")
    written = path.read_bytes()
    assert "snapshots" not in load_checkpoint(path)
    assert old._run_meta(_before_options(cfg), 5, 12, 4, ToyMarket(4, horizon=40), "upstream") == \
        _run_meta(cfg, 5, 12, 4, ToyMarket(4, horizon=40), "upstream")  # paper mode: the same run identity
    seen = []
    actor, hist = train_ddpg(ToyMarket(4, horizon=40), cfg, seed=5, checkpoint_path=path, progress=False,
                             run_key="upstream", callback=seen.append)
    assert seen == [] and path.read_bytes() == written  # finished: nothing trained, the file not rewritten
    assert int(hist["step"].iloc[-1]) == 320
    assert load_snapshots(path) == {}  # no snapshots: the selection keeps the last actor
    for a, b in zip(actor.parameters(), old_actor.parameters()): assert torch.equal(a, b)
    again, _ = train_ddpg(ToyMarket(4, horizon=40), cfg, seed=5, progress=False, run_key="upstream")
    for a, b in zip(again.parameters(), old_actor.parameters()): assert torch.equal(a, b)  # trains as before


@pytest.mark.parametrize("opts", OPTIONS)
def test_an_option_is_part_of_the_config_digest_and_the_run_identity(tmp_path, opts, finished):
    from ilmarket.ddpg import _run_meta, make_agent_env
    paper, opt = small_cfg(total_steps=160), small_cfg(total_steps=160, **opts)
    base = dict(total_steps=160, learning_starts=96, buffer_size=2_000, checkpoint_every=160)
    assert paper.digest("ddpg") == get_config("quick", ddpg=base).digest("ddpg")
    assert opt.digest("ddpg") != paper.digest("ddpg")
    meta = _run_meta(opt, 0, 12, 4, make_agent_env(ToyMarket(4), opt.ddpg), "")
    assert {k: meta["ddpg"][k] for k in opts} == opts
    assert meta["env"] != ToyMarket(4).fingerprint
    paper_meta = _run_meta(paper, 0, 12, 4, ToyMarket(4), "")["ddpg"]
    for k in ("reward", "action_rule", "action_tau"): assert k not in paper_meta
    with pytest.raises(CheckpointMismatch, match=f"ddpg.{next(iter(opts))}"):
        train_ddpg(ToyMarket(4), opt, seed=0, checkpoint_path=finished, progress=False)


@pytest.mark.parametrize("opts", OPTIONS)
def test_options_resume_exactly_in_the_market_simulator(tmp_path, opts):
    cfg = small_cfg(total_steps=320, learning_starts=64, checkpoint_every=96, **opts)
    train_ddpg(market_sim(), cfg, seed=0, checkpoint_path=tmp_path / "ref.pt", progress=False)
    with pytest.raises(Interrupt):
        train_ddpg(market_sim(), cfg, seed=0, checkpoint_path=tmp_path / "run.pt", progress=False,
                   callback=stop_at(250))
    train_ddpg(market_sim(), cfg, seed=0, checkpoint_path=tmp_path / "run.pt", progress=False)
    ref, run = load_checkpoint(tmp_path / "ref.pt"), load_checkpoint(tmp_path / "run.pt")
    assert_same_run(ref, run)
    assert ref["snapshots"]["step"] == run["snapshots"]["step"] == [96, 192, 288, 320]


def test_the_dvv_reward_is_the_value_ratio_in_the_market_simulator():
    from ilmarket.ddpg import make_agent_env
    sim, twin = market_sim(horizon=6), market_sim(horizon=6)
    env = make_agent_env(twin, small_cfg(reward="dvv").ddpg)
    sim.reset(seed=3), env.reset(seed=3)
    prev = sim.c0.clone()
    g = torch.Generator().manual_seed(0)
    for _ in range(8):  # across an episode end: V_0 = C0 again
        a = torch.rand(4, generator=g) * 2 - 1
        _, _, done, info = sim.step(a)
        _, rew, _, info2 = env.step(a)
        assert torch.equal(info["value"], info2["value"])
        torch.testing.assert_close(rew, (info["value"] / prev - 1).float(), rtol=1e-6, atol=0)
        prev = torch.where(done, sim.c0, info["value"])


@pytest.mark.parametrize("kind,tau", [("band", 0.5), ("discrete", 0.4)])
def test_the_rule_is_applied_to_the_orders_and_to_the_trained_policy(kind, tau):
    from ilmarket.ddpg import ActionRule, Actor, FinalRL, RLBaseline, RuleEnv
    rule = ActionRule(kind, tau)
    a = torch.linspace(-1, 1, 41)
    out = rule(a)
    small = a.abs() < tau
    assert torch.equal(out[small], torch.zeros(int(small.sum())))
    assert torch.equal(out[~small], a[~small] if kind == "band" else a[~small].sign())
    torch.manual_seed(0)
    actor, obs = Actor(12), ToyMarket(64).reset(seed=1)
    with torch.no_grad(): raw = actor(obs)
    for cls in (FinalRL, RLBaseline): assert torch.equal(cls(actor, rule).act(obs), rule(raw))
    assert torch.equal(FinalRL(actor).act(obs), raw)  # the paper's rule: the output itself
    plain, ruled = ToyMarket(4, horizon=8), RuleEnv(ToyMarket(4, horizon=8), rule)
    plain.reset(seed=0), ruled.reset(seed=0)
    act = torch.tensor([0.1, -0.3, 0.45, 0.9])
    assert torch.equal(ruled.step(act)[3]["shares"], plain.step(rule(act))[3]["shares"])


def test_snapshots_at_every_checkpoint_survive_a_resume(tmp_path):
    from ilmarket.ddpg import load_snapshots
    cfg = small_cfg()
    actor, _ = train_ddpg(ToyMarket(8, horizon=40), cfg, seed=1, checkpoint_path=tmp_path / "ref.pt", progress=False)
    with pytest.raises(Interrupt):
        train_ddpg(ToyMarket(8, horizon=40), cfg, seed=1, checkpoint_path=tmp_path / "run.pt", progress=False,
                   callback=stop_at(400))
    train_ddpg(ToyMarket(8, horizon=40), cfg, seed=1, checkpoint_path=tmp_path / "run.pt", progress=False)
    ref, run = load_snapshots(tmp_path / "ref.pt"), load_snapshots(tmp_path / "run.pt")
    assert sorted(ref) == sorted(run) == [160, 320, 480]
    for s in ref:
        for a, b in zip(ref[s].parameters(), run[s].parameters()): assert torch.equal(a, b)
    for a, b in zip(ref[480].parameters(), actor.parameters()): assert torch.equal(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(ref[160].parameters(), ref[480].parameters()))
    ck = torch.load(tmp_path / "ref.pt", weights_only=True)
    assert set(ck["snapshots"]) == {"step", "actor"} and set(ck["snapshots"]["actor"][0]) == set(actor.state_dict())
