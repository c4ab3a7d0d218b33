"""The published course site in a real chromium, with every request outside the site blocked.

A small edition is built here, in the ``smoke`` profile, by ``tools/build_html.py`` (the tool
behind ``make html`` and ``make book``): notebook 00, notebook 06 (the DARK derivation's
equations) and the widget fixture. A local HTTP server on 127.0.0.1 serves it; Playwright aborts
and records every request that is not for that server. Starting from the contents page, the test
follows the "next" links to the last chapter and the "previous" links back, and on every page
asserts: no request left the site and none failed, MathJax has finished and no TeX source
(``$$``, ``\\mathbf``, ``\\frac`` ...) is visible in the text, every image has loaded. The same
pages are then opened from the folder itself (``file://``), as a reader who downloaded the site
would. A screenshot of notebook 06's DARK derivation as the page shows it offline lands in
``test-artifacts/book/``. Skipped, saying why, only when chromium is missing.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import sys
import threading
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tools"))
import build_html  # noqa: E402
from test_browser import _chromium, launched_chromium  # noqa: E402

pytestmark = pytest.mark.browser

ARTIFACTS = REPO / "test-artifacts" / "book"
NOTEBOOKS = [REPO / "notebooks" / "00_setup.ipynb", REPO / "notebooks" / "06_decoding_dark.ipynb",
             HERE / "fixtures" / "widget_fixture.ipynb"]
DARK_HEADING = "DARK: a Taylor step"
PAGE_S = 30  # load one page and let MathJax typeset it
LOCAL_SCHEMES = ("data:", "about:", "blob:")  # never leave the machine (MathJax's blank font)

# TeX left as text: display delimiters, or a control word such as \mathbf, \frac, \tfrac
RAW_TEX = re.compile(r"\$\$|\\[A-Za-z]{2,}|\\[(\[]")

# MathJax 2: queue a callback behind every typesetting job queued so far
JS_MATHJAX_DONE = """() => new Promise(resolve => {
  if (!window.MathJax || !MathJax.Hub) return resolve('no MathJax');
  MathJax.Hub.Queue(() => resolve('done'));
})"""

# the visible text of the markdown cells, without code (where a backslash is just a backslash)
JS_MARKDOWN_TEXT = """() => {
  const parts = [];
  for (const cell of document.querySelectorAll('.jp-MarkdownOutput')) {
    const walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walk.nextNode(); node; node = walk.nextNode()) {
      const el = node.parentElement;
      if (!el || el.closest('code, pre, script, style')) continue;
      if (!el.checkVisibility()) continue;
      parts.push(node.textContent);
    }
  }
  return parts.join(' ');
}"""

JS_BROKEN_IMAGES = """() => Array.from(document.images)
  .filter(img => !(img.complete && img.naturalWidth > 0))
  .map(img => (img.currentSrc || img.src).slice(0, 80))"""

JS_MATH_COUNT = "() => document.querySelectorAll('.MathJax, .MathJax_Display').length"


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """The small edition, built here, and the chapters it should have, in order."""
    if _chromium() is None:
        pytest.skip("chromium is not installed (/usr/bin/chromium); .ci/run installs it with apt")
    base = tmp_path_factory.mktemp("book")
    src, out = base / "src", base / "site"
    src.mkdir()
    for nb in NOTEBOOKS:
        shutil.copy2(nb, src / nb.name)
    entries = build_html.build(src, out, profile="smoke", timeout=300)
    failed = [(e["name"], e.get("error")) for e in entries if not e["ok"]]
    assert not failed, f"notebooks failed to build: {failed}"
    return out, [e["html"] for e in entries]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log on stderr
        pass


@pytest.fixture(scope="module")
def server(book):
    site, _ = book
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(book):
    with launched_chromium() as b:
        yield b


class Fence:
    """A browser context that lets only ``root`` (and local schemes) through, and records."""

    def __init__(self, browser, root: str):
        self.root = root
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.route("**/*", self._route)
        self.context.on("request", self._seen)
        self.context.on("requestfailed", lambda r: self.failed.append(f"{r.url} ({r.failure})"))
        self.context.on("response", self._response)
        self.page = self.context.new_page()

    def inside(self, url: str) -> bool:
        return url.startswith(self.root) or url.startswith(LOCAL_SCHEMES)

    def _route(self, route):
        if self.inside(route.request.url):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def _seen(self, request):  # also what routing does not see
        if not self.inside(request.url) and request.url not in self.blocked:
            self.blocked.append(request.url)

    def _response(self, response):
        if response.status >= 400:
            self.failed.append(f"{response.url} (HTTP {response.status})")

    def close(self):
        self.context.close()


def _check_page(fence: Fence, name: str) -> None:
    """MathJax done, no TeX source visible, every image loaded, nothing fetched from outside."""
    page = fence.page
    page.wait_for_function("() => window.MathJax && MathJax.isReady", timeout=PAGE_S * 1000)
    assert page.evaluate(JS_MATHJAX_DONE) == "done", f"{name}: MathJax did not load"
    text = page.evaluate(JS_MARKDOWN_TEXT)
    raw = sorted({m.group(0) for m in RAW_TEX.finditer(text)})
    assert not raw, f"{name}: TeX source visible after MathJax: {raw}"
    broken = page.evaluate(JS_BROKEN_IMAGES)
    assert not broken, f"{name}: images that did not load: {broken}"
    assert not fence.blocked, f"{name}: requests that tried to leave the site: {fence.blocked}"
    failed = [f for f in fence.failed if not f.startswith(LOCAL_SCHEMES)]
    assert not failed, f"{name}: requests that failed inside the site: {failed}"


def _follow(fence: Fence, link: str, chapters: list[str]) -> list[str]:
    """Click ``link`` (a.course-next or a.course-prev) page after page; the pages visited."""
    visited = [fence.page.url.rsplit("/", 1)[-1]]
    while fence.page.locator(f".course-nav-top {link}").count():
        assert len(visited) <= len(chapters), f"{link} goes round in circles: {visited}"
        fence.page.locator(f".course-nav-top {link}").click()
        fence.page.wait_for_load_state("load")
        name = fence.page.url.rsplit("/", 1)[-1]
        _check_page(fence, name)
        visited.append(name)
    return visited


def _screenshot_dark(page) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    cell = page.locator(".jp-MarkdownCell", has=page.locator("h2", has_text=DARK_HEADING))
    assert cell.count() == 1, f"no section {DARK_HEADING!r} in notebook 06"
    assert page.evaluate(JS_MATH_COUNT) > 10, "notebook 06 shows almost no typeset maths"
    cell.scroll_into_view_if_needed()
    path = ARTIFACTS / "06-dark-derivation.png"
    cell.screenshot(path=str(path))
    assert path.stat().st_size > 10_000, path
    return path


def test_site_served_offline(book, server, browser):
    site, chapters = book
    fence = Fence(browser, server)
    try:
        fence.page.goto(server + "index.html")
        contents = fence.page.locator("ol.chapters a.chapter-title")
        assert contents.evaluate_all("els => els.map(e => e.getAttribute('href'))") == chapters
        assert not fence.blocked, f"the contents page tried to leave the site: {fence.blocked}"
        contents.first.click()
        fence.page.wait_for_load_state("load")
        _check_page(fence, chapters[0])
        assert _follow(fence, "a.course-next", chapters) == chapters
        assert _follow(fence, "a.course-prev", chapters) == chapters[::-1]
        fence.page.locator(".course-nav-bottom a.course-index").click()
        fence.page.wait_for_load_state("load")
        assert fence.page.url == server + "index.html"
        fence.page.goto(server + "06_decoding_dark.html")
        _check_page(fence, "06_decoding_dark.html")
        _screenshot_dark(fence.page)
    except BaseException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        fence.page.screenshot(path=str(ARTIFACTS / "failure-page.png"))
        raise
    finally:
        fence.close()


def test_site_read_from_its_folder(book, browser):
    """Opened from disk (file://), as a reader who downloaded the folder: maths still renders."""
    site, chapters = book
    fence = Fence(browser, site.as_uri() + "/")
    try:
        for name in chapters:
            fence.page.goto(site.as_uri() + "/" + name)
            _check_page(fence, f"{name} (file://)")
    finally:
        fence.close()
