"""Build the documentation site without Quarto: nbdev's processed notebooks rendered by Sphinx + MyST-NB.

    python tools/build_docs.py [--out _docs] [--cache _proc/docs] [--reports reports] [--jobs 1] [--strict]

1. Every `nbs/*.ipynb` (not `_*.ipynb`), in sorted order, is processed by nbdev's own notebook processors
   (`nbdev.processors.FilterDefaults`, what `nbdev_docs`/`proc_nbs` run before Quarto): the H1 + `>` summary
   become the page title, `#| hide`/`#| export` cells disappear and a `show_doc` cell is added after every
   exported function or class. To render those `show_doc` cells only exported cells, pure import cells and
   `show_doc` cells are run (nbdev's own processor also runs any cell that mixes imports with other code);
   no example, training or test cell ever runs.
2. Outputs are the ones stored in the notebook. The sources in `nbs/` are committed cleaned, so when the
   reproduction's executed copy `reports/<profile>/executed/<name>.ipynb` exists (profile `full`, then
   `quick`) and its code cells are exactly those of `nbs/<name>.ipynb`, the executed copy is rendered
   instead, with its tables and figures; the page says so. A stale copy is ignored.
3. The processed notebooks are turned into MyST-NB input (Quarto cell options become cell tags, nbdev's
   absolute doc links become relative ones) and Sphinx builds `--out` with the Furo theme: one page per
   notebook, in order, the front page from `index.ipynb`, a "Reproduction report" page from
   `reports/full/REPORT.md` (else `reports/quick/REPORT.md`) with its figures and linked files,
   navigation and Sphinx's client-side search. The report's figures are embedded in the page: a link to an
   image file (`[fig3](figures/fig3.png)`, as older reports wrote them) becomes the image itself. Maths is
   typeset by the MathJax 3 copy that the `sphinx-mathjax-offline` package ships, served from the site
   itself: the pages make no request outside it.

Processed notebooks are cached in `--cache`, keyed by the content of the notebook, the package's doc
index, nbdev's version and this script, so a rebuild only processes what changed. A notebook whose API docs
cannot be rendered (its exported code fails to run) still gets its page, without them, and a WARNING line;
`--strict` makes that an error.
"""
from __future__ import annotations

import argparse
import ast
import atexit
import configparser
import contextlib
import hashlib
import io
import json
import multiprocessing as mp
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ("full", "quick")
RUN_DIRECTIVES = {"export", "exports", "exporti", "exec_doc"}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}


# ---------------------------------------------------------------- choosing and processing notebooks
def notebooks(nbs: Path) -> list[Path]:
    "The notebooks that make pages: `nbs/*.ipynb` without `_*`/`.*`, sorted by name."
    return sorted(p for p in nbs.glob("*.ipynb") if not p.name.startswith(("_", ".")))


def _src(cell: dict) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def _tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def code_sources(nb: dict) -> list[str]:
    "Sources of the code cells, papermill's injected-parameters cell left out."
    return [_src(c).strip() for c in nb["cells"]
            if c["cell_type"] == "code" and "injected-parameters" not in _tags(c)]


def _rel(path: Path) -> str:
    "`path` relative to the project when inside it."
    try: return path.resolve().relative_to(ROOT).as_posix()
    except ValueError: return path.as_posix()


def _read_json(path: Path) -> dict:
    try: return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e: raise SystemExit(f"build_docs: cannot read notebook {path}: {e}") from e


def pick_source(nb_path: Path, reports: Path) -> tuple[Path, str | None]:
    "The executed copy of `nb_path` from a reproduction run when it is current, else `nb_path` itself."
    clean = code_sources(_read_json(nb_path))
    for profile in PROFILES:
        ex = reports / profile / "executed" / nb_path.name
        if not ex.is_file(): continue
        try: executed = json.loads(ex.read_text(encoding="utf-8"))
        except ValueError: continue
        if code_sources(executed) == clean: return ex, profile
    return nb_path, None


