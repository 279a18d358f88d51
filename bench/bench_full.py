"""The full profile: the last complete run's wall time, and the least time its DDPG training can take on this machine.

`full_profile_seconds` is read from reports/full/manifest.json: the time of each stage in the last run that ran it,
since the last run that ran every stage (a run stopped by a failing stage and continued after a fix counts as one
run in pieces), plus the wall time of the `ilmarket train` pieces
recorded in the store's models.json, whose agents that run loaded instead of training them. `full_profile_flop_bound_seconds` is the floor
for the DDPG updates of the full profile at `eval.n_seeds` seeds per training impact: the FLOPs of their matmuls
(counted from the network shapes, as bench_ddpg.py counts them: agents × `ddpg.total_steps` ×
`ddpg.updates_per_step` updates) divided by the rate of a 1024² float32 GEMM on all cores, timed here. No
training reaches that rate (the population's update runs at about 0.6 of it on one thread, the simulator and
replay come on top),
so a goal below the floor cannot be met on this machine by any implementation of the same updates.

    python bench/bench_full.py [--repeats 7]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ddpg import update_flops  # noqa: E402
from benchlib import ROOT, unavailable, write_result  # noqa: E402

from ilmarket.core import get_config  # noqa: E402
from ilmarket.features import FEATURES  # noqa: E402

GOAL_S = 7200.0  # the full profile with 10 seeds per training impact, on 2 cores (issue goal)
IMPACTS = 3  # training impacts of the evaluation: synthesis, static, sqrt


def last_complete_run(path: Path) -> dict | None:
    """The stages that made the run's current outputs: each stage's time in the last run that ran it, summed, when every
    stage of the last run ran at some point since the last run that ran them all (a run stopped by a failing stage and
    continued after a fix is one run in pieces); its commits and stages."""
    if not path.exists(): return None
    runs = json.loads(path.read_text()).get("runs") or []
    full = [i for i, r in enumerate(runs) if r.get("ran") and not r.get("skipped")]
    if not full: return None
    stages, commits, dirty = {}, [], False
    for r in runs[full[-1]:]:
        stages.update({k: float(v) for k, v in (r.get("ran") or {}).items()})
        commits.append(r.get("git_commit"))
        dirty |= bool(r.get("git_dirty"))
    last = runs[-1]
    if (set(last.get("ran") or {}) | set(last.get("skipped") or [])) - set(stages): return None
    return {"seconds": round(sum(stages.values()), 1), "commit": commits[-1], "commits": sorted(set(map(str, commits))),
            "finished": last.get("finished"), "stages": stages, "git_dirty": dirty, "pieces": len(runs) - full[-1]}


def store_trainings(folder: Path) -> list[dict]:
    "The `ilmarket train` pieces recorded in a store's models.json (agents, seconds, commit), in the order they ran."
    path = folder / "models.json"
    if not path.exists(): return []
    return [t for t in json.loads(path.read_text()).get("trainings", []) if isinstance(t, dict) and "seconds" in t]


def gemm_rate(repeats: int, size: int = 1024) -> float:
    "FLOP/s of a square float32 GEMM on torch's default threads (median of `repeats` timings of 20 products)."
    a, b, out = torch.randn(size, size), torch.randn(size, size), torch.empty(size, size)
    for _ in range(5): torch.mm(a, b, out=out)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(20): torch.mm(a, b, out=out)
        times.append(time.perf_counter() - t)
    return 20 * 2 * size ** 3 / statistics.median(times)


def obs_dim() -> tuple[int, str]:
    "The agents' observation size: from a committed actor file when there is one, else the features plus the account."
    for f in sorted((ROOT / "reports" / "full" / "models").glob("actor-*.pt")):
        try:
            from ilmarket.pipeline import load_actor_file
            return load_actor_file(f).actor.net[0].in_features, f"{f.relative_to(ROOT)}"
        except Exception:
            continue
    return len(FEATURES) + 2, "len(FEATURES) + 2"


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    cfg = get_config("full")
    run = last_complete_run(ROOT / "reports" / "full" / "manifest.json")
    pieces = store_trainings(ROOT / "reports" / "full" / "models")
    pieces_s = round(sum(float(t["seconds"]) for t in pieces), 1)
    n_pieces_agents = sum(len(t["agents"]) for t in pieces)
    d, d_from = obs_dim()
    agents = cfg.eval.n_seeds * IMPACTS
    updates = int(cfg.ddpg.total_steps * cfg.ddpg.updates_per_step)
    per_update = update_flops(d, cfg.ddpg)
    total = agents * updates * per_update
    rate = gemm_rate(args.repeats)
    bound = total / rate
    metrics = {
        "full_profile_seconds": ({"value": round(run["seconds"] + pieces_s, 1), "unit": "s"} if run is not None else
                                 unavailable("reports/full/manifest.json holds no run that ran every stage")),
        "full_profile_flop_bound_seconds": {"value": round(bound, 1), "unit": "s"},
    }
    rows = [{"figure": "DDPG agents of the full profile", "value": f"{agents} ({cfg.eval.n_seeds} seeds × {IMPACTS} training impacts)"},
            {"figure": "updates per agent", "value": f"{updates:,}"},
            {"figure": "matmul FLOPs per agent-update", "value": f"{per_update:,} (obs dim {d}, from {d_from})"},
            {"figure": "matmul FLOPs of all updates", "value": f"{total / 1e12:.0f} TFLOP"},
            {"figure": f"GEMM 1024² float32, {torch.get_num_threads()} threads", "value": f"{rate / 1e9:.1f} GFLOP/s"},
            {"figure": "floor at 100% of that rate", "value": f"{bound:,.0f} s ({bound / 3600:.2f} h)"},
            {"figure": "goal", "value": f"≤ {GOAL_S:,.0f} s: the floor is {bound / GOAL_S:.2f} of it"}]
    if run is not None:
        rows.append({"figure": "stages of the current full-run outputs",
                     "value": f"{run['seconds']:,.0f} s in {run['pieces']} run(s), commit(s) "
                              f"{', '.join(c[:12] for c in run['commits'])}"
                              f"{' (uncommitted changes)' if run['git_dirty'] else ''}, finished {run['finished']}"})
    for t in pieces:
        rows.append({"figure": "store: one `ilmarket train` piece",
                     "value": f"{len(t['agents'])} agents in {float(t['seconds']):,.0f} s"
                              + (f" at commit {str(t['git_commit'])[:12]}" if t.get("git_commit") else "")
                              + (f", finished {t['finished']}" if t.get("finished") else "")
                              + (f" ({t['note']})" if t.get("note") else "")})
    if run is not None and pieces:
        rows.append({"figure": "full profile, pieces + last complete run",
                     "value": f"{pieces_s:,.0f} s of pieces ({n_pieces_agents} agents) + {run['seconds']:,.0f} s of stages "
                              f"= {run['seconds'] + pieces_s:,.0f} s ({(run['seconds'] + pieces_s) / 3600:.2f} h)"})
    notes = [f"at 0.6 of the GEMM rate (what the population's update reaches on one thread against the one-thread GEMM, "
             f"bench_ddpg.py) the updates alone take about {bound / 0.6:,.0f} s; the simulator and replay add about a "
             "tenth (a profile of train_population); the GEMM here is timed on all cores, so the floor is the least the "
             "machine allows, not what one thread allows",
             "full_profile_seconds is the wall time of the stages that made the current outputs (each stage's last run), plus the `ilmarket train` "
             "pieces its store records (models.json 'trainings'): a run trained in pieces loads those agents instead of "
             "training them, so its stages alone would leave their training out; compare it with the floor only at "
             "the same eval.n_seeds"]
    res = {"metrics": metrics, "rows": rows, "notes": notes,
           "doc": "The full profile's last complete wall time and the FLOP floor of its DDPG updates at "
                  f"{cfg.eval.n_seeds} seeds per training impact.",
           "run": run, "pieces": pieces}
    write_result("full", res)
    for r in rows: print(f"{r['figure']}: {r['value']}")
    return res


if __name__ == "__main__":
    main()
