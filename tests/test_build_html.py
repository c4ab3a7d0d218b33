"""``make html`` / ``make book`` (tools/build_html.py): executed pages, widget snapshots, the
course site around them (contents, previous/next links) and pages that fetch nothing from the web.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "fixtures" / "widget_fixture.ipynb"

sys.path.insert(0, str(HERE.parent / "tools"))
import build_html  # noqa: E402

pytest.importorskip("nbclient")
pytest.importorskip("nbconvert")

# what a browser fetches by itself: scripts, style sheets, images, frames, media, CSS urls/imports
FETCHED = re.compile(
    r"<(?:script|img|iframe|source|audio|video|embed)\b[^>]*?\bsrc\s*=\s*[\"']?([^\"'\s>]+)"
    r"|<link\b[^>]*?\bhref\s*=\s*[\"']?([^\"'\s>]+)"
    r"|url\(\s*[\"']?([^\"')\s]+)"
    r"|@import\s+[\"']([^\"']+)"
    r"|\bimport\(\s*[\"']([^\"']+)",
    re.I,
)


def external_references(page: str) -> list[str]:
    """Addresses outside the site that the page makes a browser fetch (links are not fetched)."""
    found = ("".join(m.groups(default="")) for m in FETCHED.finditer(page))
    return [u for u in found if re.match(r"(?:[a-z][a-z0-9+.-]*:)?//", u, re.I)]


def test_external_references_finds_what_a_browser_fetches():
    page = ("<script src='https://cdn.example/x.js'></script><link rel=stylesheet "
            "href=\"//fonts.example/css\"><img alt=a src=http://x/y.png>"
            "<style>@import 'https://x/z.css'; a{background:url(data:image/png;base64,AA)}</style>"
            "<a href='https://colab.example/nb'>Colab</a><img src='data:image/png;base64,AA'>"
            "<script src='_static/mathjax/MathJax.js'></script>")
    assert external_references(page) == [
        "https://cdn.example/x.js", "//fonts.example/css", "http://x/y.png", "https://x/z.css"]


def _notebook(path: Path, heading: str, intro: str, code: str = "print('ok')") -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    badge = ("[![Open in Colab](https://colab.example/badge.svg)](https://colab.example/nb) "
             "[![launch Binder](https://binder.example/logo.svg)](https://binder.example/nb)")
    nb = new_notebook(
        cells=[new_markdown_cell(f"{badge}\n\n# {heading}\n\n{intro}\n\n**What you will learn**"),
               new_markdown_cell("## 1. Maths\n\n$$\\mathbf g = \\nabla L(\\mathbf m)$$ and "
                                 "$\\tfrac12 x$. ![a plot](https://example.org/plot.png)"),
               new_code_cell(code)],
        metadata={"kernelspec": {"name": "python3", "language": "python",
                                 "display_name": "Python 3"}})
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("html")
    src, out = base / "src", base / "out"
    src.mkdir()
    shutil.copy2(FIXTURE, src / FIXTURE.name)
    # the stamps depend on one file of ours, not on course_lib (which may change meanwhile)
    dep = base / "dependency.py"
    dep.write_text("# v1\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(build_html, "dependency_files", lambda: [dep])
        entries = build_html.build(src, out, profile="smoke", timeout=120)
        yield src, out, entries, dep


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A two-chapter site from tiny notebooks: numbered headings, badges, maths."""
    base = tmp_path_factory.mktemp("site")
    src, out = base / "src", base / "out"
    src.mkdir()
    _notebook(src / "00_first.ipynb", "00 · First steps: the setup",
              "Before anything, we check the `setup`. Then **more** follows.")
    _notebook(src / "01_second.ipynb", "01 · Second chapter", "A *short* one: it ends here.")
    dep = base / "dependency.py"
    dep.write_text("# v1\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(build_html, "dependency_files", lambda: [dep])
        entries = build_html.build(src, out, profile="smoke", timeout=120)
        yield src, out, entries, mp


def test_notebook_executed_into_html(built):
    src, out, entries, _ = built
    assert [(e["name"], e["ok"], e["skipped"]) for e in entries] == [
        ("widget_fixture.ipynb", True, False)
    ]
    page = (out / "widget_fixture.html").read_text()
    assert "<title>Widget fixture</title>" in page
    # the widget's last render (a figure in its Output) and the static figure, both embedded
    assert len(re.findall(r"<img[^>]*src=.data:image/png;base64,", page)) == 2
    assert "a static figure" in page  # the source is there too
    # the source notebook is left without outputs
    assert '"outputs": []' in (src / FIXTURE.name).read_text()


def test_widgets_become_static_snapshots(built):
    _, out, _, _ = built
    page = (out / "widget_fixture.html").read_text()
    snapshots = re.findall(r"<div class=.widget-snapshot.*?</div>\s*</div>", page, flags=re.S)
    assert len(snapshots) == 2, "the slider widget and the tqdm bar"
    slider, bar = snapshots
    assert "sigma" in slider and "<b>2.0</b>" in slider and "data:image/png" in slider
    assert "colours" in slider and "<b>magma</b>" in slider  # a selection widget's label
    assert "<progress" in bar and "20/20" in bar
    # no widget JavaScript: the page works offline
    assert "application/vnd.jupyter.widget-view+json" not in page
    assert "application/vnd.jupyter.widget-state+json" not in page


def test_index_lists_titles(built):
    _, out, _, _ = built
    index = (out / "index.html").read_text()
    assert re.search(r"<a class=.chapter-title. href=.widget_fixture.html.>Widget fixture</a>",
                     index)
    assert "smoke" in index and "(failed" not in index


def test_rerun_is_idempotent(built):
    src, out, _, dep = built
    html = out / "widget_fixture.html"
    before = html.stat().st_mtime_ns, html.read_bytes()
    index_before = (out / "index.html").stat().st_mtime_ns
    entries = build_html.build(src, out, profile="smoke")
    assert entries[0]["skipped"] and entries[0]["ok"]
    assert (html.stat().st_mtime_ns, html.read_bytes()) == before
    assert (out / "index.html").stat().st_mtime_ns == index_before
    # another profile, or a changed dependency, makes the notebook stale
    assert build_html.build_key(src / FIXTURE.name, "cpu") != build_html.build_key(
        src / FIXTURE.name, "smoke")
    key = build_html.build_key(src / FIXTURE.name, "smoke")
    dep.write_text("# v2\n")
    assert build_html.build_key(src / FIXTURE.name, "smoke") != key
    # a changed notebook is rebuilt
    text = (src / FIXTURE.name).read_text().replace("a static figure", "a changed figure")
    (src / FIXTURE.name).write_text(text)
    entries = build_html.build(src, out, profile="smoke")
    assert not entries[0]["skipped"] and entries[0]["ok"]
    assert "a changed figure" in html.read_text()


def test_failing_notebook_is_reported(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    nb = new_notebook(cells=[new_markdown_cell("# Broken"), new_code_cell("1 / 0")],
                      metadata={"kernelspec": {"name": "python3", "language": "python",
                                               "display_name": "Python 3"}})
    nbformat.write(nb, src / "broken.ipynb")
    assert build_html.main([str(src), str(out), "--timeout", "60"]) == 1
    assert "ZeroDivisionError" in (out / "broken.html").read_text()
    assert "(failed" in (out / "index.html").read_text()
    assert not (out / ".build-stamps.json").read_text().count("broken.ipynb")
    assert not (out / build_html.EXECUTED / "broken.ipynb").exists()


# --- the course site -------------------------------------------------------------------------


def test_contents_has_number_title_and_description(site):
    _, out, entries, _ = site
    assert [e["ok"] for e in entries] == [True, True]
    index = (out / "index.html").read_text()
    rows = re.findall(r"<li>.*?</li>", index, flags=re.S)
    assert len(rows) == 2
    first, second = rows
    assert "<span class=\"chapter-number\">00</span>" in first
    assert ">First steps: the setup</a>" in first and "href=\"00_first.html\"" in first
    assert ("<span class=\"chapter-description\">Before anything, we check the "
            "<code>setup</code>.</span>") in first
    assert "<span class=\"chapter-number\">01</span>" in second
    assert "A <em>short</em> one: it ends here." in second
    assert external_references(index) == []


def test_every_page_links_previous_next_and_contents(site):
    _, out, _, _ = site
    first, second = (out / "00_first.html").read_text(), (out / "01_second.html").read_text()
    for page in (first, second):
        assert page.count('href="index.html"') == 2  # above and below the notebook
    assert 'rel="next"' in first and 'href="01_second.html"' in first
    assert 'rel="prev"' not in first
    assert 'rel="prev"' in second and 'href="00_first.html"' in second
    assert 'rel="next"' not in second
    assert "01 · Second chapter →" in first


def test_pages_fetch_nothing_outside_the_site(site):
    _, out, _, _ = site
    page = (out / "00_first.html").read_text()
    assert external_references(page) == [], "a page would fetch something from the web"
    assert "require.js" not in page and "cdnjs" not in page and "mermaid" not in page
    # MathJax comes from the site, copied from the jupyter-server-mathjax package
    m = re.search(r"<script src=\"(_static/mathjax/MathJax\.js)\?config=([\w-]+)\"", page)
    assert m, "the page does not load the site's MathJax"
    assert (out / m.group(1)).is_file()
    assert (out / "_static/mathjax/config" / f"{m.group(2)}.js").is_file()
    assert (out / "_static/mathjax/fonts/HTML-CSS/STIX-Web/woff").is_dir()
    assert not (out / "_static/mathjax/localization/de").exists()  # English only
    assert "$$\\mathbf g = \\nabla L(\\mathbf m)$$" in page  # TeX left for MathJax
    # the badges and the remote image became plain links
    assert 'href="https://colab.example/nb"' in page and "badge.svg" not in page
    assert 'href="https://example.org/plot.png"' in page


def test_a_new_neighbour_reexports_without_executing(site):
    src, out, _, mp = site
    _notebook(src / "02_third.ipynb", "02 · Third", "The last one.")
    second = out / "01_second.html"
    executed = (out / build_html.EXECUTED / "01_second.ipynb").stat().st_mtime_ns
    entries = build_html.build(src, out, profile="smoke", timeout=120)
    assert [(e["name"], e["skipped"]) for e in entries] == [
        ("00_first.ipynb", True), ("01_second.ipynb", True), ("02_third.ipynb", False)]
    assert 'href="02_third.html"' in second.read_text()  # a next link now
    assert (out / build_html.EXECUTED / "01_second.ipynb").stat().st_mtime_ns == executed
    stamps = json.loads((out / build_html.STAMPS).read_text())
    assert set(stamps) == {"00_first.ipynb", "01_second.ipynb", "02_third.ipynb"}


def test_chapter_parsing():
    assert build_html.first_sentence("One. Two.") == "One."
    assert build_html.first_sentence("Version 2.0 is out. Then.") == "Version 2.0 is out."
    long = "word " * 80
    assert build_html.first_sentence(long, limit=40).endswith(" …")
    assert build_html.inline_markdown("a `x<y` **b** *c* [d](http://e) 3 * 4 * 5") == (
        "a <code>x&lt;y</code> <strong>b</strong> <em>c</em> d 3 * 4 * 5")


def test_missing_mathjax_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "jupyter_server_mathjax", None)
    with pytest.raises(SystemExit, match="jupyter-server-mathjax"):
        build_html.mathjax_source()
