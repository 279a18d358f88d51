"""The package's structure: one stage per module in pipeline order, no import back up, and only the pipeline
(and the data chapter that defines it) resolves the data; no stage module trains or loads another stage."""
import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "ilmarket"
SOURCE = re.compile(r"File to edit: \.\./nbs/(\w+)\.ipynb")


def _modules() -> dict[str, tuple[str, ast.Module]]:
    "module name → (its notebook's stem, parsed source), for every exported module."
    out = {}
    for p in sorted(PKG.glob("*.py")):
        text = p.read_text(encoding="utf-8")
        m = SOURCE.search(text)
        if m: out[p.stem] = (m.group(1), ast.parse(text))
    return out


MODULES = _modules()


def _imported(tree: ast.Module) -> set[str]:
    "ilmarket modules imported at run time (not under `if TYPE_CHECKING:`)."
    names = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test): continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.ImportFrom) and sub.module:
                mod = sub.module.removeprefix("ilmarket.").removeprefix(".") if (sub.level or sub.module.startswith("ilmarket")) else None
                if mod and mod in MODULES: names.add(mod)
    return names


def test_every_stage_module_is_found():
    assert {"core", "data", "segments", "agents", "synthesis", "market", "ddpg", "evaluation", "pipeline", "reproduce"} <= set(MODULES)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_runs_back_up(name):
    nb, tree = MODULES[name]
    later = [m for m in _imported(tree) if MODULES[m][0] > nb]
    assert not later, f"{name} ({nb}) imports later modules {later}"


@pytest.mark.parametrize("name", sorted(set(MODULES) - {"data", "pipeline", "reproduce"}))
def test_stage_modules_do_not_resolve_data_or_load_other_stages(name):
    _, tree = MODULES[name]
    calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert "default_bars" not in calls, f"{name} resolves the data itself"
    defs = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert not {d for d in defs if d.startswith("load_or_")}, f"{name} defines a load-or-train wiring function"
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert not {i for i in imported if i.startswith("load_or_") or i == "default_bars"}, f"{name} imports a loader"
