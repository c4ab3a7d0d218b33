"""``make html`` (tools/build_html.py) on a tiny widget notebook: figures, widget snapshots, index."""

from __future__ import annotations

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
    assert "<a href='widget_fixture.html'>Widget fixture</a>" in index
    assert "smoke" in index and "(failed" not in index


def test_rerun_is_idempotent(built):
    src, out, _, dep = built
    html = out / "widget_fixture.html"
    before = html.stat().st_mtime_ns, html.read_bytes()
    entries = build_html.build(src, out, profile="smoke")
    assert entries[0]["skipped"] and entries[0]["ok"]
    assert (html.stat().st_mtime_ns, html.read_bytes()) == before
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
