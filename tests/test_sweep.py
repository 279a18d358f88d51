"""`ilmarket sweep` outside its notebook: the grid parser and its refusals, a two-task sweep on a local Ray that gives
the in-process rows bit for bit, reruns that skip finished points, and the command line on both paths."""
import json
import shutil

import pandas as pd
import pytest

from ilmarket.core import get_config
from ilmarket.pipeline import Pipeline
from ilmarket.reproduce import main
from ilmarket.evaluation import load_backtest_set
from ilmarket.pipeline import load_actor_file
from ilmarket.sweep import evaluate_agent, parse_grid, point_config, point_digest, run_sweep

# one epoch per IL agent and synthesis net, a few hundred DDPG steps, two backtest segments
TINY = {"il.max_epochs": 1, "synthesis.max_epochs": 1, "ddpg.total_steps": 400, "ddpg.learning_starts": 200,
        "sim.horizon": 32, "segments.n_backtest": 2}
GRID = {"seed": [0, 1], "sim.impact": ["synthesis", "static"]}


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    "The shared models of the tiny config, trained once into a cache every sweep below reads."
    cache = tmp_path_factory.mktemp("models")
    pipe = Pipeline(get_config("quick", settings=TINY), cache=cache)
    pipe.synthesis  # trains the IL ensemble and the synthesis net
    return pipe, cache


def sweep(market, out, grid=GRID, **kw):
    pipe, cache = market
    return run_sweep(grid, profile="quick", settings=TINY, out=out, bars=pipe.bars, cache=cache, **kw)


# ---- the grid

def test_grid_parsing_types_and_ranges():
    g = parse_grid(["seed=2:5", "sim.impact=sqrt,static", "sim.agent_capital=1e6,1e8", "eval.fee=0,0.005",
                    "sim.sqrt_halflife=none,30", "sim.noise=true,false", "ddpg.critic_hidden=64,64;32"])
    assert g == {"seed": [2, 3, 4], "sim.impact": ["sqrt", "static"], "sim.agent_capital": [1e6, 1e8],
                 "eval.fee": [0.0, 0.005], "sim.sqrt_halflife": [None, 30], "sim.noise": [True, False],
                 "ddpg.critic_hidden": [(64, 64), (32,)]}
    assert all(isinstance(v, float) for v in g["sim.agent_capital"] + g["eval.fee"])