def split_title_cell(nb: dict) -> None:
    """Keep the H1 and its `>` summary alone in their cell.

    nbdev's FrontmatterProc turns the first markdown cell holding an H1 into the page's front matter and drops
    the whole cell, so any prose after the summary in that cell would vanish from the docs."""
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown": continue
        lines = _src(cell).splitlines()
        h1 = next((j for j, l in enumerate(lines) if re.match(r"^#\s+\S", l)), None)
        if h1 is None: continue
        end = h1 + 1
        while end < len(lines) and (not lines[end].strip() or lines[end].startswith(">")): end += 1
        while end > h1 + 1 and not lines[end - 1].strip(): end -= 1
        head, rest = lines[h1:end], lines[:h1] + lines[end:]
        if any(l.strip() for l in rest):
            cell["source"] = "\n".join(head)
            nb["cells"].insert(i + 1, {"cell_type": "markdown", "metadata": {}, "source": "\n".join(rest).strip()})
        return


def _pure(trees, ok) -> bool:
    "Whether every top-level statement of a cell satisfies `ok`."
    return bool(trees) and all(ok(t) for t in trees)


def _make_filter(with_docs: bool = True):
    """nbdev's FilterDefaults with `exec_show_docs` restricted to exported, import-only and show_doc cells
    (or left out, and with it every show_doc output, when not `with_docs`) and `add_show_docs` in source order."""
    from nbdev import processors as P

    def _is_import(t): return isinstance(t, (ast.Import, ast.ImportFrom))
    def _is_show_doc(t): return isinstance(t, ast.Expr) and getattr(getattr(t.value, "func", None), "id", None) == "show_doc"

    class exec_show_docs(P.exec_show_docs):
        "Run what `show_doc` needs: exported cells, import-only cells and `show_doc` cells; nothing else."
        def __call__(self, cell):
            if not self.nb.has_docs_ or not hasattr(self, "k") or not P._do_eval(cell): return
            trees = cell.parsed_()
            if not (cell.directives_.keys() & RUN_DIRECTIVES or _pure(trees, _is_import)
                    or _pure(trees, lambda t: _is_import(t) or _is_show_doc(t))): return
            self.k.cell(cell)
            if self.k.exc:
                raise RuntimeError(f"{self.nb.path_}: cell {cell.idx_} failed while rendering API docs:\n"
                                   f"{cell.source}") from self.k.exc

        def end(self):
            super().end()
            if hasattr(self, "k"):  # close the shell now: IPython's exit hook would reset and gc it at exit
                atexit.unregister(self.k.atexit_operations)
                if self.k.history_manager is not None: self.k.history_manager.close()

    class add_show_docs(P.add_show_docs):
        "nbdev's add_show_docs, but a cell defining several names documents them in source order, not reversed."
        def begin(self):
            nb = self.nb
            exports = [cell for cell in nb.cells if P._want_doc(cell)]
            trees = [t for cell in nb.cells for t in (cell.parsed_() or [])]
            shown_docs = {P._get_nm(t) for t in P._show_docs(trees)}
            for cell in reversed(exports):
                if P.cell_lang(cell) != "python": raise ValueError(f"{cell.metadata.language} can't export:\n{cell.source}")
                for nm in reversed(P._def_names(cell, shown_docs)):
                    new_cell = P.mk_cell(f"show_doc({nm})")
                    new_cell.has_sd = True
                    nb.cells.insert(cell.idx_ + 1, new_cell)
            nb.has_docs_ = shown_docs or exports

    class DocsFilter(P.FilterDefaults):
        def base_procs(self):
            mine = {P.exec_show_docs: exec_show_docs, P.add_show_docs: add_show_docs}
            procs = [mine.get(p, p) for p in super().base_procs()]
            return procs if with_docs else [p for p in procs if p is not exec_show_docs]

    return DocsFilter()


