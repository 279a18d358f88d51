"""Run every bench/bench_*.py measurement and write reports/bench/bench.json and reports/bench/BENCH.md.

Each script runs in its own process (a crash or a time-out costs only its figures) and writes
reports/bench/<name>.json; this driver checks that each file is fresh, gathers the headline keys
(a number, or null with the reason) and renders the report. The whole run keeps to a wall-time budget.
"""
from __future__ import annotations

import argparse
import ast
import json
import math
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import OUT, ROOT, machine_info

from ilmarket.core import atomic_write, git_commit

BENCH = Path(__file__).resolve().parent
# quick last: it may use what is left of the budget
ORDER = ["features", "labels", "sim", "replay", "ddpg", "sb3", "full", "quick"]
TIMEOUT_S = {"features": 120, "labels": 90, "sim": 300, "replay": 120, "ddpg": 540, "sb3": 300, "full": 60}
KEYS = {  # headline key → (script, goal)
    "features_vs_talib_time_ratio": ("features", ("<=", 2.0)),
    "labels_1m_bars_seconds": ("labels", ("<=", 1.0)),
    "sim_n1024_vs_loop_speedup": ("sim", (">=", 20.0)),
    "sim_n1024_roofline_fraction": ("sim", (">=", 0.4)),
    "ddpg_vs_sb3_update_ratio": ("ddpg", (">=", 2.0)),
    "ddpg_population10_vs_solo_ratio": ("ddpg", (">=", 3.0)),
    "ddpg_population10_roofline_fraction": ("ddpg", None),
    "ddpg_handwritten_vs_textbook_ratio": ("ddpg", None),
    "sb3_adapter_vs_dummyvecenv_ratio": ("sb3", (">=", 5.0)),
    "replay_bytes_vs_theoretical": ("replay", None),
    "full_profile_seconds": ("full", None),
    "full_profile_flop_bound_seconds": ("full", None),
    "quick_reproduce_seconds": ("quick", None),
}
SMOKE_ARGS = {"features": ["--bars", "100000", "--repeats", "2"], "labels": ["--bars", "100000", "--repeats", "2"],
              "sim": ["--smoke"], "replay": ["--smoke"],
              "ddpg": ["--no-memory", "--rounds", "2", "--updates", "50", "--steps", "600", "--pop-steps", "120",
                       "--pop-rounds", "1"], "sb3": ["--smoke"], "full": ["--repeats", "2"]}
ARGS = {"ddpg": ["--no-memory"]}  # replay memory is measured by bench_replay.py


def scripts() -> dict[str, Path]:
    "The measurement scripts, in run order (known ones first, then any others by name)."
    found = {p.stem.removeprefix("bench_"): p for p in sorted(BENCH.glob("bench_*.py"))}
    return {n: found[n] for n in ORDER if n in found} | {n: p for n, p in found.items() if n not in ORDER}


def script_doc(path: Path) -> str:
    "The first paragraph of a script's docstring, on one line."
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return " ".join(doc.split("\n\n")[0].split())


def run_script(name: str, path: Path, args: list[str], timeout: float) -> dict:
    "Run one script; return its status, wall time and, when it fails, the tail of its output."
    t0 = time.perf_counter()
    status: dict = {"script": str(path.relative_to(ROOT)), "args": args}
    try:
        r = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        status.update(returncode=r.returncode, ok=r.returncode == 0)
        if r.returncode != 0: status["error"] = " | ".join((r.stderr or r.stdout).strip().splitlines()[-4:])[-600:]
    except subprocess.TimeoutExpired:
        status.update(returncode=None, ok=False, error=f"timed out after {timeout:.0f} s")
    status["seconds"] = round(time.perf_counter() - t0, 1)
    return status


def read_fresh(name: str, since: float) -> dict | None:
    "reports/bench/<name>.json if it was written after `since` (a stale file is never reported as this run's)."
    p = OUT / f"{name}.json"
    if not p.exists() or p.stat().st_mtime < since: return None
    return json.loads(p.read_text())


def find_key(obj, key: str):
    "The entry named `key` anywhere in a script's result (top level, `metrics`, or nested)."
    if isinstance(obj, dict):
        if key in obj: return obj[key]
        for v in obj.values():
            hit = find_key(v, key)
            if hit is not None: return hit
    return None


def as_metric(entry) -> dict:
    "A script's entry as {'value': number|None, ...}."
    if isinstance(entry, dict): return dict(entry)
    if isinstance(entry, (int, float)) and not isinstance(entry, bool): return {"value": float(entry)}
    return {"value": None, "reason": f"unexpected entry {entry!r}"}


def verdict(value: float | None, goal) -> str:
    "Met / missed and by how much."
    if goal is None or value is None or (isinstance(value, float) and math.isnan(value)): return ""
    op, target = goal
    if op == "<=":
        return "met" if value <= target else f"missed: {value / target:.2f}× the limit ({value:.3g} vs ≤ {target:g})"
    return "met" if value >= target else f"missed: {value / target:.0%} of the goal ({value:.3g} vs ≥ {target:g})"