@pytest.mark.parametrize("entries, message", [
    (["ddpg.gama=0.9,0.99"], "ddpg has no field 'gama'"),
    (["simulator.fee=0,1"], "unknown config section 'simulator'"),
    (["impact=static"], "want 'seed' or section.field"),
    (["profile=quick,full"], "want 'seed' or section.field"),
    (["il.hidden=64;128"], "trains once"),
    (["synthesis.lr=1e-3"], "trains once"),
    (["features.relative=true,false"], "trains once"),
    (["segments.n_backtest=2,3"], "trains once"),
    (["data.data_path=a.csv"], "trains once"),
    (["eval.n_seeds=1,3"], "no effect on a sweep point"),
    (["ddpg.checkpoint_every=10"], "no effect on a sweep point"),
    (["sim.impact=synthesis,linear"], "sim.impact must be one of"),
    (["sim.fee=0,cheap"], "want a number"),
    (["seed=a,b"], "seeds are integers"),
    (["seed=3:3"], "one or more non-negative seeds"),
    (["seed=1,1"], "given twice"),
    (["sim.fee=0", "sim.fee=1"], "given twice"),
    (["sim.fee=0,,1"], "an empty value"),
    (["sim.fee"], "want key=value1"),
    ([], "at least one --grid"),
])
def test_grid_refusals(entries, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_grid(entries)


def test_point_digest_is_the_config_not_its_keys():
    base = get_config("quick")
    same = point_config(base, {"seed": base.seed, "sim.impact": base.sim.impact})
    assert point_digest(same, "m") == point_digest(base, "m")
    assert point_digest(point_config(base, {"eval.fee": 0.0}), "m") != point_digest(base, "m")


# ---- sweeps

def test_ray_sweep_equals_in_process_and_reruns_skip(market, tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'ilmarket[cluster]')")
    grid = {"seed": [0, 1]}  # two tasks
    local, man_local = sweep(market, tmp_path / "local", grid, executor="local")
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        remote, man_ray = sweep(market, tmp_path / "ray", grid, executor="ray")
        assert ray.is_initialized()  # a session it did not start is left open
    finally:
        ray.shutdown()
    assert man_ray["executor"]["kind"] == "ray" and man_ray["executor"]["cpus"] == 2
    assert man_local["executor"]["kind"] == "in-process"
    assert [p["status"] for p in man_ray["points"]] == ["ran", "ran"]
    pd.testing.assert_frame_equal(remote, local, check_exact=True)
    table = "sweep/sweep_runs.csv"
    assert (tmp_path / "ray" / table).read_bytes() == (tmp_path / "local" / table).read_bytes()
    assert remote.groupby("seed")["train_return"].first().nunique() == 2  # two seeds, two agents
    again, man_again = sweep(market, tmp_path / "ray", grid, executor="auto")  # nothing left: Ray is not even started
    assert [p["status"] for p in man_again["points"]] == ["skipped", "skipped"]
    assert man_again["executor"]["kind"].startswith("none")
    pd.testing.assert_frame_equal(again, remote, check_exact=True)


def test_rerun_skips_finished_points_and_gathers_one_table(market, tmp_path):
    grid = {"seed": [0, 1], "sim.impact": ["static"]}
    runs, man = sweep(market, tmp_path, {"seed": [0], "sim.impact": ["static"]}, executor="local")
    assert [p["status"] for p in man["points"]] == ["ran"]
    files = {p: p.stat().st_mtime_ns for p in (tmp_path / "sweep" / "points").glob("*.csv")}
    assert len(files) == 1
    runs2, man2 = sweep(market, tmp_path, grid, executor="local")
    assert [p["status"] for p in man2["points"]] == ["skipped", "ran"]
    assert {p: p.stat().st_mtime_ns for p in files} == files  # the finished point was not written again
    assert len(list((tmp_path / "sweep" / "points").glob("*.csv"))) == 2
    pd.testing.assert_frame_equal(runs2.iloc[:len(runs)], runs, check_exact=True)
    n_bt = int((market[0].segments["role"] == "backtest").sum())
    assert len(runs2) == 2 * 2 * n_bt
    assert runs2.duplicated(["seed", "sim.impact", "mode", "seg_id"]).sum() == 0
    assert (runs2["gross_return"] >= runs2["total_return"]).all()
    runs3, man3 = sweep(market, tmp_path, grid, executor="local")
    assert [p["status"] for p in man3["points"]] == ["skipped", "skipped"]
    assert man3["executor"]["kind"].startswith("none") and man3["points"][1]["seconds"] == man2["points"][1]["seconds"]
    pd.testing.assert_frame_equal(runs3, runs2, check_exact=True)
    man_file = json.loads((tmp_path / "sweep" / "manifest.json").read_text())
    assert man_file["grid"] == {"seed": [0, 1], "sim.impact": ["static"]}
    assert set(man_file["tables"]) == {"sweep_runs.csv", "sweep_summary.csv", "sweep_summary.md"}
    assert {"git_commit", "versions", "timings", "config", "shared_models", "data"} <= set(man_file)
    assert "/" not in str(man_file["config"]["data"]["data_path"] or "")  # a file name, no machine path
    summary = pd.read_csv(tmp_path / "sweep" / "sweep_summary.csv")
    assert len(summary) == 2 and (summary["n_seeds"] == 2).all()


def test_command_line_in_process(market, tmp_path):
    "The console command on the in-process path (its bars resolved as the fixture's were); the library call's rows."
    shutil.copytree(market[1], tmp_path / "cli" / "artifacts")  # the run's cached models: loaded, not trained again
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    code = main(["sweep", "--profile", "quick", "--grid", "seed=0", "--grid", "sim.impact=static", *sets,
                 "--out", str(tmp_path / "cli"), "--local", "-q"])
    assert code == 0
    lib, _ = sweep(market, tmp_path / "lib", {"seed": [0], "sim.impact": ["static"]}, executor="local")
    cli = pd.read_csv(tmp_path / "cli" / "sweep" / "sweep_runs.csv", dtype={"point": str})
    pd.testing.assert_frame_equal(cli, lib, check_exact=True)
    assert sorted(p.name for p in (tmp_path / "cli" / "artifacts").glob("*.pt")) == \
        sorted(p.name for p in market[1].glob("*.pt"))  # no model was trained for the command


def test_command_line_bad_input_exits_2():
    assert main(["sweep", "--grid", "il.lr=1e-3,1e-4", "-q"]) == 2
    assert main(["sweep", "--grid", "seed=0", "--set", "sim.fee=0", "--grid", "sim.fee=0,1", "-q"]) == 2
    with pytest.raises(SystemExit) as e:
        main(["sweep", "--grid", "seed=0", "--local", "--address", "auto"])
    assert e.value.code == 2


def test_named_sweep_sits_beside_the_run_sweep(market, tmp_path):
    "`name` writes `<out>/sweep-<name>`: a second sweep of the run (here trained with a dealer's fills) leaves the first as it was."
    first, _ = sweep(market, tmp_path, {"seed": [0], "sim.impact": ["static"]}, executor="local")
    before = {p.name: p.read_bytes() for p in (tmp_path / "sweep").iterdir() if p.is_file()}
    named, man = sweep(market, tmp_path, {"seed": [0], "sim.fill": ["dealer"]}, executor="local", name="dealer")
    assert {p.name: p.read_bytes() for p in (tmp_path / "sweep").iterdir() if p.is_file()} == before
    man_file = json.loads((tmp_path / "sweep-dealer" / "manifest.json").read_text())
    assert man_file["grid"] == {"seed": [0], "sim.fill": ["dealer"]} and [p["status"] for p in man["points"]] == ["ran"]
    assert set(named["sim.fill"]) == {"dealer"} and set(named["strategy"]) == {"DDPG[synthesis]"}
    assert not first["point"].isin(named["point"]).any()  # another config, another point
    # the point's actor is kept beside its rows, loads with weights_only, and backtests to the very same rows
    digest = man_file["points"][0]["digest"]
    assert man_file["points"][0]["actor"] is True
    rec = load_actor_file(tmp_path / "sweep-dealer" / "points" / f"{digest}.pt")
    assert (rec.key, rec.seed, rec.impact) == (digest, 0, "synthesis") and rec.history is not None
    pipe = market[0]
    cfg = point_config(get_config("quick", settings=TINY), {"seed": 0, "sim.fill": "dealer"})
    again = evaluate_agent(rec.actor, load_backtest_set(cfg, pipe.bars, pipe.segments, pipe.il.scaler, feats=pipe.feats), cfg)
    kept = named.drop(columns=["point", "sim.fill", "train_return"]).reset_index(drop=True)
    numbers = [c for c in kept.columns if pd.api.types.is_numeric_dtype(kept[c])]  # the dates come back from the csv as text
    pd.testing.assert_frame_equal(again.reset_index(drop=True)[numbers], kept[numbers], check_exact=True)
    with pytest.raises(ValueError, match="letters, digits"):
        sweep(market, tmp_path, {"seed": [0]}, executor="local", name="../elsewhere")
    assert main(["sweep", "--grid", "seed=0", "--name", "a/b", "-q"]) == 2
