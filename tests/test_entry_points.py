"""`import ilmarket`: the names of `__all__` resolve to the objects their modules define, loading them lazily (the bare
import loads no torch, pandas, numpy or stage module), and nbdev's export keeps the hand-written `__init__.py`."""
import configparser
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from nbdev.config import update_version

import ilmarket

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ilmarket.__all__)
def test_every_name_in_all_resolves_to_its_modules_object(name):
    obj = getattr(ilmarket, name)
    home = importlib.import_module(obj.__module__)
    assert getattr(home, name) is obj
    assert name in dir(ilmarket)


def test_all_names_the_entry_points_a_user_needs():
    assert {"Pipeline", "get_config", "backtest", "make_env", "make_vec_env", "load_bars", "seed_everything"} \
        <= set(ilmarket.__all__)
    assert len(set(ilmarket.__all__)) == len(ilmarket.__all__)
    assert set(ilmarket.__all__) == set(ilmarket._ENTRY_POINTS)  # every lazy name is listed, and only those


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        ilmarket.no_such_name
    assert not hasattr(ilmarket, "SB3VecEnv")  # the optional adapter lives in ilmarket.sb3 only


def _fresh(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout


def test_the_bare_import_is_cheap():
    out = _fresh("import sys, ilmarket; print(sorted(m for m in sys.modules "
                 "if m.split('.')[0] in ('torch', 'pandas', 'numpy', 'ilmarket')))")
    assert out.strip() == "['ilmarket']"


def test_star_import_gives_exactly_all():
    out = _fresh("before = set(dir()); from ilmarket import *; print(sorted(set(dir()) - before - {'before'}))")
    assert out.strip() == str(sorted(ilmarket.__all__))


def test_version_and_nbdev_export_keep_the_file(tmp_path, monkeypatch):
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini", encoding="utf-8")
    assert ilmarket.__version__ == cfg["DEFAULT"]["version"]
    text = (ROOT / "ilmarket" / "__init__.py").read_text(encoding="utf-8")
    (tmp_path / "__init__.py").write_text(text, encoding="utf-8")
    monkeypatch.chdir(ROOT)  # nbdev reads settings.ini from the working folder up
    update_version(tmp_path)  # what nbdev_export does to the package's __init__.py (put_version_in_init)
    assert (tmp_path / "__init__.py").read_text(encoding="utf-8") == text
