"""Run a notebook the way `nbdev_test` does (slow cells skipped), recording each cell's outcome.

Shared by `tests/test_notebooks.py` (one pytest case per notebook, whose failure message names the
cell and the line that failed) and `tools/nb_determinism.py` (the same notebook in fresh processes,
cell by cell).
"""
from __future__ import annotations

import hashlib
import os
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from execnb.shell import CaptureShell
from fastcore.xtras import working_directory
from nbdev.processors import FrontmatterProc
from nbdev.process import NBProcessor

# what legitimately changes from run to run: wall times, object addresses, temporary folders
_VOLATILE = re.compile(r"0x[0-9a-f]{6,}|\d+(\.\d+)?\s?(s|ms|sec|secs|seconds)\b|/tmp/\S+")


@dataclass
class CellOutcome:
    "What one executed cell did."
    index: int  # position of the cell in the notebook
    status: str  # "ok" or "error"
    error: str = ""  # exception type and message, first line
    where: str = ""  # "line N: <source line>" of the failing statement inside the cell
    digest: str = ""  # sha256 of the cell's text outputs, volatile numbers masked


@dataclass
class NotebookRun:
    "The outcome of every executed cell, in order; `failed` is the first error (execution stops there)."
    path: Path
    cells: list[CellOutcome] = field(default_factory=list)

    @property
    def failed(self) -> CellOutcome | None:
        return next((c for c in self.cells if c.status == "error"), None)

    def message(self) -> str:
        "One line naming the notebook, cell, line and error of the failure."
        f = self.failed
        if f is None: return f"{self.path.name}: all cells passed"
        return f"{self.path.name} cell {f.index}, {f.where or 'before the first line'}: {f.error}"


def _skip(cell, flags: set[str]) -> bool:
    "nbdev_test's rule: markdown, export calls, `#| eval: false` and flagged cells are not run."
    if cell.cell_type != "code": return True
    if "nbdev_export" + "(" in cell.source: return True
    direc = getattr(cell, "directives_", {}) or {}
    if direc.get("eval:", [""])[0].lower() == "false": return True
    return bool(flags & direc.keys())


def _failing_line(exc: BaseException) -> str:
    "`line N: source` of the innermost frame that belongs to the notebook cell."
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<ipython-input")]
    if not frames: return ""
    f = frames[-1]
    return f"line {f.lineno}: {(f.line or '').strip()}"


def _text_outputs(cell) -> str:
    parts = []
    for o in cell.get("outputs", []) or []:
        if "text" in o: parts.append("".join(o["text"]) if isinstance(o["text"], list) else str(o["text"]))
        data = o.get("data", {}) or {}
        if "text/plain" in data:
            t = data["text/plain"]
            parts.append("".join(t) if isinstance(t, list) else str(t))
    return _VOLATILE.sub("#", "\n".join(parts))


def run_notebook(path: str | Path,  # a notebook file
                 skip_flags: tuple[str, ...] = ("slow",),  # cells tagged with these flags are skipped
                ) -> NotebookRun:
    "Execute `path` top to bottom in a fresh shell (in its folder), stopping at the first error."
    path = Path(path).resolve()
    os.environ["IN_TEST"] = "1"
    nb = NBProcessor(path, procs=FrontmatterProc, process=True).nb
    shell = CaptureShell(path)
    run = NotebookRun(path)
    with working_directory(path.parent):
        for i, cell in enumerate(nb.cells):
            if _skip(cell, set(skip_flags)): continue
            shell.cell(cell)
            if shell.exc is not None:
                exc = shell.exc
                first = (str(exc).splitlines() or [""])[0][:300]
                run.cells.append(CellOutcome(i, "error", f"{type(exc).__name__}: {first}", _failing_line(exc)))
                run.traceback = "".join(traceback.format_exception(exc))
                break
            run.cells.append(CellOutcome(i, "ok", digest=hashlib.sha256(_text_outputs(cell).encode()).hexdigest()[:12]))
    return run
