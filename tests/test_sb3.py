"""The stable-baselines3 adapter (`ilmarket.sb3.SB3VecEnv`) on the toy simulator: SB3's environment checks as they
apply to a VecEnv, the episode end against the Gymnasium vector env and inside PPO's rollout, seeding, the attribute
interface, and PPO's `learn()` (deterministic under a seed)."""
import warnings

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import _check_box_obs, _check_obs, _check_unsupported_spaces
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecCheckNan, VecEnv, VecEnvWrapper, VecMonitor

from ilmarket.market import MarketVecEnv
from ilmarket.sb3 import SB3VecEnv
from ilmarket.testing import toy_config, toy_sim

torch.set_num_threads(1)  # the machine's cores are shared; results do not depend on it
N = 4


def make_env(seed: int | None = None, n_envs: int = N) -> SB3VecEnv:
    return SB3VecEnv(toy_sim(n_envs=n_envs), seed=seed)


def random_actions(env: VecEnv, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(-1, 1, (env.num_envs, *env.action_space.shape)).astype(np.float32)


def check_vec_env(env: VecEnv, steps: int, seed: int = 0) -> None:
    "SB3's `check_env` checks that apply to a VecEnv, and the VecEnv contract of `step` (N rewards, dones, infos)."
    n = env.num_envs
    assert isinstance(env.observation_space, spaces.Space) and isinstance(env.action_space, spaces.Space)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unsupported space or an unconventional shape warns: fail on it
        _check_unsupported_spaces(env, env.observation_space, env.action_space)
        if isinstance(env.observation_space, spaces.Box): _check_box_obs(env.observation_space)
    obs = env.reset()
    assert isinstance(obs, np.ndarray) and obs.shape == (n, *env.observation_space.shape)
    for o in obs: _check_obs(o, env.observation_space, "reset")
    checked, rng = VecCheckNan(env, raise_exception=True), np.random.default_rng(seed)
    ended = 0
    for _ in range(steps):
        obs, rew, done, infos = checked.step(random_actions(env, rng))
        for o in obs: _check_obs(o, env.observation_space, "step")
        assert rew.shape == (n,) and np.issubdtype(rew.dtype, np.floating)
        assert done.shape == (n,) and done.dtype == np.bool_
        assert isinstance(infos, list) and len(infos) == n and all(isinstance(d, dict) for d in infos)
        assert all(isinstance(d["TimeLimit.truncated"], bool) for d in infos)
        for i in np.flatnonzero(done):
            _check_obs(infos[i]["terminal_observation"], env.observation_space, "step")
            ended += 1
    assert ended > 0, "no episode ended in the steps checked"


def test_the_adapter_passes_the_vec_env_checks():
    env = make_env()
    check_vec_env(env, steps=2 * env.venv.sim.horizon + 3)


class _NoTerminalObs(SB3VecEnv):
    "A broken adapter: it forgets the terminal observation (what the checks must catch)."
    def step_wait(self):
        obs, rew, done, infos = super().step_wait()
        for d in infos: d.pop("terminal_observation", None)
        return obs, rew, done, infos


def test_the_checks_catch_a_missing_terminal_observation():
    env = _NoTerminalObs(toy_sim(n_envs=N))
    with pytest.raises(KeyError, match="terminal_observation"):
        check_vec_env(env, steps=env.venv.sim.horizon)


def test_episode_end_matches_the_gymnasium_vector_env():
    "Same seed, same actions: every step equal to MarketVecEnv's; at the end SB3's keys carry its final_obs."
    a, b = make_env(seed=7), MarketVecEnv(toy_sim(n_envs=N))
    obs_a, (obs_b, _) = a.reset(), b.reset(seed=7)
    np.testing.assert_array_equal(obs_a, obs_b)
    horizon, rng = a.venv.sim.horizon, np.random.default_rng(3)
    for k in range(horizon):
        act = random_actions(a, rng)
        obs_a, rew_a, done_a, infos_a = a.step(act)
        obs_b, rew_b, term_b, trunc_b, infos_b = b.step(act)
        np.testing.assert_array_equal(obs_a, obs_b)
        np.testing.assert_array_equal(rew_a, rew_b)
        assert done_a.tolist() == (term_b | trunc_b).tolist() == [k == horizon - 1] * N
        if k < horizon - 1:
            assert not any("terminal_observation" in d for d in infos_a)
            assert not any(d["TimeLimit.truncated"] for d in infos_a)
    assert all(d["TimeLimit.truncated"] for d in infos_a)  # a time limit, never a terminal state
    terminal = np.stack([d["terminal_observation"] for d in infos_a])
    np.testing.assert_array_equal(terminal, infos_b["final_obs"])
    c0 = a.venv.sim.cfg.sim.agent_capital
    for i, d in enumerate(infos_a):  # the terminal observation is the last bar's account, not the new episode's
        np.testing.assert_allclose(terminal[i, -2:], [d["cash"] / c0, d["shares"] * d["price"] / c0], rtol=1e-5)
    assert not np.array_equal(terminal, obs_a)
    np.testing.assert_allclose(obs_a[:, -2:], np.tile([1.0, 0.0], (N, 1)))  # the next episode starts all in cash
    assert [d["price"] for d in a.reset_infos] == a.venv.sim.px.tolist()


class _Record(VecEnvWrapper):
    "Records what the env returned at every step (the rewards before SB3's bootstrap)."
    def __init__(self, venv: VecEnv):
        super().__init__(venv)
        self.rewards, self.infos = [], []

    def reset(self):
        return self.venv.reset()

    def step_wait(self):
        obs, rew, done, infos = self.venv.step_wait()
        self.rewards.append(rew.copy())
        self.infos.append(infos)
        return obs, rew, done, infos


def test_ppo_bootstraps_the_time_limit_from_the_terminal_observation():
    "In PPO's rollout the last reward of an episode becomes r + γ·V(terminal_observation); the others stay r."
    rec = _Record(make_env())
    horizon = rec.venv.venv.sim.horizon
    model = PPO("MlpPolicy", rec, n_steps=horizon, batch_size=N * horizon, n_epochs=1, seed=0, device="cpu")
    _, callback = model._setup_learn(N * horizon, None)
    callback.on_training_start(locals(), globals())
    assert model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=horizon)
    buffered, raw = model.rollout_buffer.rewards, np.stack(rec.rewards)
    np.testing.assert_allclose(buffered[:-1], raw[:-1], rtol=1e-6)
    terminal = np.stack([d["terminal_observation"] for d in rec.infos[-1]])
    with torch.no_grad():
        v_term = model.policy.predict_values(torch.as_tensor(terminal)).numpy().ravel()
    np.testing.assert_allclose(buffered[-1], raw[-1] + model.gamma * v_term, rtol=1e-5)
    assert np.abs(v_term).max() > 0  # the bootstrap term is not trivially zero