def _fallback_show_docs(nb, js: dict) -> list[str]:
    """Give every `show_doc(name)` cell that nbdev could not render (no markdown output) a plain rendering from
    the exported module: signature and docstring. Returns the names so rendered."""
    import importlib
    import inspect
    m = next((re.search(r"^\s*#\|\s*default_exp\s+(\S+)", _src(c), flags=re.M) for c in js["cells"]
              if c["cell_type"] == "code" and re.search(r"^\s*#\|\s*default_exp\s", _src(c), flags=re.M)), None)
    if m is None: return []
    try: mod = importlib.import_module(f"{read_settings()['lib_path']}.{m.group(1)}")
    except Exception: return []
    fixed = []
    for cell in nb.cells:
        sd = re.search(r"^show_doc\(([A-Za-z_][\w.]*)\)\s*$", cell.get("source") or "", flags=re.M)
        if cell.cell_type != "code" or not sd: continue
        if any("text/markdown" in (o.get("data") or {}) for o in cell.get("outputs", [])): continue
        obj = mod
        try:
            for part in sd.group(1).split("."): obj = getattr(obj, part)
        except AttributeError: continue
        try: sig = str(inspect.signature(obj))
        except (TypeError, ValueError): sig = "(...)"
        kind = "class" if inspect.isclass(obj) else "def"
        doc = inspect.getdoc(obj) or ""
        md = f"### {sd.group(1)}\n\n```python\n{kind} {sd.group(1).split('.')[-1]}{sig}\n```\n\n{doc}\n"
        cell["outputs"] = [{"output_type": "display_data", "metadata": {}, "data": {"text/markdown": md}}]
        fixed.append(sd.group(1))
    return fixed


def process_notebook(job: tuple[str, str, str, bool]) -> tuple[str, float, str | None]:
    """Worker: run nbdev's processors on notebook `src` (named as `name` in nbs/) and write `dst`.

    Returns where the result is, the time taken and a warning or None. When the code behind the API docs fails
    (say, an import of a module that is not exported yet) the page is built without them, written beside `dst`
    (so not cached) and the error is returned; with `strict` it is raised. A `show_doc` that nbdev cannot
    render (it prints an error) is replaced by a plain rendering from the module, noted in the warning."""
    src, name, dst, strict = job
    t0 = time.perf_counter()
    os.environ["IN_TEST"] = "1"  # as nbdev's own driver (nbdev.serve_drv) sets it
    os.environ.setdefault("MPLBACKEND", "Agg")
    warnings.filterwarnings("ignore", message="Found cells containing imports")
    from execnb.nbio import dict2nb, write_nb
    js = json.loads(Path(src).read_text(encoding="utf-8"))
    js["cells"] = [c for c in js["cells"] if "injected-parameters" not in _tags(c)]
    for c in js["cells"]:
        c["source"] = _src(c)
    split_title_cell(js)

    def run(with_docs: bool):
        nb = dict2nb(json.loads(json.dumps(js)))
        nb["path_"] = str(ROOT / "nbs" / name)  # the page is named after the source notebook, not the copy
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            _make_filter(with_docs)(nb)
        return nb, re.findall(r"^(\w+(?:Error|Exception): .*)$", _ANSI.sub("", printed.getvalue()), flags=re.M)

    failed = None
    try: nb, errors = run(True)
    except Exception as e:
        if strict: raise
        cause = e.__cause__ or e
        failed = f"{name}: API docs not rendered: {str(e).splitlines()[0]} {type(cause).__name__}: {cause}"
        nb, errors = run(False)
    warning = failed
    if errors and not failed:
        if strict: raise RuntimeError(f"{name}: show_doc printed an error: {errors[-1]}")
        warning = f"{name}: show_doc printed an error: {errors[-1]}"
    fixed = [] if failed else _fallback_show_docs(nb, js)
    if fixed: warning = f"{warning or name}; plain API docs rendered from the module for {', '.join(fixed)}"
    out = Path(dst).with_suffix(".tmp")
    write_nb(nb, out)
    if not failed:
        os.replace(out, dst)
        out = Path(dst)
    return str(out), time.perf_counter() - t0, warning


def cache_key(src: Path, name: str) -> str:
    import nbdev
    h = hashlib.sha256()
    for part in (src.read_bytes(), name.encode(), nbdev.__version__.encode(), Path(__file__).read_bytes()):
        h.update(hashlib.sha256(part).digest())
    modidx = ROOT / read_settings()["lib_path"] / "_modidx.py"
    if modidx.exists(): h.update(hashlib.sha256(modidx.read_bytes()).digest())
    return h.hexdigest()[:20]


