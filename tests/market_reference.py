"""The interactive simulator's dynamics written out as one plain loop, independently of `MarketSim`'s pieces (price
formers, `execute_orders`, `warm_up`): the reference its fixed-seed rollouts must equal bit for bit in every mode."""
import numpy as np
import torch

from ilmarket.market import bootstrap_noise, match_orders, sqrt_impact, stacked_mlp
from ilmarket.portfolio import apply_fractions

F64 = torch.float64


def reference_rollout(cfg, data, scaler, stream_factory, ensemble, synth, residuals, n_envs, impact, acts, seed):
    "obs (S+1, N, F+2), rewards (S, N) and info tensors (S, ...) of len(acts) steps from reset(seed), auto-resets included."
    static = impact == "static"
    il = None if static else (stacked_mlp(ensemble.eval()) or ensemble.eval())
    if synth is not None: synth = synth.eval()
    res = np.zeros(1) if residuals is None or static else np.asarray(residuals, dtype=np.float64).reshape(-1)
    res = torch.tensor(res[np.isfinite(res)])
    h, w, d, fee = data.horizon, data.warmup, data, float(cfg.sim.fee)
    decay = 1.0 if cfg.sim.sqrt_halflife is None else 0.5 ** (1.0 / float(cfg.sim.sqrt_halflife))
    gen = torch.Generator().manual_seed(int(seed))
    c0 = torch.full((n_envs,), float(cfg.sim.agent_capital), dtype=F64)
    s = {}

    def il_orders():
        s["scaled"] = torch.as_tensor(scaler.transform(s["feats"])).to(torch.float32)
        if il is not None:
            with torch.no_grad(): s["il_act"] = il(s["scaled"]).to(F64)

    def observe():
        m = s["m"]
        acct = torch.stack([s["cash"][:, m] / c0, s["shares"][:, m] * s["px"] / c0], 1).to(torch.float32)
        return torch.cat([s["scaled"], acct], 1)

    def new_episodes():
        t0 = d.starts[torch.randint(0, len(d.starts), (n_envs,), generator=gen)]
        noise = bootstrap_noise(res, n_envs, h, cfg.synthesis.block_len, gen)
        s.update(t0=t0, noise=noise if cfg.sim.noise else torch.zeros_like(noise), path=t0.unsqueeze(1) + torch.arange(h))
        s["stream"] = stream_factory(n_envs)
        for j in range(w):
            i = t0 - w + j
            sess = torch.ones(n_envs, dtype=torch.bool) if j == 0 else d.new_session[i]
            feats = s["stream"].update(d.open[i], d.high[i], d.low[i], d.close[i], d.volume[i], sess)
        s["feats"], s["px"] = feats.to(F64), d.close[t0 - 1].clone()
        il_orders()
        m = s["m"] = 0 if static else s["il_act"].shape[1]
        s["cash"], s["shares"] = torch.zeros(n_envs, m + 1, dtype=F64), torch.zeros(n_envs, m + 1, dtype=F64)
        s["cash"][:, :m] = cfg.il.capital * (1 - cfg.sim.il_share_frac)
        s["shares"][:, :m] = (cfg.il.capital * cfg.sim.il_share_frac / s["px"]).unsqueeze(1)
        s["cash"][:, m] = c0
        s["level"], s["k"] = torch.zeros(n_envs, dtype=F64), 0
        s["values"] = c0.expand(max(int(cfg.ddpg.reward_window), 1), n_envs).clone()
        return observe()

    obs, rews, infos = [new_episodes()], [], []
    for a in acts:
        a = torch.as_tensor(a, dtype=F64).clamp(-1, 1)
        m, k, px, p = s["m"], s["k"], s["px"], s["path"][:, s["k"]]
        if static:
            cash_a, shares_a, traded = apply_fractions(s["cash"][:, m], s["shares"][:, m], a, px, fee)
            filled = shares_a - s["shares"][:, m]
            s["cash"][:, m], s["shares"][:, m] = cash_a, shares_a
            o, hi, lo, c, vol = d.open[p], d.high[p], d.low[p], d.close[p], d.volume[p]
        else:
            before = s["cash"][:, m].clone(), s["shares"][:, m].clone()
            s["cash"], s["shares"], fills, _ = match_orders(s["cash"], s["shares"], torch.cat([s["il_act"], a.unsqueeze(1)], 1), px, fee)
            filled = fills[:, m]
            traded = filled.abs() * px
            if impact == "sqrt":  # the agent pays its own order's impact: a buy gets e^-Δ of its shares, a sell e^Δ of its cash
                jump = sqrt_impact(filled, d.sigma[s["t0"]], d.vbar[s["t0"]], cfg.sim.sqrt_y)
                got_cash, got_shares = (s["cash"][:, m] - before[0]).clamp(min=0), (s["shares"][:, m] - before[1]).clamp(min=0)
                s["cash"][:, m] = s["cash"][:, m] - got_cash * (1 - torch.exp(jump.clamp(max=0)))
                s["shares"][:, m] = s["shares"][:, m] - got_shares * (1 - torch.exp(-jump.clamp(min=0)))
            pooled = (s["il_act"] + (c0 / cfg.il.capital / m * a).unsqueeze(1)).to(torch.float32)
            with torch.no_grad(): out = synth(pooled)[0].to(F64).reshape(-1)
            if cfg.synthesis.target == "logret": r = out + s["noise"][:, k]
            else: r = torch.log((px + out + s["noise"][:, k]).clamp(min=px * 1e-3) / px)
            if impact == "sqrt":
                level = decay * s["level"] + sqrt_impact(filled, d.sigma[s["t0"]], d.vbar[s["t0"]], cfg.sim.sqrt_y)
                r = r + level - s["level"]
                s["level"] = level
            o, c = px, px * torch.exp(r)
            hi, lo, vol = torch.maximum(o, c), torch.minimum(o, c), d.volume[p] + filled.abs()
        s["feats"] = s["stream"].update(o, hi, lo, c, vol, d.new_session[p]).to(F64)
        s["px"], s["k"] = c.clone(), k + 1
        il_orders()
        value = s["cash"][:, m] + s["shares"][:, m] * s["px"]
        slot = s["k"] % s["values"].shape[0]
        rews.append(((value - s["values"][slot]) / c0).to(torch.float32))
        s["values"][slot] = value
        infos.append({"price": s["px"], "cash": s["cash"][:, m].clone(), "shares": s["shares"][:, m].clone(),
                      "value": value, "filled": filled, "traded": traded, "volume": vol})
        obs.append(observe())
        if s["k"] >= h: obs[-1] = new_episodes()
    return torch.stack(obs), torch.stack(rews), {key: torch.stack([i[key] for i in infos]) for key in infos[0]}
