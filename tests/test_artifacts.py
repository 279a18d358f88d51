"""Model files never pass damaged: recorded sha256 beside each file, verification before loading or skipping,
byte-stable saves, a damaged DDPG checkpoint rebuilt from the last good one, the work tree's state in the
manifest, and library-style logging."""
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ilmarket import core
from ilmarket.core import get_config, load_matching, load_torch, save_torch, update_manifest
from ilmarket.ddpg import ToyMarket, load_checkpoint, train_ddpg

from ilmarket.testing import Interrupt, stop_at

torch.set_num_threads(1)


def flip_bit(path: Path, at: int, mask: int = 0x40) -> None:
    "Flip one bit of a file in place (its length unchanged); 0x40 of a float32's top byte is its exponent's high bit."
    b = bytearray(path.read_bytes())
    b[at] ^= mask
    path.write_bytes(bytes(b))


def tensor_offset(path: Path, tensor: torch.Tensor) -> int:
    "Where a tensor's raw bytes start inside a saved file (the data records are stored uncompressed)."
    raw = tensor.numpy().tobytes()
    at = path.read_bytes().find(raw)
    assert at > 0, "tensor bytes not found in the file"
    return at


class Art:
    "A cached artifact as `load_matching` expects it: anything with a `.digest`."
    def __init__(self, d):
        self.digest, self.w = d["digest"], d["w"]


def load_art(path):
    return Art(load_torch(path))


# ---- 1. damaged model files are refused, named, and rebuilt

def test_bit_flip_inside_a_model_file_is_detected(tmp_path):
    w = torch.linspace(-1, 1, 64)
    p = save_torch({"digest": "d", "w": w}, tmp_path / "m.pt")
    flip_bit(p, tensor_offset(p, w) + 7)  # in w[1]'s exponent: still a loadable file, a weight off by ~1e38
    assert torch.load(p, weights_only=True)["w"][1].abs() > 1e30  # what a load without the check returns
    with pytest.raises(ValueError, match=r"m\.pt.*damaged"):
        load_torch(p)


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b[:-1], lambda b: b""])
def test_truncated_model_file_is_refused_as_damaged(tmp_path, damage):
    p = save_torch({"digest": "d", "w": torch.arange(100.0)}, tmp_path / "m.pt")
    p.write_bytes(damage(p.read_bytes()))
    with pytest.raises(core.DamagedFile, match=r"m\.pt"):
        load_torch(p)


def test_load_matching_retrains_a_damaged_file_with_a_warning(tmp_path, caplog):
    w = torch.linspace(-1, 1, 64)
    p = save_torch({"digest": "abc", "w": w}, tmp_path / "il.pt")
    assert load_matching(p, "abc", load_art, "demo").digest == "abc"
    flip_bit(p, tensor_offset(p, w) + 3)
    with caplog.at_level(logging.WARNING, logger="ilmarket"):
        assert load_matching(p, "abc", load_art, "demo") is None
    assert "il.pt" in caplog.text and "damaged" in caplog.text and "trained again" in caplog.text


def test_legacy_file_without_a_recorded_hash_is_unverified(tmp_path, caplog):
    p = tmp_path / "old.pt"
    torch.save({"digest": "abc", "w": torch.zeros(3)}, p)  # as written before hashes were recorded
    with pytest.raises(core.DamagedFile, match=r"old\.pt.*no sha256 recorded"):
        load_torch(p)
    assert load_torch(p, verify=False)["digest"] == "abc"  # an explicit opt-out reads it
    with caplog.at_level(logging.WARNING, logger="ilmarket"):
        assert load_matching(p, "abc", load_art, "demo") is None
    assert "old.pt" in caplog.text and "trained again" in caplog.text


def test_verify_artifacts_names_damaged_unverified_and_missing_files(tmp_path):
    good = save_torch({"w": torch.arange(50.0)}, tmp_path / "good.pt")
    bad = save_torch({"w": torch.arange(50.0)}, tmp_path / "bad.pt")
    bad.write_bytes(bad.read_bytes()[:-10])
    torch.save({"w": 1}, tmp_path / "legacy.pt")
    gone = save_torch({"w": 2}, tmp_path / "gone.pt")
    gone.unlink()
    problems = core.verify_artifacts(tmp_path)
    assert len(problems) == 3, problems
    text = "\n".join(problems)
    assert "bad.pt: damaged" in text and "legacy.pt" in text and "no sha256 recorded" in text
    assert "gone.pt: missing" in text and "good.pt" not in text
    assert core.verify_artifacts(tmp_path / "nothing here") == []
    assert core.set_aside(bad).name == "bad.pt.damaged"  # kept for inspection, no longer an artifact
    (tmp_path / "legacy.pt").unlink(); (tmp_path / "gone.pt.sha256").unlink()
    assert core.verify_artifacts(tmp_path) == [] and [p.name for p in core.artifact_files(tmp_path)] == [good.name]


# ---- 3. byte-stable model files

def test_identical_saves_give_identical_bytes(tmp_path):
    w = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    obj = {"w": w, "n": 3, "rng": torch.Generator().get_state()}
    a = save_torch(obj, tmp_path / "a" / "model.pt")
    b = save_torch(obj, tmp_path / "b" / "other_name.pt")  # another folder and name: the bytes must not record either
    assert a.read_bytes() == b.read_bytes()
    assert core.recorded_sha256(a) == core.recorded_sha256(b) == core.sha256_file(a)