# ---------------------------------------------------------------- turning processed notebooks into pages
def read_settings() -> dict:
    cp = configparser.ConfigParser(delimiters=["="], interpolation=None)
    cp.read(ROOT / "settings.ini", encoding="utf-8")
    return dict(cp["DEFAULT"])


def _make_id(s: str) -> str:
    from docutils.nodes import make_id
    return make_id(s)


class Linker:
    "Rewrites nbdev's absolute doc links and links to notebooks into links between the site's pages."
    def __init__(self, doc_prefix: str, pages: dict[str, str]):
        self.prefix, self.pages = doc_prefix, pages  # pages: notebook stem and html stem -> page name

    def target(self, t: str) -> str:
        path, hash_, frag = t.partition("#")
        if self.prefix and path.startswith(self.prefix):
            page = path[len(self.prefix):] or "index.html"
            if page.endswith(".html") and Path(page).stem in self.pages:
                page = self.pages[Path(page).stem] + ".html"
            # a method (`Class.method`) has no API section of its own: it links to its class's
            return page + (f"#{_make_id(frag.split('.')[0])}" if frag else "")
        if re.fullmatch(r"(?:\./|\.\./)*(?:reports/\w+/)?REPORT\.md", path): return "report.html" + hash_ + frag
        m = re.fullmatch(r"(?:\./)?(?:(?:\.\./)*nbs/)?(?:executed/)?([\w.-]+)\.ipynb", path)
        if m and m.group(1) in self.pages:
            return self.pages[m.group(1)] + ".html" + (f"#{frag}" if hash_ else "")
        return t

    def __call__(self, text: str) -> str:
        text = re.sub(r"(\]\()(<?)([^)\s>]+)(>?)", lambda m: m.group(1) + m.group(2) + self.target(m.group(3)) + m.group(4), text)
        return re.sub(r'(href=")([^"]+)(")', lambda m: m.group(1) + self.target(m.group(2)) + m.group(3), text)


_QUARTO_TAGS = {("echo", "false"): "remove-input", ("output", "false"): "remove-output",
                ("include", "false"): "remove-cell", ("code-fold", "true"): "hide-input",
                ("code-fold", "show"): "hide-input"}


def _cell_options(source: str) -> tuple[dict[str, str], str]:
    "Split leading `#| key: value` lines (Quarto cell options) from the code."
    opts, lines = {}, source.splitlines()
    while lines and lines[0].lstrip().startswith("#|"):
        k, _, v = lines.pop(0).lstrip()[2:].partition(":")
        opts[k.strip()] = v.strip().lower()
    return opts, "\n".join(lines)


def _clean_markdown_output(text: str, link) -> str:
    text = re.sub(r"\{target=\"_blank\"[^}]*\}", "", text)  # Quarto attributes on show_doc's [source] link
    text = re.sub(r"^\s*---\s*\n", "", text)  # show_doc's leading rule
    return link(text)


def _asis_markdown(text: str, link) -> str:
    "show_doc's markdown with its heading first, then the [source] link (Quarto floats that link right)."
    text = _clean_markdown_output(text, link)
    m = re.match(r"\s*\[source\]\(([^)\s]*)\)\s*\n+(#+ .*)\n", text)
    if m: text = f'{m.group(2)}\n\n<div class="sourcelink"><a href="{m.group(1)}">source</a></div>\n' + text[m.end():]
    return text


