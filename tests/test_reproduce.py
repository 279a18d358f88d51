"""The `ilmarket reproduce` command end to end: real papermill runs of a quick subset of the pipeline,
byte-identical tables for the same seed, stage skipping on rerun, and a failing stage's message and exit code."""
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
CLI = Path(sys.executable).parent / "ilmarket"
SUBSET = "01,03,09"  # data, segmentation (Table 6) and the evaluation (Tables 1, 2, 5, ablation; trains its quick agents)


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run([str(CLI), "reproduce", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)


def _outputs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for sub in ("tables", "figures") for p in sorted((out / sub).glob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("repro")
    runs = [_run("--profile", "quick", "--seed", "0", "--only", SUBSET, "--out", str(base / name)) for name in ("a", "b")]
    return base, runs


def test_quick_subset_runs_and_writes_manifest(two_runs):
    base, runs = two_runs
    for r in runs: assert r.returncode == 0, r.stderr[-3000:]
    out = base / "a"
    man = json.loads((out / "manifest.json").read_text())
    stems = sorted(man["timings"])
    assert len(stems) == len(SUBSET.split(",")) and all(s.split("_")[0] in SUBSET.split(",") for s in stems)
    assert man["profile"] == "quick" and man["seed"] == 0
    assert man["data"]["synthetic"] or len(man["data"]["sha256"]) == 64
    assert man["artifacts"], "the subset wrote no table or figure"
    for stem in stems:
        assert (out / "executed" / f"{stem}.ipynb").exists()
        assert (out / "stages" / f"{stem}.json").exists()
    n = len(SUBSET.split(","))
    assert all(f"[{i}/{n}]" in runs[0].stderr for i in range(1, n + 1))
    assert "KeyboardInterrupt" not in runs[0].stderr  # the kernel's shutdown notice is not the run's output
    assert (out / "REPORT.md").exists() and "## Wall time per notebook" in (out / "REPORT.md").read_text()


def test_same_seed_gives_identical_tables(two_runs):
    base, runs = two_runs
    a, b = _outputs(base / "a"), _outputs(base / "b")
    assert any(k.startswith("tables/") for k in a) and "tables/table1_aggregate.csv" in a
    assert sorted(a) == sorted(b)
    differing = [k for k in a if a[k] != b[k]]
    assert not differing, f"outputs differ between two runs with the same seed: {differing}"


def test_rerun_skips_up_to_date_stages(two_runs):
    base, _ = two_runs
    r = _run("--profile", "quick", "--seed", "0", "--only", SUBSET, "--out", str(base / "a"))
    assert r.returncode == 0, r.stderr[-3000:]
    man = json.loads((base / "a" / "manifest.json").read_text())
    assert set(man["stages"].values()) == {"skipped"}
    assert "up to date, skipped" in r.stderr
    first, again = man["runs"]  # one record per invocation: the first run's times survive the rerun
    assert sorted(first["ran"]) == sorted(man["timings"]) and all(t > 0 for t in first["ran"].values())
    assert again["ran"] == {} and sorted(again["skipped"]) == sorted(man["stages"])


def _nb(path: Path, code: str) -> None:
    params = nbformat.v4.new_code_cell('profile = "quick"\nseed = 0\ndata_path = None\nout_dir = None')
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(code)],
                                  metadata={"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"}})
    nbformat.write(nb, path)


def test_failing_stage_named_and_earlier_outputs_kept(tmp_path):
    nbs, out = tmp_path / "nbs", tmp_path / "out"
    nbs.mkdir()
    _nb(nbs / "01_ok.ipynb", "from pathlib import Path\n(Path(out_dir) / 'ok.txt').write_text(str(seed))")
    _nb(nbs / "02_bad.ipynb", "x = 1\nraise ValueError('segment 7 has no bars')")
    _nb(nbs / "03_after.ipynb", "y = 2")
    src_before = (nbs / "02_bad.ipynb").read_bytes()
    bars = tmp_path / "bars.csv"  # the stages here do not read it: any file of a bars type will do
    bars.write_text("timestamp,open,high,low,close,volume\n")
    r = _run("--nbs", str(nbs), "--out", str(out), "--data", str(bars))
    assert r.returncode == 1
    assert "02_bad" in r.stderr and "cell 1" in r.stderr and "ValueError: segment 7 has no bars" in r.stderr
    assert "line 2: raise ValueError('segment 7 has no bars')" in r.stderr  # the line that failed, not the cell's first
    assert (out / "ok.txt").read_text() == "0"
    assert (out / "stages" / "01_ok.json").exists() and not (out / "stages" / "02_bad.json").exists()
    assert (out / "executed" / "02_bad.failed.ipynb").exists() and not (out / "executed" / "03_after.ipynb").exists()
    assert (nbs / "02_bad.ipynb").read_bytes() == src_before
    _nb(nbs / "02_bad.ipynb", "x = 1")
    r = _run("--nbs", str(nbs), "--out", str(out), "--data", str(bars))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "01_ok ... up to date, skipped" in r.stderr and "02_bad ... running" in r.stderr and "03_after ... running" in r.stderr


def _later_bars(folder: Path) -> Path:
    """Seven months of bars after Table 6's last extremum: the real 1-minute bars of 2024-01..07 moved 100 weeks
    forward onto 2025-12..2026-07 and resampled to 5 minutes (the 1-minute path of notebooks 01-04 is run by
    test_data_span and test_segments_span) when the shared data is present, else the synthetic market of
    2025-09..2026-03."""
    import pandas as pd
    from ilmarket.data import TZ, load_bars, resample_bars, synthetic_bars
    real = ROOT.parent / "shared" / "data" / "qqq_1min.parquet"
    p = folder / "later_bars.parquet"
    if real.exists():
        raw = pd.read_parquet(real)
        t = raw["timestamp"]
        raw = raw[(t >= pd.Timestamp("2024-01-01", tz=TZ)) & (t < pd.Timestamp("2024-08-01", tz=TZ))]
        wall = raw["timestamp"].dt.tz_localize(None) + pd.Timedelta(weeks=100)
        one = folder / "later_1min.parquet"
        raw.assign(timestamp=wall.dt.tz_localize(TZ)).to_parquet(one)
        resample_bars(load_bars(one), "5min").rename_axis("timestamp").reset_index().to_parquet(p)
    else:
        synthetic_bars("2025-09-02", "2026-03-31", freq="5min", seed=3).to_parquet(p)
    return p
