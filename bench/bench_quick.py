"""Wall time of the quick reproduction, per notebook: from reports/quick/manifest.json, or a fresh run in a temporary folder."""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import ROOT, data_path, unavailable, write_result


def from_manifest(path: Path) -> dict | None:
    "Per-notebook seconds of the stages a quick reproduction ran, read from its manifest; None when it has none."
    if not path.exists(): return None
    man = json.loads(path.read_text())
    timings = man.get("timings") or {}
    stages = man.get("stages") or {}
    if not timings: return None
    names = sorted(stages) if stages else sorted(timings)  # timings merge across runs: keep the current stages
    per_nb = {nb: float(timings[nb]) for nb in names if isinstance(timings.get(nb), (int, float))}
    missing = sorted(nb for nb in stages if nb not in per_nb)
    mtime = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return {"per_notebook_s": per_nb, "missing": missing, "commit": man.get("git_commit"),
            "data": man.get("data"), "profile": man.get("profile"), "written": mtime}


def run_fresh(timeout: float) -> tuple[dict | None, str]:
    "Run `ilmarket reproduce --profile quick` into a temporary folder within `timeout` seconds."
    exe = Path(sys.executable).with_name("ilmarket")
    with tempfile.TemporaryDirectory(prefix="ilmarket-bench-quick-") as tmp:
        cmd = [str(exe), "reproduce", "--profile", "quick", "--out", tmp]
        dp = data_path()
        if dp is not None: cmd += ["--data", str(dp)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                start_new_session=True)  # its own process group: the notebook kernels go with it
        try:
            out, err = proc.communicate(timeout=timeout)
            r = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
            done = re.findall(r"\] (\S+) \.\.\. ([0-9.]+) s$", err, flags=re.M)
            part = {"per_notebook_s": {nb: float(sec) for nb, sec in done}, "missing": [], "partial": True,
                    "written": "this bench run (temporary folder, stopped at the time-out)", "commit": None,
                    "data": None if dp is None else dp.name}
            started = re.findall(r"\] (\S+) \.\.\. running$", err, flags=re.M)
            running = [nb for nb in started if nb not in dict(done)]
            spent = sum(float(sec) for _, sec in done)
            still = f"; {running[-1]} was still running after about {timeout - spent:.0f} s" if running else ""
            return part, (f"a fresh quick reproduction did not finish within the {timeout:.0f} s left of the bench budget "
                          f"({len(done)} stages done in {spent:.0f} s{still})")
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
            return None, f"a fresh quick reproduction failed (exit {r.returncode}): {' | '.join(tail)[:400]}"
        res = from_manifest(Path(tmp) / "manifest.json")
        if res is None: return None, "the fresh quick reproduction wrote no timings"
        res["wall_s"] = wall
        res["written"] = "this bench run (temporary folder)"
        return res, ""


def run(run_if_missing: bool, timeout: float) -> dict:
    "Quick reproduction seconds: the manifest of reports/quick if a run has been made, else a fresh timed run."
    t0 = time.perf_counter()
    man_path = ROOT / "reports" / "quick" / "manifest.json"
    res, reason = from_manifest(man_path), ""
    source = f"{man_path.relative_to(ROOT)}"
    if res is None:
        reason = f"no quick reproduction timings in {man_path.relative_to(ROOT)} (run `make reproduce` first)"
        if run_if_missing and timeout > 60:
            res, reason = run_fresh(timeout)
            source = "a fresh `ilmarket reproduce --profile quick` in a temporary folder"
    metrics, rows, notes = {}, [], []
    if res is None or res.get("partial"):
        metrics["quick_reproduce_seconds"] = unavailable(reason)
    else:
        total = sum(res["per_notebook_s"].values())
        metrics["quick_reproduce_seconds"] = {"value": total, "unit": "s, sum over notebooks of one run"}
    if res is not None:
        rows = [{"notebook": nb, "seconds": s} for nb, s in res["per_notebook_s"].items()]
        data = res["data"] if isinstance(res["data"], str) or res["data"] is None else res["data"].get("path")
        data = "synthetic" if data is None else Path(data).name  # named, not located: no machine paths in BENCH.md
        notes.append(f"from {source}, written {res['written']}, commit {res.get('commit') or 'n/a'}, data {data}")
        if res.get("wall_s"): notes.append(f"wall time of the whole command: {res['wall_s']:.0f} s")
        if res["missing"]:
            notes.append("stages listed without a timing (up to date when that run was made): " + ", ".join(res["missing"]))
    return {"metrics": metrics, "rows": rows, "notes": notes, "profiles": {}, "elapsed_s": time.perf_counter() - t0}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run-if-missing", action="store_true", help="run a fresh quick reproduction when no manifest has timings")
    ap.add_argument("--timeout", type=float, default=float(os.environ.get("ILMARKET_BENCH_QUICK_TIMEOUT", 600)))
    a = ap.parse_args()
    write_result("quick", {**run(a.run_if_missing, a.timeout), "doc": " ".join(__doc__.split())})