def to_page(nb: dict, link: Linker, note: str | None, fallback_title: str) -> dict:
    "A processed notebook as MyST-NB input: title cell first, Quarto options as tags, links fixed."
    import yaml
    fm, cells = {}, []
    for c in nb["cells"]:
        src = _src(c)
        if c["cell_type"] == "raw":
            m = re.fullmatch(r"\s*---\s*\n(.*?)\n---\s*", src, flags=re.S)
            if m and not fm:
                fm = yaml.safe_load(m.group(1)) or {}
                continue
            cells.append(c)
            continue
        if c["cell_type"] == "markdown":
            if src.lstrip().startswith("<!-- WARNING: THIS FILE WAS AUTOGENERATED"): continue
            cells.append({**c, "source": link(src)})
            continue
        opts, code = _cell_options(src)
        tags = _tags(c) + [t for (k, v), t in _QUARTO_TAGS.items() if opts.get(k) == v]
        if "remove-cell" in tags: continue
        asis = [_src({"source": o["data"]["text/markdown"]}) for o in c.get("outputs", [])
                if "text/markdown" in (o.get("data") or {})]
        if opts.get("output") == "asis" and opts.get("echo") == "false" and asis:
            # Quarto's `output: asis`: the markdown (show_doc's API docs) becomes part of the page, so its
            # headings are real sections, in the page's table of contents
            cells += [{"cell_type": "markdown", "metadata": {}, "source": _asis_markdown(md, link)} for md in asis]
            continue
        outs = []
        for o in c.get("outputs", []):
            data = o.get("data")
            if data and "text/markdown" in data:
                md = _clean_markdown_output(_src({"source": data["text/markdown"]}), link)
                o = {**o, "data": {**data, "text/markdown": md}}
            outs.append(o)
        if not code.strip() and not outs: continue
        meta = {**c.get("metadata", {}), "tags": sorted(set(tags))} if tags else dict(c.get("metadata", {}))
        if not code.strip(): meta["tags"] = sorted(set(meta.get("tags", []) + ["remove-input"]))
        cells.append({**c, "source": code, "metadata": meta, "outputs": outs})
    title = str(fm.get("title") or fallback_title)
    head = f"# {title}"
    if fm.get("description"): head += f"\n\n> {fm['description']}"
    if note: head += f"\n\n```{{note}}\n{note}\n```"
    cells.insert(0, {"cell_type": "markdown", "metadata": {}, "source": head})
    for i, c in enumerate(cells): c["id"] = f"cell-{i}"
    meta = dict(nb.get("metadata", {}))
    meta.setdefault("kernelspec", {"display_name": "Python 3", "language": "python", "name": "python3"})
    meta.setdefault("language_info", {"name": "python", "pygments_lexer": "ipython3"})
    return {"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}


def _frontmatter(nb: dict) -> dict:
    import yaml
    for c in nb["cells"]:
        if c["cell_type"] == "raw":
            m = re.fullmatch(r"\s*---\s*\n(.*?)\n---\s*", _src(c), flags=re.S)
            if m: return yaml.safe_load(m.group(1)) or {}
    return {}


# ---------------------------------------------------------------- the reproduction report
_REL_LINK = re.compile(r"(?:\]\(<?|(?:src|href)=\")([^)\s\">#]+)")


_IMAGE_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(<?([^)\s>]+\.(?:png|jpe?g|gif|svg|webp))>?\)", flags=re.I)


def embed_image_links(text: str) -> str:
    "Markdown links to image files (`[name](figures/x.png)`) as embedded images (`![name](figures/x.png)`)."
    return _IMAGE_LINK.sub(lambda m: f"![{m.group(1)}]({m.group(2)})", text)


def write_report(src_dir: Path, extra_dir: Path, link: Linker, reports: Path) -> str:
    "Write `report.md` from the reproduction report (or a page saying how to make one); return its origin."
    for profile in PROFILES:
        report = reports / profile / "REPORT.md"
        if report.is_file(): break
    else:
        (src_dir / "report.md").write_text(
            "# Reproduction report\n\nNo reproduction report has been generated in this checkout yet. "
            "`make reproduce` writes the quick one to `reports/quick/REPORT.md`; `make full` writes the "
            "paper-scale one to `reports/full/REPORT.md`. Rebuild the site with `make docs` afterwards and "
            "it appears here with its tables and figures.\n", encoding="utf-8")
        return "none"
    base = report.parent.resolve()
    text = report.read_text(encoding="utf-8")
    for rel in sorted(set(_REL_LINK.findall(text))):
        if re.match(r"^[a-z][\w+.-]*:", rel) or rel.startswith("/"): continue
        f = (base / rel).resolve()
        if not f.is_file() or base not in f.parents or f.suffix == ".ipynb": continue
        for d in ([src_dir] if f.suffix.lower() in IMAGE_EXT else []) + [extra_dir]:
            (d / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, d / rel)
    text = link(embed_image_links(text))
    origin = _rel(report)
    if not re.search(r"^#\s+\S", text, flags=re.M): text = "# Reproduction report\n\n" + text
    text = re.sub(r"^(#\s+.*)$", lambda m: m.group(1) + f"\n\n*Rendered from `{origin}`.*", text, count=1, flags=re.M)
    (src_dir / "report.md").write_text(text, encoding="utf-8")
    return origin


