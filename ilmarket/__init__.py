"""Interactive market simulation from an ensemble of imitation-learning agents, and RL trading policies trained in it.

The entry points a user needs load on first use, so `import ilmarket` itself imports no torch, pandas or data:

    import ilmarket
    env = ilmarket.make_env("quick", seed=0)  # a gymnasium.Env on the project's data and models
    pipe = ilmarket.Pipeline.from_profile("quick")  # every stage of the paper's Algorithm 1, cached

The stable-baselines3 adapter is an optional extra (`pip install ilmarket[sb3]`): `from ilmarket.sb3 import SB3VecEnv`.
This file is kept by hand; `nbdev_export` only rewrites the `__version__` line.
"""
__version__ = "0.1.0"

from importlib import import_module
from typing import TYPE_CHECKING, Any

_ENTRY_POINTS = {  # name → the module that defines it
    "get_config": "core", "seed_everything": "core", "configure_logging": "core",
    "load_bars": "data",
    "compute_metrics": "portfolio",
    "Pipeline": "pipeline", "make_env": "pipeline", "make_vec_env": "pipeline", "backtest": "pipeline",
}
# spelled out for editors and type checkers; tests/test_entry_points.py checks it names the same as _ENTRY_POINTS
__all__ = ["get_config", "seed_everything", "configure_logging", "load_bars", "compute_metrics",
           "Pipeline", "make_env", "make_vec_env", "backtest"]

if TYPE_CHECKING:
    from .core import configure_logging, get_config, seed_everything
    from .data import load_bars
    from .pipeline import Pipeline, backtest, make_env, make_vec_env
    from .portfolio import compute_metrics


def __getattr__(name: str) -> Any:
    "Import an entry point's module on first use of the name."
    if name not in _ENTRY_POINTS: raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_ENTRY_POINTS[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_ENTRY_POINTS})