def test_seeding():
    first = make_env().reset()
    np.testing.assert_array_equal(first, make_env().reset())  # no seed: the config's
    np.testing.assert_array_equal(first, make_env(seed=toy_config().seed).reset())
    seeded = make_env()
    assert seeded.seed(5) == [5 + i for i in range(N)]  # SB3's per-env seeds; the batch takes the first
    obs5 = seeded.reset()
    assert not np.array_equal(obs5, first)
    np.testing.assert_array_equal(obs5, make_env(seed=5).reset())
    again = make_env(seed=5)
    again.reset()
    assert not np.array_equal(again.reset(), obs5)  # a later reset continues the generator
    again.seed(5)
    np.testing.assert_array_equal(again.reset(), obs5)  # until seed() is called again


def test_attributes_methods_and_wrappers():
    env = make_env()
    env.reset()
    assert env.get_attr("num_envs") == [N] * N
    assert env.get_attr("sim", indices=[1, 2]) == [env.venv.sim] * 2
    assert env.get_attr("sim", indices=3) == [env.venv.sim]
    assert (env.has_attr("sim"), env.has_attr("no_such_attribute")) == (True, False)
    with pytest.raises(AttributeError):
        env.get_attr("no_such_attribute")
    env.set_attr("note", 1)
    assert env.venv.note == 1
    env.set_attr("note", 2, indices=list(range(N)))  # every market named explicitly is the whole batch
    assert env.venv.note == 2
    with pytest.raises(ValueError, match="pass indices=None"):
        env.set_attr("note", 3, indices=[0])
    assert env.venv.note == 2
    with pytest.raises(ValueError, match=f"one simulator all {N} markets share"):
        env.env_method("reset", indices=[0, 1])
    out = env.env_method("reset", seed=5)
    assert len(out) == N and all(o is out[0] for o in out)
    np.testing.assert_array_equal(out[0][0], make_env(seed=5).reset())
    assert env.env_is_wrapped(Monitor) == [False] * N
    assert env.env_is_wrapped(Monitor, indices=[0]) == [False]
    assert env.render_mode is None


def test_refusals():
    env = make_env()
    env.set_options({"anchors": [100] * N})
    with pytest.raises(ValueError, match="takes no options"):
        env.reset()
    env = make_env()
    env.reset()
    with pytest.raises(RuntimeError, match="step_async"):
        env.step_wait()
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full((N, 1), np.nan, np.float32))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros((N + 1, 1), np.float32))


def test_a_gymnasium_vector_env_or_a_simulator():
    sim = toy_sim(n_envs=N)
    venv = MarketVecEnv(sim)
    assert SB3VecEnv(venv).venv is venv
    assert SB3VecEnv(sim).venv.sim is sim


def test_vec_monitor_episode_statistics():
    env = VecMonitor(make_env())
    env.reset()
    horizon, rng, total = env.venv.venv.sim.horizon, np.random.default_rng(4), np.zeros(N)
    for _ in range(horizon):
        _, rew, done, infos = env.step(random_actions(env, rng))
        total += rew
    assert done.all()
    np.testing.assert_allclose([d["episode"]["r"] for d in infos], total, atol=1e-6)  # VecMonitor rounds to 6 places
    assert [d["episode"]["l"] for d in infos] == [horizon] * N


def _ppo(seed: int, steps: int) -> PPO:
    env = VecMonitor(make_env())
    horizon = env.venv.venv.sim.horizon
    model = PPO("MlpPolicy", env, n_steps=horizon, batch_size=2 * horizon, n_epochs=2, seed=seed, device="cpu")
    return model.learn(total_timesteps=steps)


def test_ppo_learns_on_the_adapter_deterministically():
    horizon = toy_config().sim.horizon
    steps = 2 * N * horizon  # two rollouts, each one episode of every market
    a, b, c = _ppo(0, steps), _ppo(0, steps), _ppo(1, steps)
    init = PPO("MlpPolicy", VecMonitor(make_env()), seed=0, device="cpu").policy.state_dict()
    pa, pb, pc = (m.policy.state_dict() for m in (a, b, c))
    assert a.num_timesteps == steps and len(a.ep_info_buffer) == 2 * N
    assert all(torch.equal(pa[k], pb[k]) for k in pa)  # same seed, same parameters
    assert not all(torch.equal(pa[k], pc[k]) for k in pa)  # another seed, other parameters
    assert not all(torch.equal(pa[k], init[k]) for k in pa)  # learn() moved them
    act, _ = a.predict(a.env.reset(), deterministic=True)
    assert act.shape == (N, 1) and np.isfinite(act).all()
