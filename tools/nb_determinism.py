"""Run each stage notebook in several fresh processes and report every cell whose outcome differs.

    python tools/nb_determinism.py [--runs 3] [--jobs 2] [NOTEBOOK ...]

Each run is a new Python process executing the notebook as the tests do (slow cells skipped). Runs
alternate `OMP_NUM_THREADS=1` and `OMP_NUM_THREADS` unset, so results that hang on thread count show
up too. A cell's *outcome* is pass/fail with its error; its *output* is a digest of its text outputs
with wall times masked. Exit status 1 when any outcome differs between runs (or a notebook fails in
every run). Differing text outputs are listed as notes: cells that print a wall time without a unit, or
a log line with a temporary path, differ legitimately; `--strict-outputs` makes them fail too.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import json, sys
sys.path.insert(0, {tests!r})
from nbrun import run_notebook
run = run_notebook({nb!r})
json.dump([c.__dict__ for c in run.cells], sys.stdout)
"""


def run_once(nb: Path, omp: str | None) -> list[dict]:
    "Cell outcomes of one fresh-process run of `nb`."
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if omp is not None: env["OMP_NUM_THREADS"] = omp
    code = CHILD.format(tests=str(ROOT / "tests"), nb=str(nb))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        return [{"index": -1, "status": "error", "error": f"runner crashed: {r.stderr.strip()[-300:]}", "where": "", "digest": ""}]
    return json.loads(r.stdout.strip().splitlines()[-1])


def compare(runs: list[list[dict]]) -> tuple[list[str], list[str]]:
    "(outcome differences, output differences), one line each."
    by_cell: dict[int, list[dict | None]] = {}
    for k, cells in enumerate(runs):
        for c in cells: by_cell.setdefault(c["index"], [None] * len(runs))[k] = c
    outcome, output = [], []
    for i in sorted(by_cell):
        seen = by_cell[i]
        status = [(c["status"], c["error"]) if c else ("not run", "") for c in seen]
        if len(set(status)) > 1:
            outcome.append(f"cell {i}: " + " | ".join(f"run {k}: {s}{' ' + e if e else ''}" for k, (s, e) in enumerate(status)))
        elif len({c["digest"] for c in seen if c}) > 1:
            output.append(f"cell {i}: text output differs between runs")
    return outcome, output


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2, help="notebook runs in parallel")
    ap.add_argument("--strict-outputs", action="store_true", help="differing text outputs fail the check too")
    a = ap.parse_args(argv)
    nbs = a.notebooks or sorted(p for p in (ROOT / "nbs").glob("[0-9]*.ipynb"))
    omps = ["1" if k % 2 == 0 else None for k in range(a.runs)]
    jobs = [(nb, k) for nb in nbs for k in range(a.runs)]
    with ThreadPoolExecutor(a.jobs) as ex:
        results = list(ex.map(lambda j: run_once(j[0].resolve(), omps[j[1]]), jobs))
    bad = 0
    for n, nb in enumerate(nbs):
        runs = results[n * a.runs:(n + 1) * a.runs]
        outcome, output = compare(runs)
        fails = [c for r in runs for c in r if c["status"] == "error"]
        state = ("outcome differs" if outcome else "fails every run" if fails else
                 "same outcome in every run" + (f"; text output differs in {len(output)} cell(s)" if output else ""))
        print(f"{nb.name}: {state} ({a.runs} runs, {sum(len(r) for r in runs) // a.runs} cells each)")
        for line in outcome + [f"note: {o}" for o in output]: print(f"  {line}")
        for c in fails[:1]: print(f"  first failure: cell {c['index']}, {c['where']}: {c['error']}")
        bad += bool(outcome) or bool(fails) or (bool(output) and a.strict_outputs)
    print(f"{bad} of {len(nbs)} notebooks have a cell whose outcome differs between runs, or fail")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