# ---------------------------------------------------------------- Sphinx
CONF = '''\
project = {title!r}
author = {author!r}
copyright = {copyright!r}
extensions = ["myst_nb", "sphinx-mathjax-offline"]
exclude_patterns = ["_extra", "_static", "_build", "jupyter_execute", "**.ipynb_checkpoints"]
html_theme = "furo"
html_title = {title!r}
html_favicon = "favicon.svg"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_extra_path = {extra!r}
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {{"sidebar_hide_name": False, "navigation_with_keys": True}}
pygments_style = "sphinx"
nb_execution_mode = "off"
nb_output_stderr = "remove"
nb_merge_streams = True
nb_render_markdown_format = "myst"
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_dmath_double_inline = True
myst_all_links_external = True
myst_heading_anchors = 4
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type", "misc.highlighting_failure"]
'''


CSS = """\
/* show_doc's link to the source, under the API heading, as nbdev's Quarto pages place it */
div.sourcelink { text-align: right; font-size: 0.8em; margin-top: -2.2em; margin-bottom: 0.6em; }
"""

FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1f4e79"/>'
           '<polyline points="2,12 6,7 9,9 14,3" fill="none" stroke="#fff" stroke-width="2"/></svg>\n')


def write_sources(work: Path, jobs: int, cache: Path, strict: bool = False,
                  reports: Path = ROOT / "reports") -> tuple[Path, list[str]]:
    "Process the notebooks and lay out the Sphinx source folder in `work`; return it and a log."
    settings = read_settings()
    src_dir = work / "src"
    extra_dir = src_dir / "_extra"
    src_dir.mkdir(parents=True)
    extra_dir.mkdir()
    cache.mkdir(parents=True, exist_ok=True)
    log = []

    nbs = notebooks(ROOT / settings.get("nbs_path", "nbs"))
    picked = {nb.name: pick_source(nb, reports) for nb in nbs}
    todo, processed = [], {}
    for nb in nbs:
        src, _ = picked[nb.name]
        out = cache / f"{nb.stem}-{cache_key(src, nb.name)}.ipynb"
        processed[nb.name] = out
        if not out.exists(): todo.append((str(src), nb.name, str(out), strict))
    t0 = time.perf_counter()
    if todo:
        if jobs > 1 and len(todo) > 1:  # nbdev's proc_nbs way: spawned workers, each importing the package again
            ex = ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=mp.get_context("spawn"))
            results = ex.map(process_notebook, todo)
        else:  # one process: the package and its dependencies are imported once (faster on a busy 2-core box)
            ex, results = None, map(process_notebook, todo)
        with ex or contextlib.nullcontext():
            for (_, name, _, _), (dst, secs, warning) in zip(todo, results):
                log.append(f"processed {name} in {secs:.1f}s")
                if warning: log.append(f"WARNING {warning}")
                processed[name] = Path(dst)
    log.append(f"nbdev processing: {len(todo)} of {len(nbs)} notebooks ({len(nbs) - len(todo)} cached) "
               f"in {time.perf_counter() - t0:.1f}s")
    current = set(processed.values())
    for stale in list(cache.glob("*.ipynb")) + list(cache.glob("*.tmp")):
        if stale not in current: stale.unlink(missing_ok=True)  # older versions and notebooks since removed

    # page names: nbdev's output-file (00_core -> core) unless two notebooks would share one
    pnbs = {name: json.loads(p.read_text(encoding="utf-8")) for name, p in processed.items()}
    pages, used = {}, set()
    for nb in nbs:
        html = str(_frontmatter(pnbs[nb.name]).get("output-file", nb.stem + ".html"))
        page = "index" if nb.stem == "index" else Path(html).stem
        if page in used or page in {"report", "search", "genindex"} or (page == "index" and nb.stem != "index"):
            page = nb.stem
        used.add(page)
        pages[nb.stem] = page
        pages.setdefault(Path(html).stem, page)
    host, base = settings.get("doc_host", "").rstrip("/"), settings.get("doc_baseurl", "").strip("/")
    prefix = "/".join(p for p in (host, base) if p) + "/" if host else ""
    link = Linker(prefix, pages)

    order = []
    for nb in nbs:
        src, profile = picked[nb.name]
        note = (f"The outputs on this page come from the `{profile}` reproduction run "
                f"(`{_rel(src)}`).") if profile else None
        page = to_page(pnbs[nb.name], link, note, nb.stem)
        if pages[nb.stem] != "index": order.append(pages[nb.stem])
        else: front = page
        (src_dir / f"{pages[nb.stem]}.ipynb").write_text(json.dumps(page, indent=1), encoding="utf-8")
        log.append(f"page {pages[nb.stem]}.html <- {_rel(src)}")
    log.append("report.html <- " + write_report(src_dir, extra_dir, link, reports))

    toc = "```{toctree}\n:maxdepth: 1\n:caption: Contents\n\n" + "\n".join(order + ["report"]) + "\n```"
    if "index" in pages.values():
        front["cells"].append({"cell_type": "markdown", "id": "contents", "metadata": {}, "source": toc})
        (src_dir / "index.ipynb").write_text(json.dumps(front, indent=1), encoding="utf-8")
    else:
        (src_dir / "index.md").write_text(f"# {settings.get('title', 'Documentation')}\n\n"
                                          f"{settings.get('description', '')}\n\n{toc}\n", encoding="utf-8")
    (src_dir / "favicon.svg").write_text(FAVICON, encoding="utf-8")
    (src_dir / "_static").mkdir()
    (src_dir / "_static" / "custom.css").write_text(CSS, encoding="utf-8")
    (src_dir / "conf.py").write_text(CONF.format(
        title=settings.get("title", "docs"), author=settings.get("author", ""),
        copyright=settings.get("copyright", ""), extra=["_extra"]), encoding="utf-8")
    return src_dir, log


