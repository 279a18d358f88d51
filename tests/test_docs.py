"""The docs site, built by tools/build_docs.py into a temporary folder and checked in Debian's headless Chromium
(driven by Playwright with the system browser): pages load cleanly from a local server, maths is typeset, images
load, exported names have API docs, links resolve, search works. `make browser` installs Chromium."""
import html.parser
import http.server
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import build_docs  # noqa: E402
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--disable-dev-shm-usage"]
NOTEBOOKS = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith(("_", ".")))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "build_docs.py"), "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"docs build failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    print(f"docs built in {time.perf_counter() - t0:.1f}s\n{r.stdout}")
    return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


@pytest.fixture(scope="module")
def base_url(site):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(site)))
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not Path(CHROMIUM).exists(): pytest.fail(f"{CHROMIUM} not found: run `make browser` (Debian's chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
        yield ctx
        ctx.close()


def pages(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                  if not p.relative_to(site).parts[0].startswith("_"))


def visit(ctx, url: str) -> dict:
    "Load `url`; return what went wrong on the way and what the page holds once maths is typeset."
    page = ctx.new_page()
    errors, failed, outside = [], [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))
    page.on("response", lambda r: failed.append(f"{r.url} (HTTP {r.status})") if r.status >= 400 else None)
    page.on("request", lambda r: outside.append(r.url)
            if urlsplit(r.url).hostname not in ("127.0.0.1", None) and not r.url.startswith(("data:", "blob:")) else None)
    page.goto(url, wait_until="load")
    page.wait_for_function("() => !window.MathJax || (MathJax.startup && MathJax.startup.promise)")
    page.evaluate("""async () => {  // maths typeset, its fonts and every image settled
        if (window.MathJax) await MathJax.startup.promise;
        await document.fonts.ready;
        await Promise.all([...document.images].map(i => i.complete ? null :
            new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); })));
    }""")
    state = page.evaluate("""() => ({
        math: document.querySelectorAll('.math').length,
        typeset: [...document.querySelectorAll('.math')].filter(e => e.querySelector('mjx-container')).length,
        merror: [...document.querySelectorAll('mjx-merror')].map(e => e.closest('.math')?.textContent || e.textContent),
        images: [...document.images].map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0})),
        title: document.title,
        nav: [...document.querySelectorAll('.sidebar-tree a.reference')].map(a => a.getAttribute('href')),
        ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    })""")
    page.close()
    return {**state, "errors": errors, "failed": failed, "outside": outside}


@pytest.fixture(scope="module")
def visited(site, base_url, browser) -> dict:
    return {p: visit(browser, base_url + p) for p in pages(site)}


def test_every_page_loads_cleanly(visited):
    problems = []
    for p, v in visited.items():
        problems += [f"{p}: console error: {e}" for e in v["errors"]]
        problems += [f"{p}: failed request: {f}" for f in v["failed"]]
        problems += [f"{p}: request outside the site: {u}" for u in v["outside"]]
        problems += [f"{p}: image not loaded: {i['src']}" for i in v["images"] if not i["ok"]]
        if v["typeset"] != v["math"]: problems.append(f"{p}: {v['math'] - v['typeset']} of {v['math']} equations not typeset")
        problems += [f"{p}: MathJax error in {m!r}" for m in v["merror"]]
    assert not problems, "\n".join(problems)


def _has_tex(nb: Path) -> bool:
    md = "".join("".join(c["source"]) for c in json.loads(nb.read_text(encoding="utf-8"))["cells"]
                 if c["cell_type"] == "markdown")
    return bool(re.search(r"\$\$.+?\$\$|\$[^\s$][^$\n]*?[^\s$\\]\$|\$[^\s$]\$", md, flags=re.S))


def test_maths_rendered_where_the_notebook_has_equations(site, visited):
    "A notebook whose markdown holds `$…$` gets a page with typeset maths (no CDN: MathJax is in the site)."
    assert (site / "_static" / "mathjax" / "tex-chtml.js").exists()
    missing = []
    for nb in NOTEBOOKS:
        if not _has_tex(nb): continue
        page = _page_of(site, nb)
        if page not in visited or visited[page]["typeset"] == 0: missing.append(nb.name)
    assert not missing, f"notebooks with equations but no typeset maths on their page: {missing}"


def _page_of(site: Path, nb: Path) -> str:
    "The page built from `nb`: nbdev's output-file name (00_core -> core.html), or the notebook's stem."
    stem = re.sub(r"^\d+[a-zA-Z0-9]*_", "", nb.stem.lower())
    return next((c for c in (f"{stem}.html", f"{nb.stem}.html") if (site / c).exists()), f"{nb.stem}.html")


