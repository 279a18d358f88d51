"""The known-optimum grid of chapter 08a: every task × option × seed trained with `train_ddpg` and scored.

    python tools/known_optima.py [--seeds 10] [--steps 20000] [--tasks a,b] [--options a,b] [--workers 2]
                                 [--out reports/optima]

Each run is `ilmarket.optima.run_known_optimum` (the full profile's DDPG, one torch thread). Finished runs are
written to `<out>/tables/optima_runs.csv` as they end, and a rerun skips every (task, option, seed, steps) already
there, so an interrupted grid continues where it stopped. At the end it writes `optima_summary` (per task and
option: seeds within 5% of the optimum, scores, fee drag, turnover, wall time), the figure `optima_scores` and
`<out>/README.md` with the command and the wall time.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pandas as pd

from ilmarket.core import atomic_write, project_root, save_fig, save_table
from ilmarket.optima import (OPTIONS, TASKS, plot_known_optima, run_known_optimum, run_known_optimum_population,
                             summarize_known_optima)

KEY = ["phase", "task", "option", "seed", "steps"]


def _init_worker() -> None:
    import torch
    torch.set_num_threads(1)


def _run(phase: str, task: str, option: str, seed: int, steps: int) -> list[dict]:
    return [{"phase": phase, **run_known_optimum(TASKS[task], OPTIONS[option], seed, steps)}]


def _run_population(phase: str, task: str, option: str, seeds: list[int], steps: int) -> list[dict]:
    return [{"phase": phase, **r} for r in run_known_optimum_population(TASKS[task], OPTIONS[option], seeds, steps)]


def _names(text: str | None, known: dict, what: str) -> list[str]:
    if not text: return list(known)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown: raise SystemExit(f"known_optima: unknown {what} {unknown}; choose from {list(known)}")
    return names


def _order(runs: pd.DataFrame) -> pd.DataFrame:
    "Rows in task, option, seed order (the tasks' and options' own order)."
    rank = {**{n: i for i, n in enumerate(TASKS)}, **{n: i for i, n in enumerate(OPTIONS)}}
    key = lambda c: c.map(rank) if c.name in ("task", "option") else c
    return runs.sort_values(KEY, key=key).reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10, help="n seeds per task and option: first … first + n - 1")
    ap.add_argument("--first-seed", type=int, default=0, help="the first of them")
    ap.add_argument("--phase", default="grid",
                    help="label of these runs in the tables: 'grid' (the search), 'confirmation' (fresh seeds)")
    ap.add_argument("--steps", type=int, default=20_000, help="environment steps of every run")
    ap.add_argument("--tasks", help="comma-separated task names (default: all)")
    ap.add_argument("--options", help="comma-separated option names (default: all)")
    ap.add_argument("--population", action="store_true",
                    help="train the seeds of each task and option together (train_population), not one by one")
    ap.add_argument("--workers", type=int, default=2, help="runs side by side (one torch thread each)")
    ap.add_argument("--out", default=str(project_root() / "reports" / "optima"), help="output folder")
    args = ap.parse_args(argv)
    tasks, options = _names(args.tasks, TASKS, "task"), _names(args.options, OPTIONS, "option")
    out = Path(args.out)
    csv = out / "tables" / "optima_runs.csv"
    runs = pd.read_csv(csv) if csv.exists() else pd.DataFrame(columns=KEY)
    if "phase" not in runs: runs.insert(0, "phase", "grid")  # tables written before phases were recorded
    done = set(map(tuple, runs[KEY].astype({"seed": int, "steps": int}).itertuples(index=False)))
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    todo = [(args.phase, t, o, s, args.steps) for s in seeds for t in tasks for o in options
            if (args.phase, t, o, s, args.steps) not in done]
    print(f"known_optima: {len(todo)} runs to do, {len(done)} already in {csv}", file=sys.stderr)
    t0 = time.perf_counter()
    ctx = mp.get_context("spawn")  # fresh interpreters: no state shared with this process
    if args.population:  # one job per task and option: its missing seeds as one population
        groups: dict[tuple, list[int]] = {}
        for phase, t, o, s, steps in todo: groups.setdefault((phase, t, o), []).append(s)
        jobs = [(_run_population, (phase, t, o, ss, args.steps)) for (phase, t, o), ss in groups.items()]
    else:
        jobs = [(_run, job) for job in todo]
    with ProcessPoolExecutor(args.workers, mp_context=ctx, initializer=_init_worker) as pool:
        futures = [pool.submit(fn, *job) for fn, job in jobs]
        for k, fut in enumerate(as_completed(futures), 1):
            rows = fut.result()
            runs = _order(pd.concat([runs, pd.DataFrame(rows)], ignore_index=True))
            save_table(runs, "optima_runs", out, title="Known optima: every run")
            for row in rows:
                print(f"[{k}/{len(jobs)}] {row['task']} {row['option']} seed {row['seed']}: score {row['score']:.3f} "
                      f"({row['seconds']:.0f} s)", file=sys.stderr)
    print(f"known_optima: {len(todo)} runs in {(time.perf_counter() - t0) / 60:.1f} min", file=sys.stderr)
    summary = summarize_known_optima(runs)
    title = "Known optima: seeds within 5% of the optimum, per task and option"
    save_table(summary, "optima_summary", out, title=title)
    fig = plot_known_optima(runs)
    save_fig(fig, "optima_scores", out)
    wall = time.perf_counter() - t0
    log = out / "commands.log"  # one line per invocation that ran something: the README lists them
    if todo:
        cmd = "python tools/known_optima.py " + " ".join(argv if argv is not None else sys.argv[1:])
        old = log.read_text(encoding="utf-8") if log.exists() else ""
        atomic_write(log, old + f"{cmd}\t{len(todo)} runs\t{wall / 60:.1f} min\n")
    lines = [l.split("\t") for l in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []
    phases = []
    for phase, r in runs.groupby("phase", sort=False):
        per = r.groupby(["task", "option"])["seed"].agg(["min", "max", "nunique"])
        phases.append(f"- *{phase}*: {len(r)} runs at {', '.join(f'{s:,}' for s in sorted(r['steps'].unique()))}"
                      f" environment steps; tasks {', '.join(dict.fromkeys(r['task']))}; options"
                      f" {', '.join(dict.fromkeys(r['option']))}; seeds {per['min'].min()}–{per['max'].max()}"
                      f" ({per['nunique'].min()}–{per['nunique'].max()} per task and option)")
    atomic_write(out / "README.md", (
        "# Known-optimum grid (chapter 08a)\n\n"
        "Every run is `ilmarket.optima.run_known_optimum` (or, for a population phase, "
        "`run_known_optimum_population`): the full profile's DDPG on one task with one option, scored greedily on "
        "1,024 fresh paths. A rerun skips the runs already in `tables/optima_runs.csv`.\n\n"
        + "\n".join(phases) + "\n\nMade by, in this order:\n\n"
        + "".join(f"- `{c}` ({' · '.join(rest)})\n" for c, *rest in lines)
        + f"\nA run's `seconds` is its wall time on {os.cpu_count()} shared cores and measures the machine's load as "
        "much as the run.\n\n"
        "- `tables/optima_runs.csv`: every run (phase, score, fee drag, turnover, first action, seconds)\n"
        "- `tables/optima_summary.csv`: per phase, task and option, the seeds within 5% of the optimum\n"
        "- `figures/optima_scores.png`: every seed's score in the grid phase\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