def test_identical_ddpg_trainings_give_identical_checkpoint_bytes(tmp_path):
    cfg = get_config("quick", ddpg=dict(total_steps=192, learning_starts=48, buffer_size=500, checkpoint_every=96))
    for name in ("a", "b"):
        train_ddpg(ToyMarket(4, horizon=30), cfg, seed=5, checkpoint_path=tmp_path / name / "ddpg.pt", progress=False)
    assert (tmp_path / "a" / "ddpg.pt").read_bytes() == (tmp_path / "b" / "ddpg.pt").read_bytes()
    # a run interrupted and resumed holds equal values read back from its checkpoint: still the same bytes
    with pytest.raises(Interrupt):
        train_ddpg(ToyMarket(4, horizon=30), cfg, seed=5, checkpoint_path=tmp_path / "c" / "ddpg.pt", progress=False,
                   callback=stop_at(120))
    train_ddpg(ToyMarket(4, horizon=30), cfg, seed=5, checkpoint_path=tmp_path / "c" / "ddpg.pt", progress=False)
    assert (tmp_path / "a" / "ddpg.pt").read_bytes() == (tmp_path / "c" / "ddpg.pt").read_bytes()


# ---- 4. the manifest records a dirty work tree

def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=ci", "-c", "user.email=ci@example.invalid", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    r = tmp_path / "proj"
    (r / "reports" / "run").mkdir(parents=True)
    (r / "code.py").write_text("x = 1\n")
    (r / "notes.md").write_text("notes\n")
    (r / "reports" / "run" / "table.csv").write_text("a\n1\n")
    git(r, "init", "-q")
    git(r, "add", ".")
    git(r, "commit", "-q", "-m", "init")
    monkeypatch.setenv("ILMARKET_HOME", str(r))
    return r


def test_manifest_of_a_clean_tree(repo):
    (repo / "untracked.txt").write_text("scratch\n")  # untracked files do not make the tree dirty
    (repo / "reports" / "run" / "table.csv").write_text("a\n2\n")  # nor do the run's own outputs
    man = update_manifest(repo / "reports" / "run")
    assert man["git_commit"] and len(man["git_commit"]) == 40
    assert man["git_dirty"] is False and man["git_modified"] == []


def test_manifest_of_a_dirty_tree_lists_the_modified_files(repo):
    (repo / "code.py").write_text("x = 2\n")
    (repo / "notes.md").unlink()
    man = update_manifest(repo / "reports" / "run")
    assert man["git_dirty"] is True and man["git_modified"] == ["code.py", "notes.md"]
    git(repo, "add", "code.py")  # staged but not committed is still not the recorded commit
    assert update_manifest(repo / "reports" / "run")["git_modified"] == ["code.py", "notes.md"]


def test_manifest_outside_a_git_tree(tmp_path, monkeypatch):
    monkeypatch.setenv("ILMARKET_HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    man = update_manifest(tmp_path / "out")
    assert man["git_commit"] is None and man["git_dirty"] is None and man["git_modified"] is None


# ---- 5. logging follows the library convention

def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


def test_basic_config_prints_each_message_once():
    r = run_python("import logging; from ilmarket.core import get_logger\n"
                   "logging.basicConfig(level=logging.INFO, format='root %(name)s %(message)s')\n"
                   "get_logger('ilmarket.data').info('hello once')")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("hello once") == 1, r.stderr
    assert "root ilmarket.data hello once" in r.stderr


def test_the_library_alone_prints_nothing_and_configure_logging_prints_once():
    r = run_python("import logging; from ilmarket.core import configure_logging, get_logger\n"
                   "get_logger('ilmarket.x').info('before')\n"
                   "configure_logging(); configure_logging()\n"
                   "get_logger('ilmarket.x').info('after')\n"
                   "root = logging.getLogger()\n"
                   "print(len(root.handlers), root.level)")
    assert r.returncode == 0, r.stderr
    assert "before" not in r.stderr
    assert r.stderr.count("ilmarket.x: after") == 1, r.stderr
    assert r.stdout.split() == ["0", str(logging.WARNING)]  # the root logger is left alone


def test_configure_logging_sets_the_level_and_follows_stderr(capsys):
    log = core.configure_logging(logging.WARNING)
    try:
        core.get_logger("ilmarket.t").info("quiet")
        core.get_logger("ilmarket.t").warning("loud")
        assert capsys.readouterr().err == "ilmarket.t: loud\n"  # written to the stderr of the moment (pytest's here)
        assert sum(h.get_name() == core.CONSOLE_HANDLER for h in log.handlers) == 1
    finally:
        for h in [h for h in log.handlers if h.get_name() == core.CONSOLE_HANDLER]: log.removeHandler(h)
        log.setLevel(logging.NOTSET)


def test_synthesis_file_round_trips_an_index_across_daylight_saving(tmp_path):
    "The residuals' bar times cross a DST change (offsets -05:00 and -04:00): they read back as the same instants."
    import numpy as np
    import pandas as pd
    from ilmarket.core import SynthesisConfig
    from ilmarket.synthesis import SynthArtifacts, SynthesisNet, load_synthesis, save_synthesis
    idx = pd.date_range("2026-03-06 15:50", periods=4, freq="3D", tz="America/New_York")  # EST then EDT
    scfg = SynthesisConfig()
    art = SynthArtifacts(SynthesisNet(10, scfg), np.zeros(4), pd.DataFrame({"model": ["net"], "rmse": [1.0]}).set_index("model"),
                         {}, "d", idx)
    back = load_synthesis(save_synthesis(art, scfg, tmp_path / "s.pt"))
    assert back.index.equals(idx) and str(back.index.tz) == "America/New_York"