def test_one_page_per_notebook_in_order_with_report(site, visited):
    front = visited["index.html"]
    assert front["title"], "front page has no title"
    expected = [_page_of(site, nb) for nb in NOTEBOOKS if nb.stem != "index"] + ["report.html"]
    for p in expected: assert (site / p).exists(), f"no page {p}"
    nav = [h.split("#")[0] for h in front["nav"]]
    assert [h for h in nav if h in expected] == expected, f"navigation order {nav} != {expected}"
    assert "Reproduction report" in (site / "report.html").read_text(encoding="utf-8") or \
        re.search(r"<h1>[^<]*[Rr]eport", (site / "report.html").read_text(encoding="utf-8"))


def test_exported_names_have_api_docs(site, visited):
    "Every exported function and class appears as a show_doc section on its notebook's page."
    import ast
    missing = []
    for nb in NOTEBOOKS:
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        names = []
        for c in cells:
            src = "".join(c["source"])
            if c["cell_type"] != "code" or not re.match(r"\s*#\|\s*exports?\b", src): continue
            try: tree = ast.parse(src)
            except SyntaxError: continue
            names += [t.name for t in tree.body if isinstance(t, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                      and not t.name.startswith("_")]
        if not names: continue
        ids = set(visited[_page_of(site, nb)]["ids"])
        from docutils.nodes import make_id
        missing += [f"{nb.name}: {n}" for n in names if make_id(n) not in ids]
    assert not missing, "exported names without API docs:\n" + "\n".join(missing)


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"): self.ids.add(a["id"])
        for k in ("href", "src"):
            if a.get(k) and tag in ("a", "img", "script", "link"): self.refs.append(a[k])


def test_internal_links_resolve(site):
    parsed = {}
    for p in site.rglob("*.html"):
        lk = _Links()
        lk.feed(p.read_text(encoding="utf-8"))
        parsed[p] = lk
    broken = []
    for p, lk in parsed.items():
        for ref in lk.refs:
            u = urlsplit(ref)
            if u.scheme or ref.startswith(("//", "mailto:")): continue
            target = (p.parent / unquote(u.path)).resolve() if u.path else p
            if target.is_dir(): target = target / "index.html"
            if not target.exists(): broken.append(f"{p.relative_to(site)} -> {ref}")
            elif u.fragment and target.suffix == ".html" and target in parsed and u.fragment not in parsed[target].ids:
                broken.append(f"{p.relative_to(site)} -> {ref} (no such anchor)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_search_finds_synthesis(base_url, browser):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base_url + "search.html?q=synthesis", wait_until="load")
    page.wait_for_selector("#search-results ul.search li a", timeout=20_000)
    hits = page.locator("#search-results ul.search li a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    page.close()
    assert hits and not errors, (hits, errors)


def test_front_page_screenshot(base_url, browser, tmp_path):
    page = browser.new_page()
    page.goto(base_url + "index.html", wait_until="load")
    page.evaluate("localStorage.clear()")  # no search-term highlighting left over from the search test
    page.reload(wait_until="networkidle")
    shot = tmp_path / "front_page.png"
    page.screenshot(path=str(shot), full_page=False)
    heading = page.locator("h1").first.inner_text()
    page.close()
    assert shot.stat().st_size > 10_000, "screenshot looks empty"
    assert heading.strip(), "front page has no heading"
    print(f"front page screenshot: {shot}")


def _code_nb(tmp_path) -> Path:
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# T\n> s"},
                    {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": "x = 1\nx"}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    p = tmp_path / "nbs" / "01_x.ipynb"
    p.parent.mkdir()
    p.write_text(json.dumps(nb))
    return p


def test_executed_copy_is_used_only_when_current(tmp_path):
    src = _code_nb(tmp_path)
    nb = json.loads(src.read_text())
    injected = {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "outputs": [],
                "execution_count": 1, "source": "profile = 'full'"}
    nb["cells"].insert(1, injected)
    nb["cells"][2]["outputs"] = [{"output_type": "execute_result", "execution_count": 2, "metadata": {},
                                  "data": {"text/plain": "1"}}]
    ex = tmp_path / "reports" / "full" / "executed" / src.name
    ex.parent.mkdir(parents=True)
    ex.write_text(json.dumps(nb))
    assert build_docs.pick_source(src, tmp_path / "reports") == (ex, "full")
    nb["cells"][2]["source"] = "x = 2\nx"  # the notebook changed since the run: its outputs are stale
    ex.write_text(json.dumps(nb))
    assert build_docs.pick_source(src, tmp_path / "reports") == (src, None)


def test_report_page_takes_the_report_and_its_files(tmp_path):
    reports, src = tmp_path / "reports", tmp_path / "src"
    (src / "_extra").mkdir(parents=True)
    link = build_docs.Linker("https://h.io/b/", {"00_core": "core", "core": "core"})
    assert build_docs.write_report(src, src / "_extra", link, reports) == "none"
    assert (src / "report.md").read_text().startswith("# Reproduction report")
    (reports / "quick" / "figures").mkdir(parents=True)
    (reports / "quick" / "figures" / "f.png").write_bytes(b"png")
    (tmp_path / "secret.txt").write_text("outside")
    (reports / "quick" / "REPORT.md").write_text(
        "Numbers.\n\n![f](figures/f.png) [nb](executed/00_core.ipynb) [x](../../secret.txt)\n")
    assert build_docs.write_report(src, src / "_extra", link, reports).endswith("quick/REPORT.md")
    text = (src / "report.md").read_text()
    assert text.startswith("# Reproduction report") and "[nb](core.html)" in text
    assert (src / "figures" / "f.png").exists() and (src / "_extra" / "figures" / "f.png").exists()
    assert not list(src.rglob("secret.txt"))


def test_nbdev_doc_links_become_relative():
    link = build_docs.Linker("https://ilmarket.github.io/ilmarket/", {"00_core": "core", "core": "core"})
    assert link("[`get_config`](https://ilmarket.github.io/ilmarket/core.html#get_config)") == "[`get_config`](core.html#get-config)"
    assert link("[`Config.digest`](https://ilmarket.github.io/ilmarket/core.html#config.digest)") == "[`Config.digest`](core.html#config)"
    assert link('<a href="https://ilmarket.github.io/ilmarket/">home</a>') == '<a href="index.html">home</a>'
    assert link("[core](00_core.ipynb#seeding)") == "[core](core.html#seeding)"
    assert link("[ext](https://example.org/a.html#b)") == "[ext](https://example.org/a.html#b)"
    assert link("[report](../reports/full/REPORT.md)") == "[report](report.html)"


def _saved_figures(nb: Path) -> list[str]:
    "The figures a notebook saves: the literal names of its `save_fig(fig, \"name\", ...)` calls."
    code = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text(encoding="utf-8"))["cells"]
                     if c["cell_type"] == "code")
    return sorted(set(re.findall(r"save_fig\(\s*[\w.]+\s*,\s*[\"']([\w.-]+)[\"']", code)))


def _sha(path: Path) -> str:
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _page_images(site: Path, page: str, visited: dict) -> list[tuple[str, bool, Path]]:
    "(src, loaded, file in the site) of every image on a page."
    out = []
    for im in visited[page]["images"]:
        rel = unquote(urlsplit(im["src"]).path).lstrip("/")
        out.append((im["src"], im["ok"], site / rel))
    return out


FIGURE_NOTEBOOKS = [nb for nb in NOTEBOOKS if _saved_figures(nb)]


@pytest.mark.parametrize("nb", FIGURE_NOTEBOOKS, ids=[nb.stem for nb in FIGURE_NOTEBOOKS])
def test_every_saved_figure_is_shown_once(site, visited, nb):
    """A page rendered from a reproduction run shows one image per figure its notebook saves, each loaded in the
    browser, none twice (no two with the same bytes); a figure shown from its saved file is that file."""
    src, profile = build_docs.pick_source(nb, ROOT / "reports")
    if profile is None:
        pytest.skip(f"no executed copy of {nb.name} matches its cells: `make reproduce` writes one")
    page, names = _page_of(site, nb), _saved_figures(nb)
    images = _page_images(site, page, visited)
    assert [s for s, ok, _ in images if not ok] == [], f"{page}: images not loaded"
    assert len(images) == len(names), f"{page}: {len(images)} images for the figures {nb.name} saves: {names}"
    shown = [_sha(f) for _, _, f in images if f.is_file()]
    assert len(set(shown)) == len(shown) == len(images), f"{page}: an image is missing from the site or shown twice"
    folder = ROOT / "reports" / profile / "figures"
    for name in names:
        assert shown.count(_sha(folder / f"{name}.png")) <= 1, f"{page}: {name}.png is shown more than once"


def test_report_page_embeds_every_figure_it_names(site, visited):
    "The report page shows one loaded image per figure REPORT.md links or embeds, with the figure's own bytes."
    report = next((ROOT / "reports" / p / "REPORT.md" for p in build_docs.PROFILES
                   if (ROOT / "reports" / p / "REPORT.md").is_file()), None)
    if report is None: pytest.skip("no REPORT.md: `make reproduce` writes one")
    named = list(dict.fromkeys(re.findall(r"\]\(<?(figures/[\w.-]+\.png)>?\)", report.read_text(encoding="utf-8"))))
    assert named, f"{report} names no figure"
    images = _page_images(site, "report.html", visited)
    assert [s for s, ok, _ in images if not ok] == [], "report.html: images not loaded"
    shown = [_sha(f) for _, _, f in images if f.is_file()]
    assert len(images) == len(named), f"report.html: {len(images)} images for the {len(named)} figures REPORT.md names"
    for rel in named:
        assert shown.count(_sha(report.parent / rel)) == 1, f"report.html: {rel} is not embedded exactly once"


def test_image_links_become_embedded_images():
    text = "- [fig3](figures/fig3.png) ![x](a.png) [table](tables/t.csv) [f](<figures/y.PNG>)"
    want = "- ![fig3](figures/fig3.png) ![x](a.png) [table](tables/t.csv) ![f](figures/y.PNG)"
    assert build_docs.embed_image_links(text) == want