def collect(results: dict[str, dict | None], status: dict[str, dict]) -> dict:
    "The headline keys: numbers, or null with a reason."
    keys, reasons, details = {}, {}, {}
    for key, (name, goal) in KEYS.items():
        res = results.get(name)
        if res is None:
            st = status.get(name)
            if st is None: why = f"bench/bench_{name}.py not present (its stage has not landed)"
            elif st.get("skipped"): why = st["skipped"]
            else: why = f"bench/bench_{name}.py wrote no fresh {name}.json ({st.get('error') or 'no output file'})"
            m = {"value": None, "reason": why}
        else:
            entry = find_key(res, key)
            m = as_metric(entry) if entry is not None else {"value": None, "reason": f"{name}.json has no {key!r}"}
        if goal is not None:
            m["goal"] = list(goal)
            m["verdict"] = verdict(m.get("value"), goal)
        keys[key] = m.get("value")
        if m.get("value") is None: reasons[key] = m.get("reason", "not measured")
        details[key] = m
    return {"keys": keys, "reasons": reasons, "details": details}


def _fmt(v) -> str:
    if isinstance(v, bool) or v is None: return "" if v is None else str(v)
    if isinstance(v, int): return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v): return "nan"
        return f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:.4g}"
    return str(v).replace("|", "\\|")


def md_table(rows: list[dict]) -> str:
    "A Markdown table of a list of dicts (columns in first-seen order)."
    if not rows: return ""
    cols = list(dict.fromkeys(c for r in rows for c in r))
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    out += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(out) + "\n"


def render(bench: dict, results: dict[str, dict | None]) -> str:
    "BENCH.md: machine, headline table with goals, then each measurement's table, notes and profiles."
    m = bench["machine"]
    v = m["versions"]
    lines = ["# Benchmarks", "",
             "> Speed of each pipeline stage beside a reference measured in the same run (`make bench`, `bench/run.py`). "
             "Every time is the median of several runs after a warm-up; every comparison is a ratio of runs made in the "
             "same process, interleaved where possible. The machine is shared, so absolute figures are noisy; the ratios "
             "are the figures to track.", "",
             f"Run {bench['generated']} · commit `{bench['git_commit']}` · {m['cores']} cores ({m['cores_usable']} usable) · "
             f"{m['cpu_model']} · {m['memory_gib']} GiB · load average (1 min) at start {m['loadavg_1m']} · "
             f"total {bench['seconds']:.0f} s of a {bench['budget_s']:.0f} s budget", "",
             "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".", "",
             "BLAS: " + ", ".join(f"{k}={val}" for k, val in m["blas"].items()) + ".", "",
             *(["**Smoke run** (`--smoke`): small sizes, the figures below only show that the scripts run.", ""]
               if bench.get("smoke") else []),
             "## Headline figures", "",
             "| key | value | goal | verdict |", "|---|---|---|---|"]
    for key, d in bench["details"].items():
        goal = f"{d['goal'][0]} {d['goal'][1]:g}" if d.get("goal") else ""
        val = _fmt(d.get("value")) if d.get("value") is not None else f"not available: {d.get('reason', '')}"
        unit = f" ({d['unit']})" if d.get("unit") and d.get("value") is not None else ""
        lines.append(f"| `{key}` | {val}{unit} | {goal} | {d.get('verdict', '')} |")
    lines.append("")
    for name, st in bench["scripts"].items():
        res = results.get(name)
        lines += [f"## {name}", ""]
        if res is None:
            lines += [f"Not available: {st.get('skipped') or st.get('error') or 'no result file'}.", ""]
            continue
        doc = res.get("doc") or ""
        if doc: lines += [doc, ""]
        for key, (kname, _) in KEYS.items():
            d = bench["details"].get(key, {})
            if kname == name and d.get("value") is None: lines += [f"`{key}`: not available — {d.get('reason', '')}.", ""]
        extra = {k: vv for k, vv in (res.get("metrics") or {}).items() if k not in KEYS}
        if extra:
            lines += [md_table([{"figure": k, "value": (vv.get("value") if isinstance(vv, dict) else vv),
                                 "unit / reason": (vv.get("unit") or vv.get("reason", "")) if isinstance(vv, dict) else ""}
                                for k, vv in extra.items()]), ""]
        for title, rows in _row_tables(res):
            if title: lines += [f"**{title}**", ""]
            lines += [md_table(rows), ""]
        for n in res.get("notes") or []: lines.append(f"- {n}")
        if res.get("notes"): lines.append("")
        for title, prof in (res.get("profiles") or {}).items():
            kind = "" if "torch.profiler" in title or "cProfile" in title else " (cProfile, top 10 by cumulative time)"
            lines += [f"Profile — {title}{kind}:", "", "```", prof, "```", ""]
        if name not in ORDER and not res.get("rows"):
            flat = {k: vv for k, vv in res.items() if isinstance(vv, (int, float, str)) and k not in ("name",)}
            if flat: lines += [md_table([{"field": k, "value": vv} for k, vv in flat.items()]), ""]
    return "\n".join(lines).rstrip() + "\n"