def build(out: Path, jobs: int = 1, cache: Path | None = None, strict: bool = False,
          reports: Path = ROOT / "reports") -> list[str]:
    "Build the site into `out` (replaced); return the build log."
    from sphinx.cmd.build import build_main
    cache = cache or ROOT / "_proc" / "docs"
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ilmarket-docs-") as tmp:
        src_dir, log = write_sources(Path(tmp), jobs, cache, strict, reports)
        html = Path(tmp) / "html"
        t1 = time.perf_counter()
        rc = build_main(["-b", "html", "-q", "-E", "-d", str(Path(tmp) / "doctrees"), str(src_dir), str(html)])
        if rc: raise SystemExit(f"build_docs: sphinx-build failed with exit code {rc}")
        log.append(f"sphinx: {time.perf_counter() - t1:.1f}s")
        (html / ".nojekyll").write_text("")
        if out.exists(): shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(html, out)
    log.append(f"site written to {out} in {time.perf_counter() - t0:.1f}s")
    return log


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / read_settings().get("doc_path", "_docs"), help="site folder (replaced)")
    ap.add_argument("--cache", type=Path, default=ROOT / "_proc" / "docs", help="processed-notebook cache")
    ap.add_argument("--jobs", type=int, default=1, help="nbdev processing workers (1: in this process)")
    ap.add_argument("--reports", type=Path, default=ROOT / "reports",
                    help="where <profile>/REPORT.md and <profile>/executed/ are looked for")
    ap.add_argument("--strict", action="store_true", help="fail when a notebook's API docs cannot be rendered")
    a = ap.parse_args(argv)
    for line in build(a.out.resolve(), a.jobs, a.cache.resolve(), a.strict, a.reports.resolve()): print(line, flush=True)


if __name__ == "__main__":
    # run from the importable module so that the spawned workers find `process_notebook` by name
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import build_docs
    sys.exit(build_docs.main())
