"""The bench/ driver's bookkeeping (no timing is asserted: speed lives in reports/bench/)."""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import benchlib  # noqa: E402


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bench_run = _load("bench_run", BENCH / "run.py")


def test_verdict_says_by_how_much():
    assert bench_run.verdict(1.5, ("<=", 2.0)) == "met"
    assert bench_run.verdict(3.0, ("<=", 2.0)).startswith("missed: 1.50×")
    assert bench_run.verdict(25.0, (">=", 20.0)) == "met"
    assert bench_run.verdict(10.0, (">=", 20.0)).startswith("missed: 50%")
    assert bench_run.verdict(None, (">=", 20.0)) == ""


def test_collect_gives_null_with_reason_never_a_number():
    results = {"features": {"metrics": {"features_vs_talib_time_ratio": {"value": 1.2, "unit": "x"}}},
               "ddpg": {"ddpg_vs_sb3_update_ratio": 2.5},  # a plain number at top level is accepted
               "labels": {"metrics": {"labels_1m_bars_seconds": {"value": None, "reason": "ilmarket.labels not available"}}}}
    status = {"sim": {"ok": False, "error": "timed out after 300 s"}, "quick": {"skipped": "skipped: budget"}}
    agg = bench_run.collect(results, status)
    assert agg["keys"]["features_vs_talib_time_ratio"] == 1.2
    assert agg["keys"]["ddpg_vs_sb3_update_ratio"] == 2.5
    assert agg["details"]["ddpg_vs_sb3_update_ratio"]["verdict"] == "met"
    for key in ("labels_1m_bars_seconds", "sim_n1024_vs_loop_speedup", "replay_bytes_vs_theoretical", "quick_reproduce_seconds"):
        assert agg["keys"][key] is None and agg["reasons"][key]
    assert "timed out" in agg["reasons"]["sim_n1024_vs_loop_speedup"]
    assert "not present" in agg["reasons"]["replay_bytes_vs_theoretical"]
    assert set(bench_run.KEYS) <= set(agg["keys"])


def test_stale_result_file_is_not_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_run, "OUT", tmp_path)
    (tmp_path / "sim.json").write_text(json.dumps({"metrics": {}}))
    assert bench_run.read_fresh("sim", since=(tmp_path / "sim.json").stat().st_mtime + 10) is None
    assert bench_run.read_fresh("sim", since=0) == {"metrics": {}}


def test_render_shows_every_key_and_reason():
    results = {"features": {"metrics": {"features_vs_talib_time_ratio": {"value": 3.0, "goal": ["<=", 2.0]}},
                            "rows": [{"what": "x", "median_s": 0.1}], "notes": ["n"], "profiles": {"slow": "ncalls ..."}}}
    status = {"features": {"ok": True, "seconds": 1.0}}
    agg = bench_run.collect(results, status)
    bench = {"generated": "now", "git_commit": None, "machine": benchlib.machine_info(), "budget_s": 780, "seconds": 1.0,
             "scripts": status, **agg["keys"], "reasons": agg["reasons"], "details": agg["details"]}
    md = bench_run.render(bench, results)
    for key in bench_run.KEYS: assert f"`{key}`" in md
    assert "missed: 1.50×" in md and "Profile — slow" in md and "not available" in md


def test_tile_bars_keeps_wall_clock_and_order():
    idx = pd.date_range("2024-03-08 09:30", periods=3, freq="5min", tz="America/New_York")  # DST starts 03-10
    bars = pd.DataFrame({"close": [1.0, 2.0, 3.0]}, index=idx.rename("timestamp"))
    out = benchlib.tile_bars(bars, 7)
    assert len(out) == 9 and out.index.is_monotonic_increasing and out.index.is_unique
    assert (out.index.strftime("%H:%M") == np.tile(idx.strftime("%H:%M"), 3)).all()  # wall time kept across DST
    assert (out.index.day_of_week == idx[0].day_of_week).all()
    np.testing.assert_array_equal(out["close"].to_numpy(), np.tile([1.0, 2.0, 3.0], 3))


def test_time_interleaved_runs_round_robin():
    calls = []
    runs = benchlib.time_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=2, warmup=1)
    assert calls == ["a", "b"] * 3 and [len(v) for v in runs.values()] == [2, 2]
    assert benchlib.round_ratio([2.0, 4.0, 6.0], [1.0, 1.0, 2.0])["value"] == pytest.approx(3.0)