def _row_tables(res: dict) -> list[tuple[str, list[dict]]]:
    "A script's row tables: `rows` (one table) and/or `tables` ({title: rows})."
    out = []
    if isinstance(res.get("rows"), list) and res["rows"]: out.append(("", res["rows"]))
    for t, rows in (res.get("tables") or {}).items():
        if rows: out.append((t, rows))
    return out


def ddpg_view(res: dict | None) -> dict | None:
    "The DDPG script's own file, shown as-is: its numeric fields become a table when it has no rows of its own."
    if res is None or res.get("rows") or res.get("tables"): return res
    flat = []
    def walk(o, prefix=""):
        if isinstance(o, dict):
            for k, vv in o.items():
                if k in ("machine", "name", "metrics", "doc", "versions", "raw"): continue
                walk(vv, f"{prefix}{k}.")
        elif isinstance(o, (int, float, str)) and not isinstance(o, bool):
            flat.append({"figure": prefix.rstrip("."), "value": o})
    walk(res)
    return {**res, "rows": flat}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help="comma-separated names (features,labels,sim,replay,ddpg,sb3,full,quick)")
    ap.add_argument("--budget", type=float, default=780.0, help="wall-time budget of the whole run in seconds (default 780: with `make install` it stays under 15 minutes)")
    ap.add_argument("--smoke", action="store_true", help="small sizes: checks that the scripts run, figures not meaningful")
    ap.add_argument("--no-fresh-quick", action="store_true", help="never run a quick reproduction, only read its manifest")
    a = ap.parse_args(argv)
    t_start = time.time()
    t0 = time.perf_counter()
    found = scripts()
    only = set(a.only.split(",")) if a.only else None
    status, results = {}, {}
    machine = machine_info()
    for name, path in found.items():
        if only is not None and name not in only:
            status[name] = {"skipped": "not run: not selected by --only"}
            continue
        left = a.budget - (time.perf_counter() - t0)
        args = list(SMOKE_ARGS.get(name, [])) if a.smoke else list(ARGS.get(name, []))
        if name == "quick":
            if not a.no_fresh_quick and not a.smoke: args += ["--run-if-missing", "--timeout", f"{max(0.0, left - 20):.0f}"]
            timeout = max(30.0, left)
        else:
            timeout = min(TIMEOUT_S.get(name, 120), left)
        if timeout < 10:
            status[name] = {"skipped": f"skipped: the {a.budget:.0f} s budget of the bench run was spent"}
            continue
        print(f"bench: {name} ... ", end="", flush=True)
        status[name] = run_script(name, path, args, timeout)
        results[name] = read_fresh(name, t_start)
        if results[name] is not None and not results[name].get("doc"): results[name]["doc"] = script_doc(path)
        print(f"{status[name]['seconds']} s" + ("" if status[name]["ok"] else f" FAILED: {status[name].get('error')}"), flush=True)
    if "ddpg" in results: results["ddpg"] = ddpg_view(results["ddpg"])
    for name in ORDER:
        if name not in found and (only is None or name in only): status[name] = {"skipped": f"bench/bench_{name}.py not present (its stage has not landed)"}
    bench = {"generated": datetime.fromtimestamp(t_start, timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
             "git_commit": git_commit(), "machine": machine, "budget_s": a.budget, "smoke": a.smoke,
             "seconds": round(time.perf_counter() - t0, 1), "scripts": status}
    agg = collect(results, status)
    ddpg_verdict = agg["details"]["ddpg_vs_sb3_update_ratio"].get("verdict", "")
    if ddpg_verdict.startswith("missed") and results.get("ddpg") is not None:
        try:  # bench_ddpg.py reports no profile: add where an update's time goes
            from benchlib import profile_ddpg_update
            results["ddpg"].setdefault("profiles", {}).update(profile_ddpg_update())
        except Exception as e:
            results["ddpg"].setdefault("notes", []).append(f"profile of the DDPG update failed ({type(e).__name__}: {e})")
    bench.update(agg["keys"])
    bench.update(reasons=agg["reasons"], details=agg["details"])
    atomic_write(OUT / "bench.json", json.dumps(bench, indent=1, sort_keys=True, default=str) + "\n")
    atomic_write(OUT / "BENCH.md", render(bench, results))
    print(f"bench: wrote {OUT / 'bench.json'} and BENCH.md in {bench['seconds']:.0f} s")
    for k, val in agg["keys"].items():
        print(f"  {k}: {val if val is not None else 'n/a — ' + agg['reasons'][k]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
